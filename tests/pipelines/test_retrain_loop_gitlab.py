"""The closed loop under gitlab-ci-local (GitLab): see tests/pipelines/loop.py."""

from __future__ import annotations

import json
import shutil

import pytest

from tests.pipelines.loop import (
    GITLAB_PROJECT_ID,
    TRIGGER_TOKEN,
    WORSE,
    assert_trained_on_the_window,
    champion_from_the_old_data,
    drift,
    expected_holdout_rows,
    loop_project,
    new_window_data,
    served_rows,
    set_features,
)
from tests.pipelines.runs import GITLAB_RUNNER, prepare_gitlab_project, run_gitlab_ci_local

pytestmark = pytest.mark.slow


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
