"""The closed loop under act (GitHub): see tests/pipelines/loop.py."""

from __future__ import annotations

import pytest

from tests.pipelines.loop import (
    FORGE_REPO,
    GITHUB_TOKEN,
    SERVED,
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
from tests.pipelines.runs import printed_outputs, run_act

pytestmark = pytest.mark.slow


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
