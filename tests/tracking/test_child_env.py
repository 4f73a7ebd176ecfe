"""The training command (the pull request's code) gets no CI or code-host credential, keeps
what it needs to log to MLflow, and gets exactly the names the user passes on purpose."""

from __future__ import annotations

import io
import json
import os
import sys
from pathlib import Path

import pytest

from mlops_ci.errors import UsageError
from mlops_ci.tracking.child_env import DENIED_NAMES, child_environment, is_denied
from mlops_ci.tracking.command import prepare_command, run_command
from tests.helpers import cli_env, run_cli

# What a GitHub Actions or GitLab CI job may hold; none of it may reach training.
CI_SECRETS = {
    "GITHUB_TOKEN": "ghs_workflowtoken",
    "GH_TOKEN": "ghp_usertoken",
    "GITLAB_TOKEN": "glpat-projecttoken",
    "GITLAB_API_TOKEN": "glpat-apitoken",
    "CI_JOB_TOKEN": "jobtoken",
    "CI_JOB_JWT_V2": "eyJjwt",
    "CI_REGISTRY_PASSWORD": "registrypass",
    "CI_DEPLOY_PASSWORD": "deploypass",
    "CI_DEPENDENCY_PROXY_PASSWORD": "proxypass",
    "CI_REPOSITORY_URL": "https://gitlab-ci-token:jobtoken@gitlab.example/acme/repo.git",
    "ACTIONS_RUNTIME_TOKEN": "runtimetoken",
    "ACTIONS_ID_TOKEN_REQUEST_TOKEN": "oidcrequesttoken",
    "ACTIONS_ID_TOKEN_REQUEST_URL": "https://pipelines.actions.example/oidc?x=1",
    "ACTIONS_CACHE_URL": "https://artifactcache.actions.example/abc/",
    "ACTIONS_RESULTS_URL": "https://results-receiver.actions.example/",
    "ACTIONS_RUNTIME_URL": "https://pipelines.actions.example/abc/",
    "NPM_TOKEN": "npm_token",
    "HF_TOKEN": "hf_token",
    "SOME_SERVICE_TOKEN_V2": "other",
}
# What training needs to log to MLflow (and ordinary variables).
KEPT = {
    "MLFLOW_TRACKING_URI": "http://mlflow.example",
    "MLFLOW_TRACKING_USERNAME": "pr-bot",
    "MLFLOW_TRACKING_PASSWORD": "pr-bot-password",
    "MLFLOW_TRACKING_TOKEN": "mlflow-token",
    "AWS_SESSION_TOKEN": "s3-artifact-session",
    "HOME": "/home/runner",
    "TOKENIZERS_PARALLELISM": "false",
    "GITHUB_SHA": "9" * 40,
    "CI_COMMIT_SHA": "9" * 40,
}


def test_every_ci_credential_is_withheld_and_mlflow_credentials_are_kept():
    child = child_environment({**CI_SECRETS, **KEPT, "MLOPS_CI_GITHUB_TOKEN": "x"})
    assert not set(CI_SECRETS) & set(child.env)
    assert dict(child.env) == KEPT
    assert child.dropped == tuple(sorted(CI_SECRETS))  # names only, and not our own inputs


@pytest.mark.parametrize("name", sorted(DENIED_NAMES))
def test_each_listed_name_is_denied(name):
    assert is_denied(name) and is_denied(name.lower())


@pytest.mark.parametrize(
    "name", ["PATH", "TOKENIZERS_PARALLELISM", "MLFLOW_TRACKING_TOKEN", "GITHUB_RUN_ID", "CI_PIPELINE_ID"]
)
def test_ordinary_and_mlflow_names_are_not_denied(name):
    assert not is_denied(name)


def test_pass_env_passes_exactly_the_named_variable():
    child = child_environment({**CI_SECRETS, **KEPT}, pass_env=["GITLAB_API_TOKEN"])
    assert child.env["GITLAB_API_TOKEN"] == "glpat-apitoken"
    assert set(child.env) - set(KEPT) == {"GITLAB_API_TOKEN"}
    assert "GITLAB_API_TOKEN" not in child.dropped and "GITLAB_TOKEN" in child.dropped


