"""The package step's domain call (container.packaging.package_model) on real models,
without a container engine: what it returns for an ONNX model, an unconvertible model, a
model without rows to compare, and a missing file."""

from __future__ import annotations

import pytest

from mlops_ci.container.packaging import PackageRequest, name_from_uri, package_model
from mlops_ci.convert import ModelNotFoundError, NoParityRowsError
from tests.convert.helpers import numeric_data
from tests.model_fixtures import census_pipeline, write_model_dir


def request_for(tmp_path, model_uri, **changes) -> PackageRequest:
    out = tmp_path / "out"
    return PackageRequest(
        model_uri=str(model_uri),
        out_dir=out,
        build_context=out / "context",
        cwd=tmp_path,
        engine="none",
        commit="0123456789abcdef",
        source_url="https://github.com/acme/census",
        **changes,
    )


def save_sklearn(folder, model):
    """An MLflow model folder without signature or input example."""
    import mlflow.sklearn

    mlflow.sklearn.save_model(model, str(folder))
    return folder


def test_an_onnx_model_is_packaged_without_parity_and_without_an_engine(tmp_path):
    write_model_dir(tmp_path / "given", census_pipeline(rows=300))
    request = request_for(
        tmp_path, tmp_path / "given/model.onnx", model_name="Census", image_template="{name}:{commit}"
    )
    outcome = package_model(request, store=None, env={})
    assert (outcome.name, outcome.version, outcome.image) == ("Census", "1", "census:0123456789ab")
    assert outcome.conversion is not None and outcome.conversion.converter == "ONNX model"
    assert [(j.name, j.status) for j in outcome.parity] == [("parity", "skipped")]
    assert not outcome.parity_failed and outcome.parity_report is None
    assert outcome.onnx_path.stat().st_size == outcome.onnx_size_bytes > 0
    assert outcome.settings_path.is_file() and outcome.context.path == tmp_path / "out/context"
    dockerfile = (outcome.context.path / "Dockerfile").read_text()
    assert "org.opencontainers.image.source=" in dockerfile and "https://github.com/acme/census" in dockerfile
    assert outcome.image_outcome is not None and outcome.image_outcome.engine_missing == (
        "image building is switched off"
    )
    assert outcome.image_outcome.info is None


def test_an_unconvertible_model_is_an_outcome_not_an_error(tmp_path):
    from sklearn.neighbors import NearestCentroid

    frame, target = numeric_data()
    folder = save_sklearn(tmp_path / "centroid", NearestCentroid().fit(frame, target))
    outcome = package_model(request_for(tmp_path, folder), store=None, env={})
    assert outcome.conversion is None and outcome.failing_estimator == "NearestCentroid"
    assert outcome.conversion_failure.startswith("NearestCentroid cannot be converted")
    assert "--" not in outcome.conversion_failure
    assert outcome.image_outcome is None and outcome.context is None and outcome.name == "centroid"
    assert not (tmp_path / "out").exists()


def test_parity_needs_rows(tmp_path):
    from sklearn.linear_model import LogisticRegression

    frame, target = numeric_data()
    folder = save_sklearn(tmp_path / "lr", LogisticRegression().fit(frame, target))
    with pytest.raises(NoParityRowsError, match="has no input example and no holdout is set") as caught:
        package_model(request_for(tmp_path, folder), store=None, env={})
    assert "--" not in str(caught.value)


def test_a_missing_onnx_file_is_not_found_in_domain_terms(tmp_path):
    with pytest.raises(ModelNotFoundError, match="^ONNX file missing.onnx does not exist$") as caught:
        package_model(request_for(tmp_path, "missing.onnx"), store=None, env={})
    assert not caught.value.registered


@pytest.mark.parametrize(("uri", "name"), [("runs:/abc/model", "model"), ("/m/My Model.onnx", "My-Model")])
def test_a_name_comes_from_the_uri(uri, name):
    assert name_from_uri(uri) == name
