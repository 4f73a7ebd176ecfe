"""Small real models for the serving and conversion tests: scikit-learn pipelines trained
on a slice of the example data, converted with mlops_ci.convert (no MLflow needed)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from tests.helpers import EXAMPLE

NUMERIC = ["age", "fnlwgt", "education-num", "capital-gain", "capital-loss", "hours-per-week"]
CATEGORICAL = [
    "workclass",
    "education",
    "marital-status",
    "occupation",
    "relationship",
    "race",
    "sex",
    "native-country",
]
TARGET = "class"


def census_frames(rows: int = 3000) -> tuple[pd.DataFrame, pd.DataFrame]:
    train = pd.read_csv(EXAMPLE / "data" / "train.csv", keep_default_na=False).head(rows)
    holdout = pd.read_csv(EXAMPLE / "data" / "holdout.csv", keep_default_na=False).head(1000)
    return train, holdout


def census_pipeline(classifier: Any = None, *, rows: int = 3000) -> Any:
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    train, _ = census_frames(rows)
    preprocess = ColumnTransformer(
        [
            ("numeric", StandardScaler(), NUMERIC),
            ("categorical", OneHotEncoder(handle_unknown="ignore", sparse_output=False), CATEGORICAL),
        ]
    )
    pipeline = Pipeline(
        [
            ("preprocess", preprocess),
            ("classifier", classifier if classifier is not None else LogisticRegression(max_iter=1000)),
        ]
    )
    return pipeline.fit(train[NUMERIC + CATEGORICAL], train[TARGET])


def write_model_dir(
    folder: Path,
    pipeline: Any,
    *,
    name: str = "census-income",
    version: str = "7",
    precision: str = "float32",
) -> Any:
    from mlops_ci.convert.build import convert
    from mlops_ci.convert.columns import columns_from_frame
    from mlops_ci.convert.loading import NativeModel

    train, _ = census_frames(50)
    features = train[NUMERIC + CATEGORICAL]
    native = NativeModel(
        model=pipeline,
        flavor="sklearn",
        uri="test://census",
        columns=columns_from_frame(features),
        input_example=features.head(5),
    )
    converted = convert(
        native, name=name, version=version, opset=None, precision=precision, lineage={"commit": "abc123"}
    )
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.onnx").write_bytes(converted.onnx_bytes)
    converted.settings.write(folder)
    return converted


@pytest.fixture(scope="session")
def census_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A converted census-income logistic regression: 14 columns, 6 numeric and 8 strings."""
    folder = tmp_path_factory.mktemp("census-model")
    write_model_dir(folder, census_pipeline())
    return folder


@pytest.fixture(scope="session")
def slow_forest_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 100-tree random forest of full-depth trees: on 64-row calls about 4 times the
    logistic regression's latency (the deliberately slower candidate of the profile tests)."""
    from sklearn.ensemble import RandomForestClassifier

    folder = tmp_path_factory.mktemp("forest-model")
    write_model_dir(
        folder, census_pipeline(RandomForestClassifier(n_estimators=100, random_state=0), rows=3000)
    )
    return folder


@pytest.fixture(scope="session")
def other_lr_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Another logistic regression (other coefficients, the same cost per row)."""
    from sklearn.linear_model import LogisticRegression

    folder = tmp_path_factory.mktemp("other-lr-model")
    write_model_dir(folder, census_pipeline(LogisticRegression(C=0.2, max_iter=1000), rows=2000))
    return folder


@pytest.fixture(scope="session")
def census_app(census_model_dir: Path) -> Any:
    from mlops_ci.serving.config import ServerConfig
    from mlops_ci.serving.server import load_app

    app = load_app(ServerConfig(model_dir=census_model_dir, warmup_runs=2, max_batch_rows=500))
    app.ready = True
    return app


def example_record(row: int = 0) -> dict[str, Any]:
    _, holdout = census_frames()
    record = holdout.iloc[row][NUMERIC + CATEGORICAL].to_dict()
    return {k: (v.item() if hasattr(v, "item") else v) for k, v in record.items()}


def v2_request(records: list[dict[str, Any]]) -> dict[str, Any]:
    inputs = []
    for name in NUMERIC + CATEGORICAL:
        inputs.append(
            {
                "name": name,
                "shape": [len(records), 1],
                "datatype": "FP32" if name in NUMERIC else "BYTES",
                "data": [r[name] for r in records],
            }
        )
    return {"inputs": inputs}


def serving_command(model_dir: Path, port: int, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "mlops_ci.serving",
        str(model_dir),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        *extra,
    ]


def register_census_model(tracking_uri, name):
    """Version 1 of ``name`` on the real MLflow server: the example's logistic regression,
    logged with its signature and input example (what `mlops-ci train` + `register` record,
    without a training subprocess), and aliased champion."""
    import mlflow
    import mlflow.sklearn
    from mlflow import MlflowClient
    from mlflow.models import infer_signature

    pipeline = census_pipeline(rows=3000)
    features = census_frames(50)[0][NUMERIC + CATEGORICAL]
    mlflow.set_tracking_uri(tracking_uri)
    # (global: another test in this process may have pointed the registry elsewhere)
    mlflow.set_registry_uri(tracking_uri)
    mlflow.set_experiment(name)
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(
            pipeline,
            name="model",
            input_example=features.head(5),
            signature=infer_signature(features, pipeline.predict(features)),
            pip_requirements=["scikit-learn"],  # skips MLflow's slow requirement inference
        )
    version = mlflow.register_model(info.model_uri, name)
    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    client.set_registered_model_alias(name, "champion", version.version)
    return client
