import json

import jsonschema
import pytest

from mlops_ci.errors import UsageError
from mlops_ci.result import Check, StepResult, read_step_result, step_result_schema


def sample() -> StepResult:
    return StepResult(
        step="validate",
        status="failed",
        summary="accuracy regressed",
        outputs={"model-uri": "models:/m/2"},
        checks=[
            Check(
                "accuracy",
                "failed",
                value=0.81,
                baseline=0.85,
                interval=(-0.06, -0.02),
                p_value=0.001,
                threshold=0.01,
                message="worse by 4 points",
            ),
            Check("nan metric", "warning", value=float("nan"), blocking=False),
        ],
        artifacts=["report.md"],
        context={"platform": "local", "commit": "abc"},
    )


def test_written_file_matches_the_published_schema(tmp_path):
    path = sample().write(tmp_path)
    data = json.loads(path.read_text())
    jsonschema.validate(data, step_result_schema())
    assert data["schema"] == "mlops-ci/step-result/v1"
    assert data["checks"][1]["value"] is None  # NaN is not JSON


def test_round_trip(tmp_path):
    path = sample().write(tmp_path)
    back = read_step_result(path)
    assert back.checks[0].interval == (-0.06, -0.02)
    assert back.outputs == {"model-uri": "models:/m/2"}


def test_write_leaves_no_temporary_files(tmp_path):
    sample().write(tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["validate.json"]


def test_invalid_statuses_are_rejected():
    with pytest.raises(ValueError):
        StepResult(step="x", status="ok", summary="")
    with pytest.raises(ValueError):
        Check("x", "great")


def test_reading_a_broken_file_is_a_usage_error(tmp_path):
    (tmp_path / "train.json").write_text("{not json")
    with pytest.raises(UsageError, match="cannot read step result"):
        read_step_result(tmp_path / "train.json")
    (tmp_path / "train.json").write_text('{"schema": "other"}')
    with pytest.raises(UsageError, match="is not a valid step result"):
        read_step_result(tmp_path / "train.json")
    with pytest.raises(UsageError, match="does not exist; run that step first"):
        read_step_result(tmp_path / "missing.json")
