"""New data for a retraining, as one call: ``prepare(request)`` fetches a data reference (a
local path, an object-store URI through fsspec, or an MLflow artifact) into a local,
content-addressed snapshot, keeps the rows of a time window, and splits off the holdout the
champion comparison scores.

The rules, so that a run can be re-created from what it records:

- Snapshot: every input's sha256 is recorded; a remote input (fsspec or MLflow) is copied
  to ``<snapshot_dir>/<sha256[:16]>-<name>`` while it is hashed, and ``record_on_run``
  stores that copy on the training run (up to ``snapshot_limit`` bytes) so the run itself
  says where to get exactly the same bytes. A local path is recorded by path and sha256.
- Window ``START/END``: rows with ``START <= time <= END`` in the time column (times without
  a zone are UTC; either side may be empty for an open end). Both ends are inclusive because
  `drift` reports the window it saw as the times of its first and last rows.
- Holdout: the rows are ordered by time (a stable sort; file order without a time column)
  and the last ``holdout_fraction`` of them (rounded up) are the holdout: the newest data
  judges the model trained on the older part. The rule is deterministic, so no seed.
"""

from __future__ import annotations

import hashlib
import logging
import math
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from mlops_ci.errors import UsageError

log = logging.getLogger(__name__)

SNAPSHOT_ARTIFACT_DIR = "mlops-ci/data"
DEFAULT_SNAPSHOT_LIMIT = 200 * 1024 * 1024
MLFLOW_SCHEMES = ("runs:", "mlflow-artifacts:", "models:")
URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
CHUNK = 1024 * 1024

# Tags the training run gets (one definition, read by whoever re-creates a run).
REF_TAG = "mlops_ci.data_ref"
SHA256_TAG = "mlops_ci.data_ref.sha256"
WINDOW_TAG = "mlops_ci.data_window"
SNAPSHOT_TAG = "mlops_ci.data_snapshot"


class DataRefError(UsageError):
    """The data reference cannot be read, windowed or split."""


@dataclass(frozen=True)
class Window:
    """Rows with ``start <= time <= end`` (ISO 8601; None for an open end)."""

    start: str | None
    end: str | None

    @classmethod
    def parse(cls, text: str | None) -> Window | None:
        """``START/END``; ``""`` and ``"/"`` mean no window (a dispatch without one)."""
        if text is None or text.strip() in ("", "/"):
            return None
        start, sep, end = text.strip().partition("/")
        if not sep:
            raise DataRefError(f"a window is START/END (ISO 8601 times, either may be empty), got {text!r}")
        window = cls(start.strip() or None, end.strip() or None)
        bounds = [_timestamp(value, "window") for value in (window.start, window.end)]
        if bounds[0] is not None and bounds[1] is not None and bounds[0] > bounds[1]:
            raise DataRefError(f"the window {text!r} ends before it starts")
        return window

    def __str__(self) -> str:
        return f"{self.start or ''}/{self.end or ''}"


@dataclass(frozen=True)
class DataRequest:
    """Which data to fetch, which rows to keep and how much of them to hold out."""

    ref: str
    project_dir: Path
    snapshot_dir: Path
    tracking_uri: str | None = None
    window: Window | None = None
    time_column: str | None = None
    holdout_fraction: float = 0.2


@dataclass(frozen=True)
class PreparedData:
    """The fetched data: the exact bytes (``source``, ``sha256``) and the parts derived from
    them: what the training command reads and what validate scores."""

    ref: str
    kind: Literal["local", "fsspec", "mlflow"]
    source: Path
    sha256: str
    size: int
    train_path: Path
    holdout_path: Path | None
    rows: int | None = None
    train_rows: int | None = None
    holdout_rows: int | None = None
    window: Window | None = None

    @property
    def remote(self) -> bool:
        return self.kind != "local"


