"""Native vs ONNX predictions on the same rows (convert.parity), on real models."""

from __future__ import annotations

import pytest

from mlops_ci.convert.build import convert
from mlops_ci.convert.parity import compare
from tests.convert.helpers import native
from tests.model_fixtures import CATEGORICAL, NUMERIC, census_frames, census_pipeline, write_model_dir


def test_mismatched_onnx_fails_parity(tmp_path):
    """A conversion of another model (trained on other rows, stronger regularisation)."""
    from sklearn.linear_model import LogisticRegression

    real = census_pipeline(rows=2000)
    other = census_pipeline(LogisticRegression(C=0.001, max_iter=200), rows=300)
    wrong = write_model_dir(tmp_path / "wrong", other)
    frame = census_frames(50)[0][NUMERIC + CATEGORICAL]
    converted = convert(
        native(real, frame),
        name="m",
        version="1",
        opset=None,
        precision="float32",
        onnx_override=wrong.conversion.onnx,
    )
    (tmp_path / "model.onnx").write_bytes(converted.onnx_bytes)
    converted.settings.write(tmp_path)
    _, holdout = census_frames()
    report = compare(real, tmp_path, converted.settings, holdout[NUMERIC + CATEGORICAL], holdout["class"])
    assert report.diff_max > 0.05 and report.diff_p99 > 0.01
    assert (
        report.worst_rows[0]["abs_diff"] == pytest.approx(report.diff_max)
        or report.worst_rows[0]["native_label"] != report.worst_rows[0]["onnx_label"]
    )
