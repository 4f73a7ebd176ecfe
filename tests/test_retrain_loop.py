"""The closed loop, for real: a drift check on a shifted window dispatches a retraining with
that window and the data's location (recorded by the GitHub/GitLab stand-in,
tests/fake_forge.py); the dispatched pipeline of examples/deploy-and-monitor runs under act
(GitHub) and gitlab-ci-local (GitLab) with exactly those inputs: train reads the new data
cut to the window, validate blocks a worse model and passes a good one on the window's
holdout, and deploy promotes the good one to `champion`.

The new data is a seeded transform of the census data (see ``new_window_data``), generated
here, never committed. Each test starts from a champion trained on the example's own
train.csv, then runs the retraining twice: with a worse model (two features), then with the
example's model. Slow: two pipeline runs of a few minutes each per platform.
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from tests import test_ci_pipelines as pipelines
from tests.ci_runs import prepare_gitlab_project, printed_outputs, run_act, run_gitlab_ci_local
from tests.fake_forge import FakeForge, Token
from tests.helpers import EXAMPLE, REPO, cli_env, run_cli

# The runner's fixtures, shared with the other pipeline runs.
release, act_cache, job_tmp, show, client = (
    pipelines.release,
    pipelines.act_cache,
    pipelines.job_tmp,
    pipelines.show,
    pipelines.client,
)
GITLAB_RUNNER = pipelines.GITLAB_RUNNER
commit_all, example_copy = pipelines.commit_all, pipelines.example_copy

pytestmark = pytest.mark.slow

LOOP = REPO / "examples" / "deploy-and-monitor"
FORGE_REPO = "acme/census-income"
GITHUB_TOKEN = "ghs_RetrainLoopDispatchT0ken1a2b3c"
TRIGGER_TOKEN = "glptt-RetrainLoopTriggerT0ken4d5e6f"
GITLAB_PROJECT_ID = "31"
WORSE = "age,hours-per-week"
# The serving window drift looks at, inside the new data's two months.
SERVED = ("2026-11-01", "2026-12-01")


def new_window_data(path: Path) -> Path:
    """The census population a while later, by a seeded transform of adult.csv: 12,000
    rows drawn with replacement (seed 2026), everyone 5 years older (at most 90), and wages
    risen so that everyone with a bachelor's degree or more (education-num >= 13) now earns
    >50K; each row gets a time uniformly at random (seed 2026) between 2026-10-15 and
    2026-12-15 in a `time` column. Age drifts and the champion, which never saw the new
    relation, loses accuracy (about 0.79 on the window's holdout, under the 0.80 floor); the
    example's model retrained on the window reaches about 0.89, a two-feature one 0.63."""
    rng = np.random.default_rng(2026)
    data = pd.read_csv(EXAMPLE / "data" / "adult.csv", keep_default_na=False)
    data = data.sample(n=12000, replace=True, random_state=2026).reset_index(drop=True)
    data["age"] = (data["age"] + 5).clip(upper=90)
    data.loc[data["education-num"] >= 13, "class"] = ">50K"
    seconds = rng.integers(0, 61 * 86400, len(data))
    times = pd.Timestamp("2026-10-15", tz="UTC") + pd.to_timedelta(seconds, unit="s")
    data["time"] = times.strftime("%Y-%m-%dT%H:%M:%SZ")
    data.to_csv(path, index=False)
    return path


def served_rows(new_data: Path, path: Path) -> Path:
    """What the serving containers logged in the served window: the new data's rows of it."""
    data = pd.read_csv(new_data, keep_default_na=False)
    data[(data["time"] >= SERVED[0]) & (data["time"] < SERVED[1])].to_csv(path, index=False)
    return path


def loop_project(tmp_path: Path, name: str) -> Path:
    """The census example with the deploy-and-monitor pipelines, as its own repository."""
    project = example_copy(tmp_path, name)
    shutil.copy2(LOOP / ".github" / "workflows" / "retrain.yml", project / ".github" / "workflows")
    shutil.copy2(LOOP / ".gitlab-ci.yml", project / ".gitlab-ci.yml")
    return commit_all(project)


def set_features(project: Path, features: str) -> None:
    """A commit that changes the model's features (the worse model, and back)."""
    config = project / "mlops-ci.yaml"
    settings = yaml.safe_load(config.read_text())
    settings["train"]["params"]["features"] = features
    config.write_text(yaml.safe_dump(settings, sort_keys=False))
    git = ["git", "-c", "user.name=Test", "-c", "user.email=test@example.com"]
    subprocess.run([*git, "commit", "-q", "-am", f"features: {features}"], cwd=project, check=True)


def champion_from_the_old_data(project: Path, mlflow_server: str, client, name: str) -> None:
    """Version 1, trained on the example's train.csv, is the champion."""
    env = cli_env(MLFLOW_TRACKING_URI=mlflow_server)
    for step in ("train", "register"):
        done = run_cli([step, "--out-dir", str(project.parent / "champion")], cwd=project, env=env)
        assert done.returncode == 0, done.stderr
    client.set_registered_model_alias(name, "champion", "1")


def drift(project: Path, current: Path, env: dict[str, str], *retrain: str):
    """The scheduled drift check of monitor.yml / the drift job, on the served window."""
    args = ["drift", "--current", str(current), "--time-column", "time", "--reference", "data/train.csv"]
    args += ["--target", "class", "--ignore-columns", "time", "--retrain", *retrain]
    args += ["--out-dir", str(project.parent / "drift")]
    return run_cli(args, cwd=project, env=cli_env(**env))


def expected_holdout_rows(new_data: Path, start: str, end: str) -> int:
    """The split rule: rows with start <= time <= end, the newest 20 % (rounded up)."""
    times = pd.to_datetime(pd.read_csv(new_data, keep_default_na=False)["time"], utc=True)
    inside = ((times >= pd.Timestamp(start)) & (times <= pd.Timestamp(end))).sum()
    return math.ceil(inside * 0.2)


def assert_trained_on_the_window(client, train: dict, ref: str, window: str, new_data: Path) -> None:
    assert train["window"] == window
    assert train["holdout-path"].startswith(".mlops-ci/data/") and train["holdout-path"].endswith(
        "-holdout.csv"
    )
    sha256 = hashlib.sha256(new_data.read_bytes()).hexdigest()
    assert train["data-sha256"] == sha256
    tags = client.get_run(train["run-id"]).data.tags
    assert tags["mlops_ci.data_ref"] == ref and tags["mlops_ci.data_ref.sha256"] == sha256
    assert tags["mlops_ci.data_window"] == window and tags["mlops_ci.data_snapshot"] == train["data-snapshot"]


@pytest.fixture
def forge():
    with FakeForge({GITHUB_TOKEN: Token()}) as server:
        yield server


def test_drift_retrains_validates_and_promotes_under_act(
    tmp_path, show, release, act_cache, forge, mlflow_server, client, unique_name
):
    project = loop_project(tmp_path / "repo", unique_name)
    new_data = new_window_data(tmp_path / "labelled.csv")
    champion_from_the_old_data(project, mlflow_server, client, unique_name)
    # Where the labelled data lives: an MLflow artifact (the exporter logged it there).
    experiment = client.create_experiment(f"{unique_name}-data")
    exporter = client.create_run(experiment).info.run_id
    client.log_artifact(exporter, str(new_data), "labelled")
    ref = f"runs:/{exporter}/labelled/{new_data.name}"

    forge.add_workflow(
        FORGE_REPO,
        "retrain.yml",
        inputs={"reason": True, "window-start": False, "window-end": False, "data": True},
    )
    github = {
        "GITHUB_ACTIONS": "true",
        "GITHUB_REPOSITORY": FORGE_REPO,
        "GITHUB_API_URL": forge.url,
        "GITHUB_TOKEN": GITHUB_TOKEN,
        "GITHUB_RUN_ID": "41",
        "GITHUB_OUTPUT": str(tmp_path / "github-output"),
        "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md"),
        "MLFLOW_TRACKING_URI": mlflow_server,
    }
    found = drift(
        project,
        served_rows(new_data, tmp_path / "served.csv"),
        github,
        "--retrain-workflow",
        "retrain.yml",
        "--retrain-input",
        f"data={ref}",
    )
    assert found.returncode == 1, found.stderr  # drift found: the job fails, and retrains
    assert forge.problems == []
    (dispatch,) = forge.dispatches
    inputs = dispatch["inputs"]
    assert dispatch["workflow"] == "retrain.yml" and inputs["data"] == ref and "age" in inputs["reason"]
    start, end = inputs["window-start"], inputs["window-end"]
    assert start.startswith(SERVED[0][:7]) and end.startswith(SERVED[0][:7])
    window = f"{start}/{end}"

    def retrain():
        """retrain.yml under act, as GitHub runs it for the dispatch drift made."""
        run = run_act(
            project,
            workflow=project / ".github" / "workflows" / "retrain.yml",
            event="workflow_dispatch",
            payload={"inputs": inputs, "ref": "refs/heads/main", "repository": {"full_name": FORGE_REPO}},
            work=tmp_path,
            release=release,
            variables={"MLFLOW_TRACKING_URI": mlflow_server},
            action_cache=act_cache,
            timeout=900,
        )
        show(run)
        return run

    # A worse model: trained on the window, blocked on its holdout; nothing promoted.
    set_features(project, WORSE)
    run = retrain()
    assert run.returncode != 0
    train = printed_outputs(run.log, "train")
    assert_trained_on_the_window(client, train, ref, window, new_data)
    assert train["data-snapshot"].startswith(f"runs:/{train['run-id']}/mlops-ci/data/")
    assert client.get_run(train["run-id"]).data.params["features"] == WORSE
    assert "validate: failed - " in run.log and "deploy: " not in run.log
    assert printed_outputs(run.log, "validate")["holdout-rows"] == str(
        expected_holdout_rows(new_data, start, end)
    )
    assert client.get_model_version_by_alias(unique_name, "champion").version == "1"

    # The example's model on the same window: passes, and deploy promotes it.
    set_features(project, "all")
    run = retrain()
    run.assert_ok()
    train = printed_outputs(run.log, "train")
    assert_trained_on_the_window(client, train, ref, window, new_data)
    assert "validate: passed - " in run.log and "deploy: passed - " in run.log
    version = printed_outputs(run.log, "register")["model-version"]
    champion = client.get_model_version_by_alias(unique_name, "champion")
    assert champion.version == version == "3" and champion.run_id == train["run-id"]