def prepare(request: DataRequest) -> PreparedData:
    """Fetch, hash, window and split. Nothing is derived when there is neither a window nor
    a holdout fraction: the command reads the snapshot as it is."""
    request.snapshot_dir.mkdir(parents=True, exist_ok=True)
    kind, source, sha256 = _fetch(request)
    size = source.stat().st_size
    log.debug("train: data %s is %d bytes, sha256 %s", request.ref, size, sha256[:12])
    found: dict[str, Any] = dict(ref=request.ref, kind=kind, source=source, sha256=sha256, size=size)
    if request.window is None and not request.holdout_fraction:
        return PreparedData(train_path=source, holdout_path=None, window=None, **found)
    frame = _read(source)
    rows = len(frame)
    if request.window is not None or request.time_column:
        frame = _in_window(frame, request.window, request.time_column, source.name)
    if frame.empty:
        raise DataRefError(f"no row of {request.ref} falls in the window {request.window}")
    holdout_rows = math.ceil(len(frame) * request.holdout_fraction)
    if holdout_rows >= len(frame):
        raise DataRefError(
            f"{len(frame)} rows in the window leave none to train on with a holdout fraction of "
            f"{request.holdout_fraction}"
        )
    cut = len(frame) - holdout_rows
    stem, suffix = f"{sha256[:16]}-{_slug(request.window)}", source.suffix.lower() or ".csv"
    train_path = _write(frame.iloc[:cut], request.snapshot_dir / f"{stem}-train{suffix}")
    holdout_path = (
        _write(frame.iloc[cut:], request.snapshot_dir / f"{stem}-holdout{suffix}") if holdout_rows else None
    )
    return PreparedData(
        train_path=train_path,
        holdout_path=holdout_path,
        rows=rows,
        train_rows=cut,
        holdout_rows=holdout_rows,
        window=request.window,
        **found,
    )


