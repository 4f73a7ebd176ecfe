"""Data references: local files, fsspec URIs (memory://, file://) and MLflow artifacts are
fetched into content-addressed snapshots; windows keep START <= time < END; the newest rows
are the holdout."""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path

import pandas as pd
import pytest

from mlops_ci.tracking.data_ref import (
    REF_TAG,
    SHA256_TAG,
    SNAPSHOT_TAG,
    WINDOW_TAG,
    DataRefError,
    DataRequest,
    Window,
    prepare,
    record_on_run,
)

ROWS = 100


def timed_table() -> pd.DataFrame:
    """One row a day from 2026-10-01, written out of order (the split sorts by time)."""
    days = pd.date_range("2026-10-01", periods=ROWS, freq="D", tz="UTC")
    frame = pd.DataFrame({"at": days.strftime("%Y-%m-%dT%H:%M:%SZ"), "x": range(ROWS), "label": "?"})
    return frame.iloc[::-1].reset_index(drop=True)


@pytest.fixture
def csv_bytes() -> bytes:
    return timed_table().to_csv(index=False).encode()


def request(tmp_path: Path, ref: str, **kwargs) -> DataRequest:
    return DataRequest(ref=ref, project_dir=tmp_path, snapshot_dir=tmp_path / "snap", **kwargs)


def test_window_keeps_both_ends_and_holds_out_the_newest(tmp_path, csv_bytes):
    (tmp_path / "new.csv").write_bytes(csv_bytes)
    window = Window.parse("2026-11-01/2026-12-01")
    data = prepare(request(tmp_path, "new.csv", window=window, time_column="at", holdout_fraction=0.2))
    assert data.kind == "local" and not data.remote and data.source == tmp_path / "new.csv"
    assert data.sha256 == hashlib.sha256(csv_bytes).hexdigest() and data.rows == ROWS
    train = pd.read_csv(data.train_path, keep_default_na=False)
    holdout = pd.read_csv(data.holdout_path, keep_default_na=False)
    # November and midnight of December 1: 31 rows; the last 7 (ceil of 20 %) are the
    # holdout, in time order.
    assert (data.train_rows, data.holdout_rows) == (24, 7)
    assert train["at"].iloc[0] == "2026-11-01T00:00:00Z" and train["at"].iloc[-1] == "2026-11-24T00:00:00Z"
    assert list(holdout["at"]) == [f"2026-11-{day}T00:00:00Z" for day in range(25, 31)] + [
        "2026-12-01T00:00:00Z"
    ]
    assert (train["label"] == "?").all()  # cells kept as written
    # The same inputs give the same files (content-addressed names, deterministic split).
    again = prepare(request(tmp_path, "new.csv", window=window, time_column="at", holdout_fraction=0.2))
    assert (
        again.train_path == data.train_path and again.train_path.read_bytes() == data.train_path.read_bytes()
    )


def test_no_window_no_fraction_reads_the_file_as_it_is(tmp_path, csv_bytes):
    (tmp_path / "new.csv").write_bytes(csv_bytes)
    data = prepare(request(tmp_path, "new.csv", holdout_fraction=0))
    assert data.train_path == tmp_path / "new.csv" and data.holdout_path is None
    # A fraction without a time column: the last rows in file order.
    data = prepare(request(tmp_path, "new.csv", holdout_fraction=0.1))
    holdout = pd.read_csv(data.holdout_path)
    assert list(holdout["x"]) == list(range(9, -1, -1))


def test_fsspec_memory_and_file_uris_are_snapshotted(tmp_path, csv_bytes):
    import fsspec

    name = f"memory://bucket/{uuid.uuid4().hex}/new.csv"
    with fsspec.open(name, "wb") as stream:
        stream.write(csv_bytes)
    data = prepare(request(tmp_path, name, holdout_fraction=0))
    sha256 = hashlib.sha256(csv_bytes).hexdigest()
    assert data.kind == "fsspec" and data.remote and data.sha256 == sha256
    assert data.source == tmp_path / "snap" / f"{sha256[:16]}-new.csv"
    assert data.source.read_bytes() == csv_bytes
    (tmp_path / "local.csv").write_bytes(csv_bytes)
    local = prepare(request(tmp_path, f"file://{tmp_path / 'local.csv'}", holdout_fraction=0))
    assert local.kind == "local" and local.sha256 == sha256


