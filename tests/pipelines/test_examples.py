"""The example pipelines run end to end, for real: the GitHub workflow with `act` on this
host, the GitLab pipeline with `gitlab-ci-local` in shell mode, both against the real
MLflow server, the gate posting its verdict to the local GitHub/GitLab API stand-in
(tests/fake_forge.py). And a hostile input value reaches mlops-ci verbatim through an
action and a component, executing nothing."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from mlops_ci.steps import all_steps
from tests.fake_forge import FakeForge, Token
from tests.helpers import EXAMPLE
from tests.pipelines.runs import (
    ACTION_REF,
    ACTION_REPO,
    GITLAB_RUNNER,
    VENV_BIN,
    commit_all,
    example_copy,
    prepare_gitlab_project,
    printed_outputs,
    run_act,
    run_gitlab_ci_local,
)

pytestmark = pytest.mark.slow

STEPS = all_steps()
# The steps the example pipelines run, read from them (a step joins by being added there);
# deploy runs on the default branch only, so a pull/merge request runs the others.
MAIN_BRANCH_ONLY = {"deploy"}
GITHUB_ALL_STEPS = re.findall(
    r"uses: mlops-ci/mlops-ci/actions/([a-z]+)@",
    (EXAMPLE / ".github" / "workflows" / "model.yml").read_text(),
)
GITLAB_ALL_STEPS = [
    Path(include["file"]).stem
    for include in yaml.safe_load((EXAMPLE / ".gitlab-ci.yml").read_text())["include"]
]
GITHUB_STEPS = [step for step in GITHUB_ALL_STEPS if step not in MAIN_BRANCH_ONLY]
GITLAB_STEPS = [step for step in GITLAB_ALL_STEPS if step not in MAIN_BRANCH_ONLY]
# The Docker engine the package and profile steps build and run the image on, and the base
# image it already holds: this machine has no Docker Hub (a runner pulls python:3.11-slim).
DOCKER = {"DOCKER_HOST": os.environ.get("DOCKER_HOST", "")}

PR_NUMBER = 7
# What a real GitLab runner sets and gitlab-ci-local, on purpose, does not.
MERGE_REQUEST = {"CI_PIPELINE_SOURCE": "merge_request_event", "CI_MERGE_REQUEST_IID": str(PR_NUMBER)}
# The repository / project the gate posts to on the API stand-in, and its one token.
FORGE_REPO = "acme/census-income"
FORGE_TOKEN = "ghs_ExampleT0kenForTheGateAA11bb22"
GITLAB_PROJECT_ID = "17"


def assert_outputs_declared(result: dict) -> None:
    declared = {o.name for o in STEPS[result["step"]].outputs}
    assert set(result["outputs"]) <= declared, set(result["outputs"]) - declared


def assert_registered_for_pr(client, name: str, train: dict, register: dict) -> None:
    assert train["status"] == "passed" and register["status"] == "passed"
    run_id = train["outputs"]["run-id"]
    assert register["outputs"]["run-id"] == run_id
    assert register["outputs"]["aliases"] == f"challenger,pr-{PR_NUMBER}"
    for alias in ("challenger", f"pr-{PR_NUMBER}"):
        version = client.get_model_version_by_alias(name, alias)
        assert version.version == "1" and version.run_id == run_id
    assert client.get_run(run_id).data.metrics["train_accuracy"] > 0.8


@pytest.fixture
def forge():
    """The local stand-in for the GitHub and GitLab APIs the gate talks to."""
    with FakeForge({FORGE_TOKEN: Token()}) as server:
        yield server


def head_commit(project: Path) -> str:
    done = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=project, capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def assert_one_verdict(comments: list[dict], statuses: list[dict], forge: FakeForge) -> None:
    assert forge.problems == []
    (comment,) = comments
    assert comment["body"].startswith("<!-- mlops-ci:default -->")
    assert re.match(r"### ✅ .+: pass — ", comment["body"].splitlines()[2])
    assert statuses, "the gate set no commit status or check run"
    assert FORGE_TOKEN not in json.dumps(comments)


def test_example_github_workflow_runs_with_act_on_a_pull_request_then_on_main(
    tmp_path, show, release, act_cache, forge, mlflow_server, client, unique_name
):
    project = example_copy(tmp_path / "repo", unique_name)
    subprocess.run(
        ["git", "remote", "add", "origin", f"https://github.com/{FORGE_REPO}.git"], cwd=project, check=True
    )
    sha = head_commit(project)
    forge.add_pull_request(FORGE_REPO, PR_NUMBER, head_sha=sha)
    opened = {
        "pull_request": {
            "number": PR_NUMBER,
            "head": {"ref": "better-model", "sha": sha, "repo": {"full_name": FORGE_REPO, "fork": False}},
            "base": {"ref": "main", "repo": {"full_name": FORGE_REPO}},
        }
    }

    def run_workflow(event: str, payload: dict):
        """The example's model.yml under act, as GitHub would run it for ``event``."""
        run = run_act(
            project,
            workflow=project / ".github" / "workflows" / "model.yml",
            event=event,
            payload=payload,
            work=tmp_path,
            release=release,
            variables={"MLFLOW_TRACKING_URI": mlflow_server},
            action_cache=act_cache,
            env={"GITHUB_API_URL": forge.url, **DOCKER},
            secrets={"GITHUB_TOKEN": FORGE_TOKEN},
        )
        show(run)
        run.assert_ok()
        return run

    run = run_workflow("pull_request", opened)
    for step in GITHUB_STEPS:
        assert f"✅  Success - Main {ACTION_REPO}/actions/{step}@{ACTION_REF}" in run.log
        assert f"{step}: passed - " in run.log
    # Installed once per job (the model job, the gate job), then reused by the job's next
    # actions; never by another job.
    installs, reuses = run.log.count("::group::Installing mlops-ci"), run.log.count("is already installed")
    assert installs == 2 and reuses == len(GITHUB_STEPS) - 2
    assert "🏁  Job succeeded" in run.log
    for step in MAIN_BRANCH_ONLY:  # not for a pull request
        assert f"{step}: passed - " not in run.log
    assert FORGE_TOKEN not in run.log

    results = {
        s: {"step": s, "status": "passed", "outputs": printed_outputs(run.log, s)} for s in GITHUB_STEPS
    }
    for result in results.values():
        assert_outputs_declared(result)
    assert_registered_for_pr(client, unique_name, results["train"], results["register"])
    version = client.get_model_version(unique_name, "1")
    assert version.tags["mlops_ci.platform"] == "github" and version.tags["mlops_ci.pr"] == str(PR_NUMBER)
    assert results["gate"]["outputs"]["verdict"] == "pass"
    assert_one_verdict(forge.github_comments(FORGE_REPO, PR_NUMBER), forge.check_runs + forge.statuses, forge)

    # Merged: the same workflow on a push to main reuses the run and the version, and deploy
    # promotes it (its validation passed; there was no champion to change under it).
    assert "champion" not in client.get_registered_model(unique_name).aliases
    push = {"ref": "refs/heads/main", "after": sha, "repository": {"full_name": FORGE_REPO}}
    run = run_workflow("push", push)
    for step in GITHUB_ALL_STEPS:
        assert f"{step}: passed - " in run.log or f"{step}: skipped - " in run.log
    assert "train: skipped - " in run.log  # reused, not trained again
    deploy = printed_outputs(run.log, "deploy")
    assert_outputs_declared({"step": "deploy", "outputs": deploy})
    assert client.get_model_version_by_alias(unique_name, "champion").version == "1"
    assert forge.problems == [] and FORGE_TOKEN not in run.log


