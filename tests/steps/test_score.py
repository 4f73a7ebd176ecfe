"""`mlops-ci score` through the CLI and the runner, against the real MLflow server: the
champion by default, its version pinned in the result and the lineage; bad input is one
line, exit 2, and nothing written."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from mlops_ci.result import read_step_result
from tests.helpers import cli_env, run_cli
from tests.model_fixtures import register_census_model
from tests.scoring.conftest import census_rows

pytestmark = pytest.mark.slow


def score(tmp_path, *args, env):
    return run_cli(["score", *args], cwd=tmp_path, env=env)


def test_the_champion_scores_by_default_with_its_version_pinned(tmp_path, mlflow_server, unique_name):
    register_census_model(mlflow_server, unique_name)
    census_rows(1200).to_csv(tmp_path / "batch.csv", index=False)
    (tmp_path / "mlops-ci.yaml").write_text(f"model-name: {unique_name}\nscore:\n  keep-columns: [id]\n")
    env = cli_env(MLFLOW_TRACKING_URI=mlflow_server, MLOPS_CI_INPUT="batch.csv")
    result = score(tmp_path, "--workers", "2", "--batch-rows", "500", env=env)
    assert result.returncode == 0, result.stderr
    saved = read_step_result(tmp_path / ".mlops-ci/score.json")
    assert saved.status == "passed" and saved.checks == []
    outputs = saved.outputs
    assert outputs["model-uri"] == f"models:/{unique_name}/1" and outputs["model-version"] == "1"
    shown = (outputs["scorer"], outputs["engine"], outputs["rows"], outputs["files"])
    assert shown == ("onnx", "local", "1200", "1")
    predictions = pd.read_csv(tmp_path / ".mlops-ci/score/batch.csv", keep_default_na=False)
    assert list(predictions.columns) == ["id", "prediction", "probability_<=50K", "probability_>50K"]
    assert predictions["id"].tolist() == census_rows(1200)["id"].tolist()
    lineage = json.loads((tmp_path / ".mlops-ci/score/lineage.json").read_text())
    assert lineage["model"]["uri"] == f"models:/{unique_name}/1" and lineage["model"]["name"] == unique_name
    assert lineage["inputs"][0]["rows"] == 1200 and len(lineage["inputs"][0]["sha256"]) == 64
    assert outputs["lineage-path"] == str(tmp_path / ".mlops-ci/score/lineage.json")
    # Not a terminal: log lines, no redrawn bar.
    assert "\r" not in result.stderr and "scoring done: 1,200 rows" in result.stderr


def test_bad_input_is_one_line_exit_2_and_nothing_written(tmp_path, census_model_dir):
    census_rows(50).drop(columns=["sex", "race"]).to_csv(tmp_path / "batch.csv", index=False)
    env = cli_env()
    common = ["--model", str(census_model_dir), "--output", "predictions"]
    result = score(tmp_path, *common, "--input", "batch.csv", env=env)
    assert result.returncode == 2
    assert result.error_lines == [
        f"mlops-ci score: error: {tmp_path / 'batch.csv'} lacks 2 columns the model takes: race, sex"
    ]
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "predictions").exists() and not (tmp_path / ".mlops-ci/score.json").exists()

    missing = score(tmp_path, *common, "--input", "nowhere.csv", env=env)
    assert missing.returncode == 2
    assert missing.error_lines == [f"mlops-ci score: error: input {tmp_path / 'nowhere.csv'} does not exist"]
    workers = score(tmp_path, *common, "--input", "batch.csv", "--workers", "0", env=env)
    assert workers.returncode == 2 and workers.error_lines == [
        "mlops-ci score: error: --workers must be at least 1, got '0'"
    ]
    nothing = score(tmp_path, "--model", str(census_model_dir), env=env)
    assert nothing.returncode == 2 and "pass --input" in nothing.error_lines[0]
    no_model = score(tmp_path, "--input", "batch.csv", env=env)
    assert no_model.returncode == 2 and "pass --model, or set model-name" in no_model.error_lines[0]
    assert not (tmp_path / "predictions").exists()


def test_a_missing_champion_says_what_to_do(tmp_path, mlflow_server, unique_name):
    census_rows(10).to_csv(tmp_path / "batch.csv", index=False)
    env = cli_env(MLFLOW_TRACKING_URI=mlflow_server)
    result = score(tmp_path, "--model-name", unique_name, "--input", "batch.csv", env=env)
    assert result.returncode == 2, result.stderr
    assert f"models:/{unique_name}@champion does not exist" in result.error_lines[0]
    assert "register it and set the alias, or pass --model" in result.error_lines[0]
