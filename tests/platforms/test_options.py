"""The code hosts' API options, defined once: the same names and environment variables in
every step that takes them, no token in the committed config file, and the ApiSettings
and the platform made from their values."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlops_ci.config import Config
from mlops_ci.errors import UsageError
from mlops_ci.options import Option
from mlops_ci.platforms import detect_platform, platform_named
from mlops_ci.platforms.options import (
    api_options,
    api_settings,
    code_host,
    refuse_secrets_in_config,
    secret_options,
)
from mlops_ci.steps import all_steps

VALUES = {
    "retry_timeout": 7.0,
    "github_token": "ghs_t",
    "github_api_url": "http://github.local/api",
    "gitlab_token": "glpat-t",
    "gitlab_url": "http://gitlab.local",
}


def test_the_options_say_what_the_token_is_for_and_nothing_else_differs():
    first = api_options(github_token="for the gate", gitlab_token="for notes")
    second = api_options(github_token="for dispatch", gitlab_token="for pipelines")
    assert [o.name for o in first] == ["github-token", "github-api-url", "gitlab-token", "gitlab-url"]
    assert first[0].help == "for the gate" and second[2].help == "for pipelines"
    assert first[1] == second[1] and first[3] == second[3]
    assert first[0].env_aliases == ("GITHUB_TOKEN", "GH_TOKEN") and first[2].env_aliases == ("GITLAB_TOKEN",)


def test_every_step_with_api_options_takes_the_same_ones():
    shared = {o.name: o for o in api_options(github_token="", gitlab_token="")}
    users = 0
    for step in all_steps().values():
        for option in step.options:
            if option.name in shared:
                users += 1
                mine = shared[option.name]
                assert (option.env_aliases, option.default, option.metavar) == (
                    mine.env_aliases,
                    mine.default,
                    mine.metavar,
                ), (step.name, option.name)
    assert users >= 8  # gate and drift, four each


def test_secret_options_are_the_tokens():
    options = api_options(github_token="", gitlab_token="") + (
        Option("retrain-trigger-token", "t", env_aliases=("GITLAB_TRIGGER_TOKEN",)),
        Option("title", "t"),
    )
    assert [o.name for o in secret_options(options)] == [
        "github-token",
        "gitlab-token",
        "retrain-trigger-token",
    ]


def test_a_token_in_the_config_file_is_refused_naming_the_variable(tmp_path):
    secrets = secret_options(
        api_options(github_token="", gitlab_token="")
        + (Option("retrain-trigger-token", "t", env_aliases=("GITLAB_TRIGGER_TOKEN",)),)
    )
    path = tmp_path / "mlops-ci.yaml"
    for name, variable in (
        ("github-token", "GITHUB_TOKEN"),
        ("gitlab-token", "GITLAB_TOKEN"),
        ("retrain-trigger-token", "GITLAB_TRIGGER_TOKEN"),
    ):
        config = Config(path, {"drift": {name: "oops"}})
        with pytest.raises(UsageError) as raised:
            refuse_secrets_in_config(config, "drift", secrets)
        assert str(raised.value) == (
            f"{name} must not be in {path} (a file that gets committed); pass it in the environment: {variable}"
        )
    # Another section, or no token: nothing to refuse.
    refuse_secrets_in_config(Config(path, {"gate": {"github-token": "x"}}), "drift", secrets)
    refuse_secrets_in_config(Config(path, {"drift": {"github-api-url": "u"}}), "drift", secrets)


def test_api_settings_per_platform():
    github = api_settings("github", VALUES)
    assert (github.token, github.url, github.retry.budget_s) == ("ghs_t", "http://github.local/api", 7.0)
    gitlab = api_settings("gitlab", VALUES)
    assert (gitlab.token, gitlab.url) == ("glpat-t", "http://gitlab.local")
    local = api_settings("local", VALUES)
    assert (local.token, local.url, local.retry.budget_s) == (None, None, 7.0)


def test_platform_named_and_detection_agree(tmp_path):
    for name, env in (
        ("github", {"GITHUB_ACTIONS": "true"}),
        ("gitlab", {"GITLAB_CI": "true"}),
        ("local", {}),
    ):
        assert platform_named(name, env, cwd=tmp_path, out_dir=tmp_path).name == name
        assert type(detect_platform(env, cwd=tmp_path, out_dir=tmp_path)) is type(
            platform_named(name, env, cwd=tmp_path, out_dir=tmp_path)
        )
    with pytest.raises(ValueError, match="github, gitlab or local"):
        platform_named("bitbucket", {}, cwd=tmp_path, out_dir=tmp_path)


def test_code_host_reuses_the_current_platform_or_makes_one(tmp_path: Path):
    env = {"GITLAB_CI": "true", "CI_SERVER_URL": "http://gitlab.local"}
    current = detect_platform(env, cwd=tmp_path, out_dir=tmp_path)
    same = code_host("gitlab", VALUES, current=current, env=env, cwd=tmp_path, out_dir=tmp_path)
    assert same is current and same.api.token == "glpat-t"
    other = code_host("github", VALUES, current=current, env=env, cwd=tmp_path, out_dir=tmp_path)
    assert other is not current and other.name == "github"
    assert (other.api.token, other.api.url) == ("ghs_t", "http://github.local/api")
