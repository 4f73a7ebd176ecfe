"""Conversion to ONNX (convert.build), on real scikit-learn, LightGBM and XGBoost models."""

from __future__ import annotations

import json

import pytest

from mlops_ci.convert import UnsupportedModelError
from mlops_ci.convert.build import convert
from mlops_ci.convert.parity import compare
from tests.convert.helpers import native, numeric_data
from tests.helpers import require_module
from tests.model_fixtures import CATEGORICAL, NUMERIC, census_frames, census_pipeline, write_model_dir


def package(tmp_path, model, frame, **kwargs):
    converted = convert(
        native(model, frame),
        name="m",
        version="1",
        opset=None,
        precision=kwargs.pop("precision", "float32"),
        **kwargs,
    )
    (tmp_path / "model.onnx").write_bytes(converted.onnx_bytes)
    converted.settings.write(tmp_path)
    return converted


def test_census_pipeline_converts_exactly(tmp_path):
    pipeline = census_pipeline(rows=2000)
    converted = write_model_dir(tmp_path, pipeline)
    _, holdout = census_frames()
    report = compare(pipeline, tmp_path, converted.settings, holdout[NUMERIC + CATEGORICAL], holdout["class"])
    assert report.label_agreement == 1.0 and report.diff_max < 1e-5
    assert {m.name for m in report.metrics} == {"accuracy", "roc_auc", "log_loss"}
    assert all(abs(m.difference) < 1e-5 for m in report.metrics)
    assert len(report.worst_rows) == 5


def test_numeric_pipeline_gets_one_tensor_input_with_column_positions(tmp_path):
    from sklearn.linear_model import LinearRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    frame, _ = numeric_data()
    target = frame["f-0"] * 3 + frame["f-2"]
    model = make_pipeline(StandardScaler(), LinearRegression()).fit(frame, target)
    converted = package(tmp_path, model, frame)
    settings = converted.settings
    assert [s.name for s in settings.onnx_inputs] == ["input"] and settings.onnx_inputs[0].shape == (-1, 6)
    assert [(c.name, c.index) for c in settings.columns] == [(f"f-{i}", i) for i in range(6)]
    assert settings.task == "regression" and settings.primary_output.role == "value"
    report = compare(model, tmp_path, settings, frame, target)
    assert report.diff_max < 1e-4 and {m.name for m in report.metrics} == {"rmse", "mae", "r2"}


def test_float64_precision_types_the_inputs_fp64(tmp_path):
    from sklearn.linear_model import LogisticRegression

    frame, target = numeric_data()
    converted = package(tmp_path, LogisticRegression().fit(frame, target), frame, precision="float64")
    assert converted.settings.onnx_inputs[0].datatype == "FP64"


def test_hist_gradient_boosting_failure_names_the_estimator():
    from sklearn.ensemble import HistGradientBoostingClassifier

    frame, target = numeric_data()
    model = HistGradientBoostingClassifier(max_iter=5).fit(frame, target)
    with pytest.raises(UnsupportedModelError) as caught:
        convert(native(model, frame), name="m", version="1", opset=None, precision="float32")
    assert caught.value.estimator == "HistGradientBoostingClassifier"
    assert str(caught.value).startswith(
        "HistGradientBoostingClassifier cannot be converted to ONNX with skl2onnx"
    )
    assert "Unable to create node 'TreeEnsembleClassifier'" in str(caught.value) and "attributes" not in str(
        caught.value
    )


def test_estimator_without_converter_is_named():
    from sklearn.neighbors import NearestCentroid
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    frame, target = numeric_data()
    model = make_pipeline(StandardScaler(), NearestCentroid()).fit(frame, target)
    with pytest.raises(UnsupportedModelError, match=r"^NearestCentroid cannot be converted"):
        convert(native(model, frame), name="m", version="1", opset=None, precision="float32")


@pytest.mark.parametrize("library", ["lightgbm", "xgboost"])
def test_boosters_in_pipelines_convert_through_onnxmltools(tmp_path, library):
    require_module("onnxmltools", install="pip install -e '.[dev]' (onnxmltools converts the boosters)")
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if library == "lightgbm":
        from lightgbm import LGBMClassifier

        booster = LGBMClassifier(n_estimators=10, verbose=-1)
    else:
        from xgboost import XGBClassifier

        booster = XGBClassifier(n_estimators=10, max_depth=3)
    frame, target = numeric_data()
    model = make_pipeline(StandardScaler(), booster).fit(frame, target)
    converted = package(tmp_path, model, frame)
    report = compare(model, tmp_path, converted.settings, frame, target)
    assert report.label_agreement >= 0.99 and report.diff_p99 < 1e-3


def test_onnx_model_passes_through_with_its_columns(tmp_path):
    from mlops_ci.convert.build import passthrough
    from mlops_ci.convert.columns import InputColumn

    converted = write_model_dir(tmp_path / "a", census_pipeline(rows=500))
    columns = [InputColumn(n, "float" if n in NUMERIC else "string") for n in NUMERIC + CATEGORICAL]
    again = passthrough(converted.conversion.onnx, columns, converter="ONNX model")
    assert again.columns == converted.settings.columns


def test_an_onnx_file_is_served_under_its_own_input_names(tmp_path):
    from mlops_ci.convert.loading import load_native_model
    from mlops_ci.serving.config import ServerConfig
    from mlops_ci.serving.server import load_app

    write_model_dir(tmp_path / "a", census_pipeline(rows=500))
    native = load_native_model("a/model.onnx", store=None, cwd=tmp_path)
    assert native.is_onnx
    converted = convert(native, name="m", version="1", opset=None, precision="float32")
    names = [c.name for c in converted.settings.columns]
    assert "education_num" in names and converted.settings.input_example is None
    (tmp_path / "b").mkdir()
    (tmp_path / "b/model.onnx").write_bytes(converted.onnx_bytes)
    converted.settings.write(tmp_path / "b")
    app = load_app(ServerConfig(model_dir=tmp_path / "b"))
    app.ready = True
    record = {
        n: [1.0] if c.datatype == "FP32" else ["x"]
        for n, c in zip(names, converted.settings.columns, strict=True)
    }
    response = app.handle("POST", "/invocations", "application/json", json.dumps({"inputs": record}).encode())
    assert response.status == 200
