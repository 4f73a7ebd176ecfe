"""`mlops-ci quality` through the runner: a real request log (the serving writer), labels
that arrived later, the validation estimate recorded on the champion's run in the real
MLflow server, and the retraining dispatch checked against the local GitHub stand-in."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from mlops_ci.errors import UsageError
from mlops_ci.runner import run_step
from mlops_ci.serving.requestlog import RequestLog
from tests.forge_cases import WRITE_TOKEN
from tests.helpers import cli_env, run_cli

ROWS = 2000
REPO = "acme/census-income"


def github_env(forge, tmp_path) -> dict[str, str]:
    return {
        "GITHUB_ACTIONS": "true",
        "GITHUB_REPOSITORY": REPO,
        "GITHUB_API_URL": forge.url,
        "GITHUB_TOKEN": WRITE_TOKEN,
        "GITHUB_RUN_ID": "99",
        "GITHUB_OUTPUT": str(tmp_path / "github-output"),
        "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md"),
    }


def serve_and_label(tmp_path, agreement: float, seed: int = 0):
    """2,000 one-row V2 requests logged by the serving writer, and labels that agree with
    the predictions at rate ``agreement`` (plus one label for a request never logged)."""
    rng = np.random.default_rng(seed)
    log = RequestLog(
        str(tmp_path / "logs" / "requests.jsonl"), model="m", version="1", max_bytes=10**9, keep=1
    )
    predictions = rng.integers(0, 2, ROWS)
    for i, prediction in enumerate(predictions):
        log.submit(
            "v2_infer",
            1,
            0.001,
            {"age": np.array([30.0 + i % 40])},
            {"label": np.array([prediction]), "probabilities": np.array([[0.4, 0.6]])},
            request_id=f"req-{i}",
        )
    log.close()
    agree = rng.random(ROWS) < agreement
    labels = pd.DataFrame(
        {
            "rid": [f"req-{i}" for i in range(ROWS)] + ["req-never-logged"],
            "y": [*np.where(agree, predictions, 1 - predictions), 1],
        }
    )
    path = tmp_path / "labels.csv"
    labels.to_csv(path, index=False)
    return tmp_path / "logs", path


@pytest.fixture
def champion(env, client):
    """A champion whose run recorded validate/accuracy 0.85."""
    name = env["MLOPS_CI_MODEL_NAME"]
    experiment = client.create_experiment(env["MLOPS_CI_EXPERIMENT"])
    run = client.create_run(experiment)
    client.log_metric(run.info.run_id, "validate/accuracy", 0.85)
    client.set_terminated(run.info.run_id)
    client.create_registered_model(name)
    version = client.create_model_version(name, f"runs:/{run.info.run_id}/model", run_id=run.info.run_id)
    client.set_registered_model_alias(name, "champion", version.version)
    return name


def quality(tmp_path, env, **flags):
    """Flags as the CLI gives them: text, lists of text, booleans."""
    flags = {
        k: [str(v) for v in value]
        if isinstance(value, list)
        else value
        if isinstance(value, bool)
        else str(value)
        for k, value in flags.items()
    }
    return run_step("quality", flags, env=env, cwd=tmp_path)


def test_a_decay_against_the_recorded_validation_estimate_fails(tmp_path, env, champion):
    logs, labels = serve_and_label(tmp_path, agreement=0.78)
    result = quality(tmp_path, env, requests=[logs], labels=[labels], id_column="rid", label_column="y")
    assert result.status == "failed"
    assert result.outputs["decay"] == "true" and result.outputs["expected"] == "0.85"
    assert result.outputs["matched-rows"] == str(ROWS) and result.outputs["unmatched-labels"] == "1"
    check = next(c for c in result.checks if c.name == "quality accuracy")
    assert check.message.startswith("quality decay: accuracy 0.7") and "vs 0.85 validated" in check.message
    assert check.details["expected_source"].startswith("validate/accuracy of models:/")
    joined = next(c for c in result.checks if c.name == "labels joined")
    assert (
        joined.status == "warning" and "1 labels whose request id is not in the request log" in joined.message
    )
    written = json.loads((tmp_path / ".mlops-ci" / "quality.json").read_text())
    assert written["status"] == "failed"


def test_a_stable_period_passes(tmp_path, env, champion):
    logs, labels = serve_and_label(tmp_path, agreement=0.85, seed=1)
    result = quality(tmp_path, env, requests=[logs], labels=[labels], id_column="rid", label_column="y")
    assert result.status == "passed" and result.outputs["decay"] == "false", result.summary


def test_too_few_labels_skip_with_the_reason(tmp_path, env, champion):
    logs, labels = serve_and_label(tmp_path, agreement=0.5)
    result = quality(
        tmp_path, env, requests=[logs], labels=[labels], id_column="rid", label_column="y", min_rows=5000
    )
    assert result.status == "skipped"
    assert (
        result.summary
        == f"only {ROWS} labelled predictions joined (fewer than --min-rows 5000); quality not tested"
    )


def test_a_decay_starts_retraining_with_the_reason(tmp_path, forge):
    logs, labels = serve_and_label(tmp_path, agreement=0.78)
    forge.add_workflow(REPO, "train.yml", inputs={"reason": True, "window-start": False, "window-end": False})
    result = quality(
        tmp_path,
        github_env(forge, tmp_path),
        requests=[logs],
        labels=[labels],
        id_column="rid",
        label_column="y",
        expected=0.85,
        retrain=True,
        retrain_workflow="train.yml",
    )
    assert forge.problems == []
    assert result.status == "failed" and result.outputs["retrain"] == "triggered"
    (dispatch,) = forge.dispatches
    assert dispatch["inputs"]["reason"].startswith("quality decay: accuracy 0.7")
    assert dispatch["inputs"]["reason"].endswith("vs 0.85 validated")
    written = (tmp_path / ".mlops-ci" / "quality.json").read_text() + (tmp_path / "github-output").read_text()
    assert WRITE_TOKEN not in written and "retrain=triggered" in written


def test_no_decay_starts_no_retraining(tmp_path, forge):
    logs, labels = serve_and_label(tmp_path, agreement=0.9)
    forge.add_workflow(REPO, "train.yml", inputs={"reason": True})
    result = quality(
        tmp_path,
        github_env(forge, tmp_path),
        requests=[logs],
        labels=[labels],
        id_column="rid",
        label_column="y",
        expected=0.85,
        retrain=True,
        retrain_workflow="train.yml",
    )
    assert result.status == "passed" and result.outputs["retrain"] == "not-needed" and forge.dispatches == []


def test_duplicate_labels_are_a_usage_error_naming_the_file(tmp_path):
    logs, labels = serve_and_label(tmp_path, agreement=0.85)
    frame = pd.read_csv(labels)
    pd.concat([frame, frame.head(1)]).to_csv(labels, index=False)
    with pytest.raises(UsageError, match=r"labels\.csv labels 1 request id\(s\) more than once \(req-0\)"):
        quality(
            tmp_path, {}, requests=[logs], labels=[labels], id_column="rid", label_column="y", expected=0.85
        )
    assert not (tmp_path / ".mlops-ci").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--label-column", "truth", "--expected", "0.85"],
            "--labels: labels.csv has no label column 'truth' (its columns: rid, y); pass --label-column",
        ),
        (["--label-column", "y", "--expected", "0.85", "--alpha", "0.5"], "--alpha"),
        (["--label-column", "y"], "nothing to compare with: pass --expected, or --model-uri / model-name"),
    ],
)
def test_bad_input_is_one_line_exit_2_nothing_written(tmp_path, args, message):
    logs, labels = serve_and_label(tmp_path, agreement=0.85)
    done = run_cli(
        ["quality", "--requests", str(logs), "--labels", str(labels), "--id-column", "rid", *args],
        cwd=tmp_path,
        env=cli_env(),
    )
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], done.stderr
    assert not (tmp_path / ".mlops-ci").exists()