def test_drift_retrains_validates_and_promotes_under_gitlab_ci_local(
    tmp_path, show, release, job_tmp, forge, mlflow_server, client, unique_name
):
    project = loop_project(tmp_path, unique_name)
    prepare_gitlab_project(project, release)
    new_data = new_window_data(tmp_path / "labelled.csv")
    champion_from_the_old_data(project, mlflow_server, client, unique_name)
    ref = f"file://{new_data}"  # a shared volume; through fsspec, s3:// reads the same way

    forge.add_trigger_token(GITLAB_PROJECT_ID, TRIGGER_TOKEN)
    gitlab = {
        "GITLAB_CI": "true",
        "CI_SERVER_URL": forge.url,
        "CI_PROJECT_ID": GITLAB_PROJECT_ID,
        "CI_DEFAULT_BRANCH": "main",
        "CI_PIPELINE_ID": "600",
        "GITLAB_TRIGGER_TOKEN": TRIGGER_TOKEN,
        "MLFLOW_TRACKING_URI": mlflow_server,
    }
    found = drift(
        project,
        served_rows(new_data, tmp_path / "served.csv"),
        gitlab,
        "--retrain-input",
        f"RETRAIN_DATA={ref}",
    )
    assert found.returncode == 1, found.stderr
    assert forge.problems == []
    (pipeline,) = forge.pipelines
    variables = pipeline["variables"]
    assert pipeline["source"] == "trigger" and variables["RETRAIN_DATA"] == ref
    start, end = variables["RETRAIN_WINDOW_START"], variables["RETRAIN_WINDOW_END"]
    window = f"{start}/{end}"

    def retrain():
        """The triggered pipeline under gitlab-ci-local, with the variables drift sent."""
        shutil.rmtree(project / ".mlops-ci", ignore_errors=True)
        run = run_gitlab_ci_local(
            project,
            variables={
                **variables,
                "CI_PIPELINE_SOURCE": "trigger",
                "MLFLOW_TRACKING_URI": mlflow_server,
                "MLOPS_CI_INSTALL": str(release),
                **GITLAB_RUNNER,
            },
            tmp=job_tmp,
            timeout=900,
        )
        show(run)
        return run

    def result(step: str) -> dict:
        return json.loads((project / ".mlops-ci" / f"{step}.json").read_text())

    set_features(project, WORSE)
    run = retrain()
    assert run.returncode != 0
    train = result("train")["outputs"]
    assert_trained_on_the_window(client, train, ref, window, new_data)
    assert train["data-snapshot"] == ref  # a local file: recorded by path and sha256
    validate = result("validate")
    assert validate["status"] == "failed"
    assert validate["outputs"]["holdout-rows"] == str(expected_holdout_rows(new_data, start, end))
    assert not (project / ".mlops-ci" / "deploy.json").exists()
    assert client.get_model_version_by_alias(unique_name, "champion").version == "1"

    set_features(project, "all")
    run = retrain()
    run.assert_ok()
    train = result("train")["outputs"]
    assert_trained_on_the_window(client, train, ref, window, new_data)
    assert result("validate")["status"] == "passed" and result("deploy")["status"] == "passed"
    champion = client.get_model_version_by_alias(unique_name, "champion")
    assert champion.version == result("register")["outputs"]["model-version"] == "3"
    assert champion.run_id == train["run-id"]