@pytest.mark.parametrize("bad", ["*_TOKEN", "GITHUB TOKEN", "", "1ABC", "A=B"])
def test_pass_env_takes_exact_names_only(bad):
    with pytest.raises(UsageError, match="exact environment variable names"):
        child_environment({}, pass_env=[bad])


def dump_env_command(tmp_path: Path, pass_env=()):
    script = tmp_path / "dump.py"
    script.write_text("import json, os, sys\njson.dump(dict(os.environ), open(sys.argv[1], 'w'))\n")
    env = {"PATH": os.path.dirname(sys.executable) + os.pathsep + os.defpath, **CI_SECRETS, **KEPT}
    return prepare_command(
        f"python dump.py {tmp_path / 'env.json'}",
        params={},
        seed=1,
        project_dir=tmp_path,
        env=env,
        pass_env=pass_env,
    )


def run_and_read(command, tmp_path: Path) -> dict:
    outcome = run_command(
        command, log_path=tmp_path / "train.log", timeout_s=60, on_abort=lambda: None, stream=io.BytesIO()
    )
    assert outcome.succeeded, (tmp_path / "train.log").read_text()
    return json.loads((tmp_path / "env.json").read_text())


def test_the_training_process_sees_no_token(tmp_path):
    seen = run_and_read(dump_env_command(tmp_path), tmp_path)
    assert not set(CI_SECRETS) & set(seen)
    for secret in CI_SECRETS.values():
        assert secret not in json.dumps(seen)
    assert {name: seen[name] for name in KEPT} == KEPT


def test_the_training_process_gets_a_passed_name_and_no_other(tmp_path):
    seen = run_and_read(dump_env_command(tmp_path, pass_env=["GH_TOKEN"]), tmp_path)
    assert seen["GH_TOKEN"] == "ghp_usertoken"
    assert not (set(CI_SECRETS) - {"GH_TOKEN"}) & set(seen)


@pytest.mark.slow
def test_mlops_ci_train_withholds_tokens_and_passes_pass_env(tmp_path, mlflow_server, unique_name):
    """The whole step: `mlops-ci train --pass-env` from the CLI, against a real MLflow server."""
    (tmp_path / "fit.py").write_text(
        "import json, os\n"
        "json.dump(dict(os.environ), open('seen-env.json', 'w'))\n"
        "import mlflow\nimport numpy as np\nfrom sklearn.linear_model import LogisticRegression\n"
        "mlflow.autolog()\nrng = np.random.default_rng(0)\nX = rng.normal(size=(100, 2))\n"
        "LogisticRegression().fit(X, (X[:, 0] > 0).astype(int))\n"
    )
    env = cli_env(
        **CI_SECRETS,
        MLFLOW_TRACKING_URI=mlflow_server,
        MLFLOW_TRACKING_USERNAME="pr-bot",
        MLFLOW_TRACKING_PASSWORD="pr-bot-password",
        MLOPS_CI_EXPERIMENT=unique_name,
    )
    ran = run_cli(
        ["train", "--command", "python fit.py", "--data", "fit.py", "--pass-env", "HF_TOKEN"],
        cwd=tmp_path,
        env=env,
    )
    assert ran.returncode == 0, ran.stderr
    seen = json.loads((tmp_path / "seen-env.json").read_text())
    assert set(CI_SECRETS) & set(seen) == {"HF_TOKEN"}
    assert seen["MLFLOW_TRACKING_URI"] == mlflow_server
    assert (
        seen["MLFLOW_TRACKING_USERNAME"] == "pr-bot" and seen["MLFLOW_TRACKING_PASSWORD"] == "pr-bot-password"
    )
    assert "GITHUB_TOKEN" in ran.stderr and "ghs_workflowtoken" not in ran.stderr  # named, never shown
