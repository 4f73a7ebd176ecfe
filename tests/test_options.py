from pathlib import Path

import pytest

from mlops_ci.errors import UsageError
from mlops_ci.options import Option, resolve

OPTIONS = (
    Option("seed", "seed", kind="int", default=42, minimum=0),
    Option("params", "params", kind="map", flag="--param"),
    Option("data", "data", kind="paths"),
    Option("alias", "alias", kind="list", default=("challenger",)),
    Option("force", "force", kind="bool", default=False),
    Option("tracking-uri", "uri", env_aliases=("MLFLOW_TRACKING_URI",)),
    Option("mode", "mode", choices=("fast", "slow")),
)


def values(flags=None, env=None, config=None, tmp=Path("/project")):
    return resolve(
        OPTIONS, flags=flags or {}, env=env or {}, config=config or {}, config_dir=tmp / "conf", cwd=tmp
    )


def test_defaults_apply_when_nothing_is_set():
    got = values()
    assert got["seed"] == 42
    assert got["alias"] == ["challenger"]
    assert got["params"] == {}
    assert got["force"] is False


def test_precedence_is_flag_then_env_then_config_then_default():
    config = {"seed": 1}
    assert values(config=config)["seed"] == 1
    assert values(config=config, env={"MLOPS_CI_SEED": "2"})["seed"] == 2
    assert values(config=config, env={"MLOPS_CI_SEED": "2"}, flags={"seed": "3"})["seed"] == 3


def test_empty_environment_variable_counts_as_unset():
    # An action input left empty arrives as an empty variable.
    assert values(config={"seed": 1}, env={"MLOPS_CI_SEED": ""})["seed"] == 1


def test_env_alias_is_read_after_our_own_variable():
    assert values(env={"MLFLOW_TRACKING_URI": "http://a"})["tracking_uri"] == "http://a"
    both = {"MLFLOW_TRACKING_URI": "http://a", "MLOPS_CI_TRACKING_URI": "http://b"}
    assert values(env=both)["tracking_uri"] == "http://b"


def test_maps_merge_key_by_key():
    got = values(
        config={"params": {"C": 1.0, "max-iter": 100}},
        env={"MLOPS_CI_PARAMS": "C=2\nsolver=lbfgs"},
        flags={"params": ["max-iter=5"]},
    )
    assert got["params"] == {"C": "2", "max-iter": "5", "solver": "lbfgs"}


def test_paths_are_relative_to_config_dir_or_cwd():
    tmp = Path("/project")
    assert values(config={"data": "d.csv"})["data"] == [tmp / "conf" / "d.csv"]
    assert values(flags={"data": ["d.csv"]})["data"] == [tmp / "d.csv"]
    assert values(env={"MLOPS_CI_DATA": "a.csv\nb.csv"})["data"] == [tmp / "a.csv", tmp / "b.csv"]


def test_lists_from_env_split_on_lines_and_commas():
    assert values(env={"MLOPS_CI_ALIAS": "a, b\nc"})["alias"] == ["a", "b", "c"]


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"MLOPS_CI_SEED": "abc"}, "environment variable MLOPS_CI_SEED must be an integer, got 'abc'"),
        ({"MLOPS_CI_SEED": "-1"}, "MLOPS_CI_SEED must be at least 0"),
        ({"MLOPS_CI_FORCE": "maybe"}, "MLOPS_CI_FORCE must be true or false"),
        ({"MLOPS_CI_MODE": "medium"}, "must be one of fast, slow"),
        ({"MLOPS_CI_PARAMS": "novalue"}, "takes KEY=VALUE"),
    ],
)
def test_bad_values_name_where_they_came_from(env, message):
    with pytest.raises(UsageError, match=message.replace("(", r"\(")):
        values(env=env)


def test_bad_flag_value_names_the_flag():
    with pytest.raises(UsageError, match="--param takes KEY=VALUE"):
        values(flags={"params": ["oops"]})
    with pytest.raises(UsageError, match="--seed must be an integer"):
        values(flags={"seed": "x"})


def test_env_booleans():
    assert values(env={"MLOPS_CI_FORCE": "true"})["force"] is True
    assert values(env={"MLOPS_CI_FORCE": "0"})["force"] is False


def test_no_two_settings_or_outputs_share_an_environment_variable():
    """A variable set for one step must not be read as another setting by the next: two
    different options never share one (deploy's --target is not the label column), and no
    option reads the MLOPS_CI_<STEP>_<OUTPUT> variables GitLab's dotenv reports pass on."""
    from mlops_ci.platforms.gitlab import dotenv_name
    from mlops_ci.steps import all_steps

    # (an option of the same name and kind in two steps is the same setting)
    readers: dict[str, set[tuple]] = {}
    for step in all_steps().values():
        for option in (*step.options, *step.top_level_options):
            for variable in (option.env_var, *option.env_aliases):
                readers.setdefault(variable, set()).add((option.name, option.kind))
    shared = {variable: options for variable, options in readers.items() if len(options) > 1}
    assert shared == {}
    outputs = {dotenv_name(step.name, o.name) for step in all_steps().values() for o in step.outputs}
    assert outputs.isdisjoint(readers), outputs & set(readers)


def test_numbers_in_a_config_list_are_read_as_their_text():
    import jsonschema

    option = OPTIONS[3]  # alias, a list
    jsonschema.validate([1, 64], option.json_schema())
    jsonschema.validate(0.5, option.json_schema())
    assert values(config={"alias": [1, 64]})["alias"] == ["1", "64"]
    assert values(config={"alias": 0.5})["alias"] == ["0.5"]
