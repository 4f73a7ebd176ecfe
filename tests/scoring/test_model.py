"""Which model a scoring run uses: ONNX from a package folder, an .onnx file or a
conversion; MLflow pyfunc when the model does not convert."""

from __future__ import annotations

import shutil

import pytest

from mlops_ci.errors import UsageError
from mlops_ci.scoring.model import needs_store, resolve_model
from tests.model_fixtures import CATEGORICAL, NUMERIC, census_frames, census_pipeline


def save_sklearn(path, pipeline):
    import mlflow.sklearn
    from mlflow.models import infer_signature

    features = census_frames(50)[0][NUMERIC + CATEGORICAL]
    mlflow.sklearn.save_model(
        pipeline,
        str(path),
        signature=infer_signature(features, pipeline.predict(features)),
        input_example=features.head(5),
        pip_requirements=["scikit-learn"],
    )
    return path


def test_a_package_folder_is_used_as_it_is(census_model_dir, tmp_path):
    model = resolve_model(str(census_model_dir), store=None, cwd=tmp_path)
    assert model.is_onnx and model.source.startswith("package folder")
    assert (model.name, model.version) == ("census-income", "7")
    assert model.onnx_bytes == (census_model_dir / "model.onnx").read_bytes()
    # A build context (the folder holding model/) works too.
    shutil.copytree(census_model_dir, tmp_path / "context/model")
    assert resolve_model("context", store=None, cwd=tmp_path).onnx_bytes == model.onnx_bytes


def test_an_onnx_file_gets_settings_from_its_graph(census_model_dir, tmp_path):
    model = resolve_model(str(census_model_dir / "model.onnx"), store=None, cwd=tmp_path)
    assert model.is_onnx and model.source == "ONNX model"
    assert "age" in {c.name for c in model.settings.columns}
    with pytest.raises(UsageError, match="does not exist"):
        resolve_model("nowhere.onnx", store=None, cwd=tmp_path)


def test_an_mlflow_model_is_converted_the_way_package_converts_it(tmp_path):
    folder = save_sklearn(tmp_path / "mlflow-model", census_pipeline(rows=1000))
    model = resolve_model(str(folder), store=None, cwd=tmp_path)
    assert model.is_onnx and model.source.startswith("converted to ONNX (skl2onnx")
    assert model.settings.lineage["model_uri"] == str(folder)


def test_a_model_without_an_onnx_form_falls_back_to_pyfunc(tmp_path, pyfunc_model):
    model = resolve_model(str(pyfunc_model), store=None, cwd=tmp_path)
    assert not model.is_onnx and model.source == "MLflow pyfunc"
    assert model.pyfunc_uri == str(pyfunc_model)
    assert "python_function only" in model.fallback_reason


def test_only_uris_need_the_tracking_store(tmp_path):
    (tmp_path / "model.onnx").write_bytes(b"")
    assert needs_store("models:/m@champion", tmp_path)
    assert needs_store("runs:/abc/model", tmp_path)
    assert not needs_store("model.onnx", tmp_path)
    assert not needs_store(str(tmp_path / "model.onnx"), tmp_path)