def test_example_gitlab_pipeline_runs_with_gitlab_ci_local(
    tmp_path, show, release, job_tmp, forge, mlflow_server, client, unique_name
):
    project = example_copy(tmp_path, unique_name)
    prepare_gitlab_project(project, release)
    notes = forge.add_merge_request(GITLAB_PROJECT_ID, PR_NUMBER)
    run = run_gitlab_ci_local(
        project,
        # The component installs mlops-ci from PyPI by default; here from the release's files.
        variables={
            "MLFLOW_TRACKING_URI": mlflow_server,
            **DOCKER,
            "MLOPS_CI_INSTALL": str(release),
            "GITLAB_TOKEN": FORGE_TOKEN,
            "CI_SERVER_URL": forge.url,
            "CI_PROJECT_ID": GITLAB_PROJECT_ID,
            "CI_MERGE_REQUEST_PROJECT_ID": GITLAB_PROJECT_ID,
            **GITLAB_RUNNER,
            **MERGE_REQUEST,
        },
        tmp=job_tmp,
    )
    show(run)
    run.assert_ok()
    for step in GITLAB_STEPS:
        assert re.search(rf"mlops-ci-{step} +starting shell \({step}\)", run.log)
        assert f"{step}: passed - " in run.log
        assert f"PASS  mlops-ci-{step}" in run.log
    assert "mlops_ci_install_started" in run.log  # the collapsible install section

    out_dir = project / ".mlops-ci"
    results = {s: json.loads((out_dir / f"{s}.json").read_text()) for s in GITLAB_STEPS}
    for result in results.values():
        assert_outputs_declared(result)
        assert result["context"]["platform"] == "gitlab"
    assert_registered_for_pr(client, unique_name, results["train"], results["register"])
    # The dotenv reports later jobs read, and the gate's reports for the MR widgets.
    assert (
        f"MLOPS_CI_TRAIN_RUN_ID={results['train']['outputs']['run-id']}\n"
        in (out_dir / "train.env").read_text()
    )
    assert "MLOPS_CI_REGISTER_MODEL_VERSION=1\n" in (out_dir / "register.env").read_text()
    assert "MLOPS_CI_GATE_VERDICT=pass\n" in (out_dir / "gate.env").read_text()
    assert (out_dir / "gate-junit.xml").is_file() and (out_dir / "gate-metrics.txt").is_file()
    assert_one_verdict(notes, forge.gitlab_statuses, forge)