def test_bad_references_and_windows_say_what_is_wrong(tmp_path, csv_bytes):
    with pytest.raises(DataRefError, match="is not a file"):
        prepare(request(tmp_path, "missing.csv"))
    with pytest.raises(DataRefError, match="does not exist"):
        prepare(request(tmp_path, f"memory://bucket/{uuid.uuid4().hex}.csv"))
    with pytest.raises(DataRefError, match="START/END"):
        Window.parse("2026-11-01")
    with pytest.raises(DataRefError, match="ends before it starts"):
        Window.parse("2026-12-01/2026-11-01")
    with pytest.raises(DataRefError, match="not an ISO 8601 time"):
        Window.parse("yesterday/")
    assert Window.parse("/") is None and Window.parse("") is None
    assert str(Window.parse("2026-11-01/")) == "2026-11-01/"
    (tmp_path / "new.csv").write_bytes(csv_bytes)
    window = Window.parse("2027-06-01/2027-07-01")
    with pytest.raises(DataRefError, match="needs the time column"):
        prepare(request(tmp_path, "new.csv", window=window))
    with pytest.raises(DataRefError, match="no time column 'when'"):
        prepare(request(tmp_path, "new.csv", window=window, time_column="when"))
    with pytest.raises(DataRefError, match="no row of new.csv falls in the window"):
        prepare(request(tmp_path, "new.csv", window=window, time_column="at"))
    with pytest.raises(DataRefError, match="leave none to train on"):
        prepare(request(tmp_path, "new.csv", window=Window.parse("2026-11-01/2026-11-01"), time_column="at"))


def test_mlflow_artifact_is_fetched_and_the_run_records_where_the_bytes_are(
    tmp_path, csv_bytes, mlflow_server, unique_name
):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=mlflow_server)
    experiment = client.create_experiment(unique_name)
    source_run = client.create_run(experiment).info.run_id
    (tmp_path / "new.csv").write_bytes(csv_bytes)
    client.log_artifact(source_run, str(tmp_path / "new.csv"), "exports")
    ref = f"runs:/{source_run}/exports/new.csv"
    window = Window.parse("2026-11-01/2026-12-01")
    data = prepare(
        request(
            tmp_path, ref, tracking_uri=mlflow_server, window=window, time_column="at", holdout_fraction=0.2
        )
    )
    assert data.kind == "mlflow" and data.sha256 == hashlib.sha256(csv_bytes).hexdigest()
    with pytest.raises(DataRefError, match="cannot be downloaded"):
        prepare(request(tmp_path, f"runs:/{source_run}/nothing.csv", tracking_uri=mlflow_server))

    training = client.create_run(experiment).info.run_id
    where = record_on_run(client, training, data, snapshot_limit=10 * len(csv_bytes))
    assert where == f"runs:/{training}/mlops-ci/data/{data.source.name}"
    tags = client.get_run(training).data.tags
    assert tags[REF_TAG] == ref and tags[SHA256_TAG] == data.sha256
    assert tags[WINDOW_TAG] == "2026-11-01/2026-12-01" and tags[SNAPSHOT_TAG] == where
    # Exactly the same bytes come back from the run.
    import mlflow.artifacts

    back = mlflow.artifacts.download_artifacts(
        where, dst_path=str(tmp_path / "back"), tracking_uri=mlflow_server
    )
    assert hashlib.sha256(Path(back).read_bytes()).hexdigest() == data.sha256

    # Over the limit: recorded by URI and sha256, not copied.
    other = client.create_run(experiment).info.run_id
    where = record_on_run(client, other, data, snapshot_limit=10)
    assert where.startswith(f"{ref} (not copied") and client.list_artifacts(other) == []
