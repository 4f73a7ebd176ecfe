"""Inputs shared by the scoring tests: census-income rows with an id, as CSV and Parquet."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from tests.model_fixtures import CATEGORICAL, NUMERIC, census_frames

FEATURES = NUMERIC + CATEGORICAL


def census_rows(rows: int = 2000) -> pd.DataFrame:
    _, holdout = census_frames()
    frame = pd.concat([holdout] * (rows // len(holdout) + 1), ignore_index=True).head(rows)
    frame = frame[FEATURES].copy()
    frame.insert(0, "id", [f"r{i:05d}" for i in range(rows)])
    return frame


@pytest.fixture(scope="session")
def census_inputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with rows.csv (2,000 rows) and more/rows2.parquet (1,500 rows, 3 row groups)."""
    folder = tmp_path_factory.mktemp("census-inputs")
    census_rows(2000).to_csv(folder / "rows.csv", index=False)
    (folder / "more").mkdir()
    census_rows(1500).to_parquet(folder / "more" / "rows2.parquet", row_group_size=500)
    return folder


try:
    from mlflow.pyfunc import PythonModel
except ImportError:  # pragma: no cover - mlflow is a dependency
    PythonModel = object


class AgeRule(PythonModel):
    """A pyfunc-only model (no ONNX form): ">50K" from age 40 on."""

    def predict(self, context, model_input, params=None):
        return [">50K" if age >= 40 else "<=50K" for age in model_input["age"]]


@pytest.fixture(scope="session")
def pyfunc_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An MLflow model folder with only the python_function flavor."""
    import mlflow.pyfunc
    from mlflow.models import infer_signature

    folder = tmp_path_factory.mktemp("pyfunc") / "model"
    example = census_rows(5)[FEATURES]
    mlflow.pyfunc.save_model(
        str(folder),
        python_model=AgeRule(),
        signature=infer_signature(example, ["<=50K"] * 5),
        pip_requirements=["pandas"],
    )
    return folder