def listed_jobs(project: Path, variables: dict[str, str]) -> set[str]:
    run = run_gitlab_ci_local(project, variables=variables, args=("--list-csv",), timeout=120)
    run.assert_ok()
    return {line.split(";")[0] for line in run.log.splitlines()[1:] if line.startswith("mlops-ci-")}


def test_components_run_in_merge_requests_and_deploy_on_the_default_branch_only(tmp_path, release):
    project = example_copy(tmp_path, "rules")
    prepare_gitlab_project(project, release)
    assert listed_jobs(project, MERGE_REQUEST) == {f"mlops-ci-{step}" for step in GITLAB_STEPS}
    # A push to main, the default branch: deploy too.
    every_step = {f"mlops-ci-{step}" for step in GITLAB_ALL_STEPS}
    assert listed_jobs(project, {}) == every_step >= {"mlops-ci-deploy"}
    # A scheduled pipeline is drift's: none of the model pipeline's jobs.
    assert listed_jobs(project, {"CI_PIPELINE_SOURCE": "schedule"}) == set()
    subprocess.run(["git", "checkout", "-q", "-b", "experiment"], cwd=project, check=True)
    assert listed_jobs(project, {}) == set()  # a push to another branch


# --------------------------------------------------------------------------- script injection

# Records which Python ran it (the job's, never mlops-ci's own virtualenv) and which
# token-named variables it was handed.
FIT = """\
import os
import sys

import mlflow
import mlflow.sklearn
import numpy as np
from sklearn.linear_model import LogisticRegression

X = np.arange(40, dtype=float).reshape(20, 2)
with mlflow.start_run():
    mlflow.set_tag("python", sys.executable)
    mlflow.set_tag("tokens", " ".join(sorted(k for k, v in os.environ.items() if "TOKEN" in k and v)))
    mlflow.sklearn.log_model(LogisticRegression().fit(X, X[:, 0] > 20), name="model")
"""


def hostile(marker: Path) -> str:
    """Every shell metacharacter that matters: substitution, backticks, both quotes, a
    command separator and a newline."""
    return (
        f"$(touch {marker}-dollar) `touch {marker}-backtick` \"double\" 'single'; "
        f"touch {marker}-semicolon\nsecond line && touch {marker}-and | cat"
    )


