"""The local engine: batches scored in parallel, written in order, never more than a few
batches in memory."""

from __future__ import annotations

import threading
import time

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from mlops_ci.scoring import ScoringInputError
from mlops_ci.scoring.inputs import discover_inputs
from mlops_ci.scoring.local import check_names, output_table, score_local
from mlops_ci.scoring.outputs import Staging, plan_outputs
from mlops_ci.scoring.progress import NoProgress


class SlowDoubler:
    """Doubles ``x``; records how many batches were read but not yet written."""

    kind = "test"
    input_columns = ("x",)
    output_fields = [("prediction", "float64")]

    def __init__(self, progress: Counting) -> None:
        self.progress = progress
        self.started = 0
        self.most_ahead = 0
        self.threads: set[str] = set()
        self.lock = threading.Lock()

    def read_types(self):
        return {"x": pa.float64()}

    def score_batch(self, batch):
        with self.lock:
            self.started += 1
            self.most_ahead = max(self.most_ahead, self.started - self.progress.batches)
            self.threads.add(threading.current_thread().name)
        time.sleep(0.002 * (self.started % 3))  # later batches may finish first
        values = batch.column("x").to_numpy(zero_copy_only=False)
        if np.isnan(values).any():
            raise ScoringInputError("x is missing")
        return {"prediction": values * 2}


class Counting(NoProgress):
    def __init__(self) -> None:
        self.rows = 0
        self.batches = 0

    def advance(self, rows: int) -> None:
        self.rows += rows
        self.batches += 1


def run(tmp_path, frame: pd.DataFrame, *, workers: int, batch_rows: int):
    path = tmp_path / "in.csv"
    frame.to_csv(path, index=False)
    inputs = discover_inputs([path])
    plans = plan_outputs(inputs, [path], tmp_path / "out", "auto")
    progress = Counting()
    scorer = SlowDoubler(progress)
    with Staging() as staging:
        rows = score_local(
            plans,
            scorer,
            keep=["id"],
            staging=staging,
            workers=workers,
            batch_rows=batch_rows,
            progress=progress,
        )
        staging.commit()
    return rows, scorer, progress, pd.read_csv(plans[0].path)


def test_batches_run_in_parallel_but_are_written_in_order_and_bounded(tmp_path):
    frame = pd.DataFrame({"id": range(5000), "x": np.arange(5000) / 7})
    rows, scorer, progress, out = run(tmp_path, frame, workers=3, batch_rows=50)
    assert rows == [5000] and progress.rows == 5000 and progress.batches == 100
    assert out["id"].tolist() == list(range(5000))
    assert np.allclose(out["prediction"], frame["x"] * 2)
    assert len(scorer.threads) > 1
    # Read ahead of the writer by at most 2 batches per worker: memory does not grow with the file.
    assert scorer.most_ahead <= 6


def test_a_bad_batch_names_the_file_and_its_rows(tmp_path):
    frame = pd.DataFrame({"id": range(300), "x": [1.0] * 300})
    frame.loc[170, "x"] = np.nan
    with pytest.raises(ScoringInputError, match=r"in.csv, rows 151-200: x is missing"):
        run(tmp_path, frame, workers=2, batch_rows=50)
    assert not (tmp_path / "out" / "in.csv").exists()
    assert [p.name for p in (tmp_path / "out").iterdir()] == []


def test_the_output_keeps_the_read_columns_then_the_predictions():
    batch = pa.record_batch({"id": ["007", "008"], "x": [1.0, 2.0]})
    table = output_table(batch, {"prediction": np.array(["a", "b"], dtype=object)}, ["id"])
    assert table.column_names == ["id", "prediction"]
    assert table.column("id").to_pylist() == ["007", "008"] and pa.types.is_string(table.schema.field(1).type)


def test_a_kept_column_may_not_be_named_like_a_prediction():
    with pytest.raises(ScoringInputError, match="'prediction' to keep has the name of a prediction column"):
        check_names(["id", "prediction"], SlowDoubler(Counting()))
