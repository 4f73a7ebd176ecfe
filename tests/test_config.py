import jsonschema
import pytest

from mlops_ci.config import load_config
from mlops_ci.errors import UsageError
from mlops_ci.runner import full_config_schema


@pytest.fixture
def schema():
    return full_config_schema()


def write(tmp_path, text):
    path = tmp_path / "mlops-ci.yaml"
    path.write_text(text)
    return path


def test_schema_is_a_valid_json_schema(schema):
    jsonschema.Draft202012Validator.check_schema(schema)
    assert {"train", "register", "model-name", "tracking-uri"} <= set(schema["properties"])


def test_no_file_gives_the_empty_config(tmp_path, schema):
    config = load_config(None, cwd=tmp_path, schema=schema)
    assert config.path is None and dict(config.data) == {}


def test_valid_file_loads(tmp_path, schema):
    write(tmp_path, "model-name: m\ntrain:\n  command: python t.py\n  seed: 3\n  data: d.csv\n")
    config = load_config(None, cwd=tmp_path, schema=schema)
    assert config.section("train")["seed"] == 3
    assert config.base_dir == tmp_path


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("modle-name: x\n", r"unknown key 'modle-name' in .*mlops-ci.yaml; did you mean 'model-name'\?"),
        ("train:\n  comand: x\n", r"unknown key 'train.comand' in .*mlops-ci.yaml; did you mean 'command'\?"),
        ("train:\n  seed: abc\n", r"'train.seed' in .*mlops-ci.yaml must be an integer, got 'abc'"),
        ("train:\n  data: 3\n", r"'train.data' in .*mlops-ci.yaml must be a string or a list, got 3"),
        ("retry-timeout: [1]\n", r"'retry-timeout' in .*mlops-ci.yaml must be a number"),
        ("train: [1, 2]\n", r"'train' in .*mlops-ci.yaml must be a mapping"),
        ("- a\n- b\n", r"must be a mapping of settings, got a list"),
        ("train:\n  command: [unclosed\n", r"mlops-ci.yaml at line \d+, column \d+: .*fix the YAML syntax"),
    ],
)
def test_invalid_files_name_the_key_and_the_file(tmp_path, schema, text, message):
    write(tmp_path, text)
    with pytest.raises(UsageError, match=message):
        load_config(None, cwd=tmp_path, schema=schema)


def test_explicit_missing_file_is_an_error(tmp_path, schema):
    with pytest.raises(UsageError, match="config file .*nope.yaml does not exist"):
        load_config(tmp_path / "nope.yaml", cwd=tmp_path, schema=schema)


def test_booleans_are_not_integers(tmp_path, schema):
    write(tmp_path, "train:\n  seed: true\n")
    with pytest.raises(UsageError, match="must be an integer"):
        load_config(None, cwd=tmp_path, schema=schema)