def tiny_project(tmp_path: Path, name: str) -> Path:
    project = tmp_path / "tiny"
    project.mkdir()
    (project / "fit.py").write_text(FIT)
    (project / "mlops-ci.yaml").write_text(
        yaml.safe_dump({"experiment": name, "model-name": name, "train": {"command": "python fit.py"}})
    )
    return project


def assert_arrived_verbatim(client, name: str, value: str, marker: Path) -> str:
    experiment = client.get_experiment_by_name(name)
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.run_name == value
    assert not list(marker.parent.glob(marker.name + "*")), "a metacharacter was executed"
    # The training command ran with the job's Python (the test interpreter's folder is first
    # on the job's PATH), not with mlops-ci's own virtualenv.
    assert Path(run.data.tags["python"]).parent == VENV_BIN
    # No GitHub token reached the training command through the action (the job has one).
    assert "GITHUB_TOKEN" not in run.data.tags["tokens"], run.data.tags["tokens"]
    return run.info.run_id


def test_hostile_input_reaches_the_root_action_verbatim(
    tmp_path, show, release, act_cache, mlflow_server, client, unique_name
):
    marker = tmp_path / "pwned"
    value = hostile(marker)
    project = tiny_project(tmp_path, unique_name)
    action = f"{ACTION_REPO}@{ACTION_REF}"
    workflow = {
        "name": "hostile input",
        "on": "push",
        "jobs": {
            "train": {
                "runs-on": "ubuntu-latest",
                "env": {"MLFLOW_TRACKING_URI": mlflow_server},
                "steps": [
                    {"uses": "actions/checkout@v4"},
                    {"uses": "actions/setup-python@v5", "with": {"python-version": "3.12"}},
                    {"id": "train", "uses": action, "with": {"step": "train", "run-name": value}},
                    {
                        "id": "misplaced",
                        "continue-on-error": True,
                        "uses": action,
                        "with": {"step": "train", "alias": "for-register-only"},
                    },
                    {
                        "shell": "bash",
                        "env": {
                            "RUN_ID": "${{ steps.train.outputs.run-id }}",
                            "MISPLACED": "${{ steps.misplaced.outcome }}",
                        },
                        "run": 'echo "output run-id=$RUN_ID misplaced=$MISPLACED"',
                    },
                ],
            }
        },
    }
    path = project / ".github" / "workflows" / "hostile.yml"
    path.parent.mkdir(parents=True)
    path.write_text(yaml.safe_dump(workflow, sort_keys=False))
    commit_all(project)
    run = run_act(
        project,
        workflow=path,
        event="push",
        payload={},
        work=tmp_path,
        release=release,
        variables={},
        action_cache=act_cache,
        secrets={"GITHUB_TOKEN": FORGE_TOKEN},
    )
    show(run)
    run.assert_ok()
    run_id = assert_arrived_verbatim(client, unique_name, value, marker)
    assert f"output run-id={run_id} misplaced=failure" in run.log  # the root action's output
    assert "inputs alias do not apply to this step" in run.log


def test_hostile_input_reaches_the_component_verbatim(
    tmp_path, show, release, job_tmp, mlflow_server, client, unique_name
):
    marker = tmp_path / "pwned"
    value = hostile(marker)
    project = tiny_project(tmp_path, unique_name)
    pipeline = {
        "stages": ["train"],
        "include": [
            {
                "project": ACTION_REPO,
                "ref": ACTION_REF,
                "file": "/gitlab-templates/train.yml",
                "inputs": {"stage": "train", "run-name": value, "install": str(release)},
            }
        ],
    }
    (project / ".gitlab-ci.yml").write_text(yaml.safe_dump(pipeline, sort_keys=False))
    commit_all(project)
    prepare_gitlab_project(project, release)
    run = run_gitlab_ci_local(
        project, variables={"MLFLOW_TRACKING_URI": mlflow_server, **GITLAB_RUNNER}, tmp=job_tmp
    )
    show(run)
    run.assert_ok()
    run_id = assert_arrived_verbatim(client, unique_name, value, marker)
    assert f"MLOPS_CI_TRAIN_RUN_ID={run_id}" in (project / ".mlops-ci" / "train.env").read_text()
