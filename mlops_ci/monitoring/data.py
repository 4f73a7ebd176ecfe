"""Reading the data drift is computed on: CSV, Parquet, and the serving request logs
(``mlops-ci/request-log/v1`` JSON lines, rotated files included), optionally limited to a
sliding window of the last N days.

From a request log, each record's ``inputs`` become rows of feature columns, and its
``outputs`` become prediction columns: the one-dimensional output (the label or value) is
``prediction``; a two-column output (a binary classifier's probabilities) gives
``prediction_score``, the probability of the second class.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from mlops_ci.errors import UsageError

if TYPE_CHECKING:
    import pandas as pd

REQUEST_LOG_SCHEMA = "mlops-ci/request-log/v1"
PREDICTION = "prediction"
PREDICTION_SCORE = "prediction_score"
# Each row's request id (``load(..., ids=True)``): the record's ``id`` for a one-row request,
# ``<id>/<row>`` for the rows of a larger one, missing when the client gave no id.
REQUEST_ID = "request_id"
_LOG_NAME = re.compile(r"\.(jsonl|ndjson|log)(\.\d+)?$")
_TABLE_SUFFIXES = (".csv", ".parquet", ".pq")


class TimeColumnNeeded(UsageError):
    """A time window over a table without a time column: the rows' times are unknown."""

    def __init__(self, label: str, file_name: str) -> None:
        super().__init__(
            f"{label}: a time window needs a time column to know the time of each row of {file_name}"
        )
        self.label = label
        self.file_name = file_name


@dataclass(frozen=True)
class Window:
    """The time span the current data covers (ISO 8601, UTC), when known."""

    start: str | None = None
    end: str | None = None

    def interval(self) -> str:
        return f"{self.start or ''}/{self.end or ''}" if (self.start or self.end) else ""


@dataclass(frozen=True)
class Loaded:
    frame: pd.DataFrame
    sources: tuple[str, ...]
    window: Window
    from_logs: bool = False


def expand(paths: Sequence[Path], *, label: str) -> list[Path]:
    """Files named by ``paths``: a folder stands for the data files and logs inside it.
    ``label`` names the data in messages."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.is_file() and (_is_log(p) or _is_table(p)))
            if not found:
                raise UsageError(f"{label}: folder {path} holds no CSV, Parquet or request-log files")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            raise UsageError(f"{label}: {path} does not exist")
    if not files:
        raise UsageError(f"{label}: no data given")
    return files


def _is_log(path: Path) -> bool:
    return bool(_LOG_NAME.search(path.name))


def _is_table(path: Path) -> bool:
    return path.name.endswith(_TABLE_SUFFIXES) or path.name.endswith(".csv.gz")


def load(
    paths: Sequence[Path],
    *,
    label: str,
    window_days: float | None = None,
    time_column: str | None = None,
    now: datetime | None = None,
    ids: bool = False,
) -> Loaded:
    """Load and concatenate ``paths``; keep only the last ``window_days`` days when given
    (request logs by their record time, tables by ``time_column``). ``label`` names the
    data in messages; ``ids`` adds the request logs' ``REQUEST_ID`` column."""
    import pandas as pd

    now = now or datetime.now(timezone.utc)
    since = now - timedelta(days=window_days) if window_days else None
    frames, logs = [], False
    first_time: datetime | None = None
    last_time: datetime | None = None
    for file in expand(paths, label=label):
        if _is_log(file):
            logs = True
            frame, times = read_request_log(file, since=since, ids=ids)
        elif _is_table(file):
            frame = read_table(file)
            times = None
            if time_column:
                frame, times = _filter_by_time(frame, file, time_column, since)
            elif since is not None:
                raise TimeColumnNeeded(label, file.name)
        else:
            raise UsageError(
                f"{label}: {file.name} is neither CSV, Parquet nor a request log (.jsonl); convert it or "
                "rename it"
            )
        if times:
            first_time = min([t for t in (first_time, min(times)) if t is not None])
            last_time = max([t for t in (last_time, max(times)) if t is not None])
        frames.append(frame)
    frame = pd.concat(frames, ignore_index=True, sort=False) if len(frames) > 1 else frames[0]
    if since is not None:
        window = Window(_iso(since), _iso(now))
    else:
        window = Window(_iso(first_time) if first_time else None, _iso(last_time) if last_time else None)
    return Loaded(frame, tuple(str(p) for p in paths), window, logs)