def record_on_run(client: Any, run_id: str, data: PreparedData, *, snapshot_limit: int) -> str:
    """Tag the run with the reference, its sha256 and window, and store a remote input's
    bytes on the run when they fit ``snapshot_limit``. Returns where the exact bytes are."""
    if data.remote and data.size <= snapshot_limit:
        client.log_artifact(run_id, str(data.source), SNAPSHOT_ARTIFACT_DIR)
        where = f"runs:/{run_id}/{SNAPSHOT_ARTIFACT_DIR}/{data.source.name}"
    elif data.remote:
        where = (
            f"{data.ref} (not copied to the run: {data.size} bytes is over the snapshot limit of "
            f"{snapshot_limit}; the sha256 tells whether the source still holds the same bytes)"
        )
    else:
        where = data.ref
    tags = {REF_TAG: data.ref, SHA256_TAG: data.sha256, SNAPSHOT_TAG: where}
    if data.window is not None:
        tags[WINDOW_TAG] = str(data.window)
    for key, value in tags.items():
        client.set_tag(run_id, key, value[:5000])
    return where


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for chunk in iter(lambda: stream.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _fetch(request: DataRequest) -> tuple[Literal["local", "fsspec", "mlflow"], Path, str]:
    ref = request.ref
    if ref.startswith(MLFLOW_SCHEMES):
        return "mlflow", *_fetch_mlflow(ref, request.snapshot_dir, request.tracking_uri)
    if URI.match(ref) and not ref.startswith("file://"):
        return "fsspec", *_fetch_fsspec(ref, request.snapshot_dir)
    path = Path(ref.removeprefix("file://"))
    path = path if path.is_absolute() else request.project_dir / path
    if not path.is_file():
        raise DataRefError(f"data {ref} is not a file ({path} does not exist or is a folder)")
    return "local", path, sha256_of(path)


def _fetch_fsspec(ref: str, snapshot_dir: Path) -> tuple[Path, str]:
    try:
        import fsspec
    except ImportError:
        raise DataRefError(
            f"reading {ref} needs fsspec and the filesystem's package (s3fs, gcsfs, adlfs): pip install fsspec s3fs"
        ) from None
    name = _basename(ref)
    try:
        with fsspec.open(ref, "rb") as stream:
            return _snapshot(stream, snapshot_dir, name)
    except FileNotFoundError:
        raise DataRefError(f"data {ref} does not exist") from None
    except (ImportError, ValueError) as exc:
        raise DataRefError(f"data {ref} cannot be opened: {exc}") from None


def _fetch_mlflow(ref: str, snapshot_dir: Path, tracking_uri: str | None) -> tuple[Path, str]:
    import mlflow.artifacts
    from mlflow.exceptions import MlflowException

    with tempfile.TemporaryDirectory(dir=snapshot_dir) as tmp:
        try:
            local = Path(
                mlflow.artifacts.download_artifacts(artifact_uri=ref, dst_path=tmp, tracking_uri=tracking_uri)
            )
        except (MlflowException, OSError) as exc:  # the reference is wrong or unreachable
            raise DataRefError(f"data {ref} cannot be downloaded from MLflow: {exc}") from None
        if not local.is_file():
            raise DataRefError(f"data {ref} is a folder of artifacts; name one file in it")
        with local.open("rb") as stream:
            return _snapshot(stream, snapshot_dir, local.name)


def _snapshot(stream: Any, snapshot_dir: Path, name: str) -> tuple[Path, str]:
    """Copy ``stream`` to a content-addressed file while hashing it."""
    digest = hashlib.sha256()
    with tempfile.NamedTemporaryFile(dir=snapshot_dir, delete=False) as out:
        for chunk in iter(lambda: stream.read(CHUNK), b""):
            digest.update(chunk)
            out.write(chunk)
    sha256 = digest.hexdigest()
    target = snapshot_dir / f"{sha256[:16]}-{name}"
    shutil.move(out.name, target)
    return target, sha256


def _basename(ref: str) -> str:
    name = ref.rstrip("/").rsplit("/", 1)[-1].split("?", 1)[0]
    return re.sub(r"[^A-Za-z0-9._-]", "_", name) or "data"


def _slug(window: Window | None) -> str:
    return re.sub(r"[^0-9A-Za-z]+", "", str(window)) if window else "all"


def _read(path: Path) -> Any:
    import pandas as pd

    if path.suffix.lower() == ".parquet":
        return pd.read_parquet(path)
    # As text: the derived files keep every cell exactly as it was written.
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def _write(frame: Any, path: Path) -> Path:
    if path.suffix.lower() == ".parquet":
        frame.to_parquet(path, index=False)
    else:
        frame.to_csv(path, index=False)
    return path


def _in_window(frame: Any, window: Window | None, column: str | None, name: str) -> Any:
    import pandas as pd

    if not column:
        raise DataRefError(f"a window needs the time column of {name} (each row's time)")
    if column not in frame.columns:
        raise DataRefError(
            f"{name} has no time column {column!r} (columns: {', '.join(map(str, frame.columns))})"
        )
    times = pd.to_datetime(frame[column], utc=True, errors="coerce", format="ISO8601")
    if times.isna().any():
        bad = frame[column][times.isna()].iloc[0]
        raise DataRefError(f"{name}: {column} holds {bad!r}, which is not an ISO 8601 time")
    keep = pd.Series(True, index=frame.index)
    if window is not None and window.start:
        keep &= times >= _timestamp(window.start, "window")
    if window is not None and window.end:
        keep &= times <= _timestamp(window.end, "window")
    order = times[keep].sort_values(kind="mergesort").index
    return frame.loc[order].reset_index(drop=True)


def _timestamp(value: str | None, what: str) -> Any:
    import pandas as pd

    if value is None:
        return None
    try:
        stamp = pd.Timestamp(value)
    except ValueError:
        raise DataRefError(f"the {what} bound {value!r} is not an ISO 8601 time") from None
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
