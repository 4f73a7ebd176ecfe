"""The holdout rows parity is measured on: read from CSV or Parquet, the target split off,
the model's columns typed as the model takes them."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mlops_ci.convert.columns import InputColumn
from mlops_ci.errors import UsageError


class HoldoutError(UsageError):
    """The holdout cannot be read, or lacks a column it must have."""


def holdout_columns(path: Path) -> list[str]:
    """The column names of the holdout, read from its header (CSV) or schema (Parquet)
    without loading the rows."""
    if _is_parquet(path):
        import pyarrow.parquet as pq

        try:
            return list(pq.read_schema(path).names)
        except (OSError, ValueError) as exc:
            raise HoldoutError(f"cannot read holdout {path}: {exc}") from None
    import csv

    try:
        with path.open(newline="", encoding="utf-8") as handle:
            return next(csv.reader(handle), [])
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise HoldoutError(f"cannot read holdout {path}: {exc}") from None


def read_holdout(path: Path, *, target: str | None, columns: Sequence[InputColumn] | None) -> tuple[Any, Any]:
    """(the input columns as a DataFrame, the target Series or None). With ``columns``
    only those, in that order, strings as str and numbers coerced (unparsable: NaN)."""
    import pandas as pd

    try:
        if _is_parquet(path):
            data = pd.read_parquet(path)
        else:
            # Only empty cells are missing: "NA" or "?" may be real categories.
            data = pd.read_csv(path, keep_default_na=False, na_values=[""])
    except (OSError, ValueError) as exc:
        raise HoldoutError(f"cannot read holdout {path}: {exc}") from None
    truth = None
    if target:
        if target not in data.columns:
            raise HoldoutError(f"target column {target!r} is not in holdout {path}")
        truth = data[target]
        data = data.drop(columns=[target])
    if columns:
        missing = [c.name for c in columns if c.name not in data.columns]
        if missing:
            raise HoldoutError(f"holdout {path} lacks the model's column(s) {', '.join(missing[:5])}")
        for column in columns:
            if column.kind == "string":
                data[column.name] = data[column.name].astype(str)
            elif column.kind in ("float", "int"):
                data[column.name] = pd.to_numeric(data[column.name], errors="coerce")
        data = data[[c.name for c in columns]]
    return data, truth


def _is_parquet(path: Path) -> bool:
    return path.suffix.lower() in (".parquet", ".pq")