def read_table(path: Path) -> pd.DataFrame:
    import pandas as pd

    try:
        if path.name.endswith((".parquet", ".pq")):
            return pd.read_parquet(path)
        # Only an empty cell is missing: "NA" or "?" can be real categories.
        return pd.read_csv(path, keep_default_na=False, na_values=[""], low_memory=False)
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read {path}: {str(exc).splitlines()[0][:200]}") from None


def _filter_by_time(frame, file: Path, column: str, since: datetime | None):
    import pandas as pd

    if column not in frame.columns:
        raise UsageError(f"the time column {column!r} is not a column of {file.name}")
    try:
        stamps = pd.to_datetime(frame[column], utc=True)
    except (ValueError, TypeError):
        raise UsageError(f"column {column!r} of {file.name} does not hold times") from None
    keep = stamps >= since if since is not None else stamps.notna()
    kept = frame.loc[keep].drop(columns=[column]).reset_index(drop=True)
    times = [t.to_pydatetime() for t in stamps[keep] if not pd.isna(t)]
    return kept, times


def read_request_log(
    path: Path, *, since: datetime | None, ids: bool = False
) -> tuple[pd.DataFrame, list[datetime]]:
    """The rows of a ``mlops-ci/request-log/v1`` file (one record per request, several rows
    per record), and the record times kept; with ``ids`` each row's ``REQUEST_ID`` too."""
    import pandas as pd

    records: list[tuple[int, dict[str, list]]] = []
    names: dict[str, None] = {}  # every column seen, in first-seen order
    times: list[datetime] = []
    with path.open("r", encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                if record.get("schema") != REQUEST_LOG_SCHEMA:
                    raise ValueError(f"schema is {record.get('schema')!r}, not {REQUEST_LOG_SCHEMA}")
                at = _parse_time(record["time"])
                rows = int(record["rows"])
                inputs = record["inputs"]
                outputs = record.get("outputs") or {}
                request_id = record.get("id")
            except (ValueError, KeyError, TypeError) as exc:
                if _truncated_last_line(handle):
                    break  # the server was writing this line when the file was copied
                raise UsageError(
                    f"{path.name} line {number} is not a mlops-ci request-log record ({exc}); give the "
                    "serving container's request-log files"
                ) from None
            if since is not None and at < since:
                continue
            times.append(at)
            record_columns = dict(inputs)
            record_columns.update(_prediction_columns(outputs, rows))
            if ids:
                record_columns[REQUEST_ID] = _row_ids(request_id, rows)
            for name in record_columns:
                names.setdefault(name)
            records.append((rows, record_columns))
    columns: dict[str, list] = {name: [] for name in names}
    for rows, record_columns in records:
        for name, values in columns.items():
            found = record_columns.get(name)
            values.extend(found if found is not None and len(found) == rows else [None] * rows)
    return pd.DataFrame(columns), times


def _row_ids(request_id: object, rows: int) -> list[str | None]:
    if not isinstance(request_id, str):
        return [None] * rows
    return [request_id] if rows == 1 else [f"{request_id}/{row}" for row in range(rows)]


def _truncated_last_line(handle) -> bool:
    return handle.read(1) == ""


def _prediction_columns(outputs: dict, rows: int) -> dict[str, list]:
    columns: dict[str, list] = {}
    for values in outputs.values():
        if not isinstance(values, list) or len(values) != rows or not values:
            continue
        first = values[0]
        if not isinstance(first, list) and PREDICTION not in columns:
            columns[PREDICTION] = values
        elif isinstance(first, list) and len(first) == 2 and PREDICTION_SCORE not in columns:
            columns[PREDICTION_SCORE] = [row[1] if isinstance(row, list) else None for row in values]
    return columns


def _parse_time(text: str) -> datetime:
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def _iso(value: datetime) -> str:
    return value.astimezone(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")
