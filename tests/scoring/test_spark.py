"""The Spark engine on a local Spark session with 4 partitions: the same outputs as the
local engine (same rows in the same order, identical labels, probabilities within 1e-6),
and bad input reported like the local engine reports it. One session for the module: the
JVM starts once."""

from __future__ import annotations

import os
import sys

import numpy as np
import pandas as pd
import pytest

from mlops_ci.scoring import ScoringInputError
from mlops_ci.scoring.batch import ScoreRequest, score_batch
from tests.helpers import require_module
from tests.scoring.conftest import census_rows

require_module("pyspark", install="pip install -e '.[spark]' (and Java 17: scripts/setup/50-java.sh)")


@pytest.fixture(scope="module")
def spark():
    from pyspark.sql import SparkSession

    # The workers run this interpreter, not `python3` on PATH (see spark_session).
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    session = (
        SparkSession.builder.master("local[4]")
        .appName("mlops-ci tests")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.pyspark.python", sys.executable)
        .config("spark.sql.shuffle.partitions", "4")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


def request(tmp_path, model, inputs, output, engine, **extra):
    return ScoreRequest(
        model=str(model),
        inputs=tuple(inputs),
        output_dir=tmp_path / output,
        cwd=tmp_path,
        keep_columns=("id",),
        engine=engine,
        workers=2,
        batch_rows=512,
        spark_partitions=4,
        **extra,
    )


def read(path):
    if path.is_dir():
        parts = sorted(p for p in path.iterdir() if p.name.startswith("part-"))
        if parts[0].suffix == ".csv":
            return pd.concat([pd.read_csv(p, keep_default_na=False) for p in parts], ignore_index=True), len(
                parts
            )
        return pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True), len(parts)
    if path.suffix == ".csv":
        return pd.read_csv(path, keep_default_na=False), 1
    return pd.read_parquet(path), 1


def test_spark_gives_the_local_engines_outputs(tmp_path, spark, census_model_dir):
    folder = tmp_path / "in"
    folder.mkdir()
    rows = census_rows(3000)
    rows.loc[5, "workclass"] = ""  # an empty field is an empty string on both engines
    rows.to_csv(folder / "rows.csv", index=False)
    rows.to_parquet(folder / "rows2.parquet", row_group_size=100)
    local = score_batch(request(tmp_path, census_model_dir, [folder], "local", "local"), store=None)
    remote = score_batch(request(tmp_path, census_model_dir, [folder], "spark", "spark"), store=None)
    assert remote.engine == "spark" and remote.rows == local.rows == 6000
    assert [o.rows for o in remote.outputs] == [3000, 3000]
    for name in ("rows.csv", "rows2.parquet"):
        mine, _ = read(tmp_path / "local" / name)
        theirs, partitions = read(tmp_path / "spark" / name)
        assert partitions == 4
        assert list(theirs.columns) == list(mine.columns)
        assert theirs["id"].tolist() == mine["id"].tolist()  # same rows, same order
        assert (theirs["prediction"].to_numpy() == mine["prediction"].to_numpy()).all()
        for column in ("probability_<=50K", "probability_>50K"):
            assert np.abs(theirs[column].to_numpy() - mine[column].to_numpy()).max() <= 1e-6
    lineage = remote.lineage_path.read_text()
    assert '"name": "spark"' in lineage and '"partitions": 4' in lineage


def test_a_bad_row_fails_the_run_and_writes_nothing(tmp_path, spark, census_model_dir):
    path = tmp_path / "rows.csv"
    rows = census_rows(400).astype({"age": object})
    rows.loc[350, "age"] = "forty"
    rows.to_csv(path, index=False)
    with pytest.raises(ScoringInputError, match=r"cannot score .*rows.csv on Spark"):
        score_batch(request(tmp_path, census_model_dir, [path], "out", "spark"), store=None)
    assert [p.name for p in (tmp_path / "out").iterdir()] == []


def test_a_model_without_onnx_scores_through_spark_udf_as_it_does_locally(
    tmp_path, spark, pyfunc_model, census_inputs
):
    inputs = [census_inputs / "rows.csv"]
    local = score_batch(request(tmp_path, pyfunc_model, inputs, "local", "local"), store=None)
    remote = score_batch(request(tmp_path, pyfunc_model, inputs, "spark", "spark"), store=None)
    assert remote.scorer == local.scorer == "pyfunc" and remote.rows == local.rows == 2000
    mine, _ = read(tmp_path / "local" / "rows.csv")
    theirs, _ = read(tmp_path / "spark" / "rows.csv")
    assert theirs["id"].tolist() == mine["id"].tolist()
    assert theirs["prediction"].tolist() == mine["prediction"].tolist()
