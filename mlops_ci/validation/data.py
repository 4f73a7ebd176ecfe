"""The holdout: reading it (CSV or Parquet) with every problem a one-line usage error, and
the data checks — columns and types against the model signature, missing values, labels."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops_ci.errors import SettingError, UsageError
from mlops_ci.validation.findings import Finding

if TYPE_CHECKING:
    import pandas as pd

CSV_SUFFIXES = {".csv": ",", ".tsv": "\t", ".txt": ","}
PARQUET_SUFFIXES = {".parquet", ".pq"}
MISSING_TARGET_WARN_SHARE = 0.0


@dataclass
class Holdout:
    path: Path
    target: str
    features: pd.DataFrame
    y: Any  # numpy array of the target, rows with a missing target dropped
    dropped: int  # rows dropped for a missing target

    @property
    def rows(self) -> int:
        return len(self.y)


def load_holdout(path: Path | None, target: str | None) -> Holdout:
    if path is None:
        raise SettingError("no holdout data", setting="holdout")
    if not target:
        raise SettingError("no target column", setting="target")
    frame = read_table(path)
    if target not in frame.columns:
        hint = difflib.get_close_matches(target, [str(c) for c in frame.columns], n=1)
        suggestion = (
            f"did you mean '{hint[0]}'?" if hint else f"columns: {', '.join(map(str, frame.columns[:12]))}"
        )
        raise SettingError(
            f"target column '{target}' is not in holdout {path}; {suggestion}", setting="target"
        )
    missing = frame[target].isna().to_numpy()
    if missing.all():
        raise SettingError(f"target column '{target}' of holdout {path} has no values", setting="target")
    kept = frame.loc[~missing].reset_index(drop=True)
    y = kept[target].to_numpy()
    if y.dtype.kind == "O" or str(kept[target].dtype).startswith(("str", "string")):
        y = kept[target].astype(object).to_numpy()
    return Holdout(
        path=path, target=target, features=kept.drop(columns=[target]), y=y, dropped=int(missing.sum())
    )


def read_table(path: Path) -> pd.DataFrame:
    """A CSV/TSV or Parquet file as a DataFrame; unreadable, empty or row-less files are usage
    errors naming the file."""
    import pandas as pd

    if not path.exists():
        raise SettingError(f"holdout file {path} does not exist", setting="holdout")
    if path.is_dir():
        raise UsageError(f"holdout {path} is a folder; give one CSV or Parquet file")
    suffix = path.suffix.lower()
    if suffix not in CSV_SUFFIXES and suffix not in PARQUET_SUFFIXES:
        raise UsageError(f"holdout {path} is neither CSV (.csv, .tsv) nor Parquet (.parquet); convert it")
    try:
        size = path.stat().st_size
        if size == 0:
            raise UsageError(f"holdout file {path} is empty; give a file with a header row and data rows")
        if suffix in PARQUET_SUFFIXES:
            frame = pd.read_parquet(path)
        else:
            frame = pd.read_csv(path, sep=CSV_SUFFIXES[suffix], low_memory=False)
    except UsageError:
        raise
    except PermissionError:
        raise UsageError(f"cannot read holdout {path}: permission denied") from None
    except UnicodeDecodeError:
        raise UsageError(f"cannot read holdout {path}: it is not UTF-8 text; save the CSV as UTF-8") from None
    except pd.errors.EmptyDataError:
        raise UsageError(
            f"holdout file {path} is empty; give a file with a header row and data rows"
        ) from None
    except (pd.errors.ParserError, ValueError, OSError) as exc:
        kind = "Parquet" if suffix in PARQUET_SUFFIXES else "CSV"
        first = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise UsageError(f"cannot read holdout {path} as {kind}: {first}") from None
    except Exception as exc:  # noqa: BLE001 - pyarrow raises its own hierarchy for corrupt files
        first = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise UsageError(f"cannot read holdout {path}: {first}") from None
    if len(frame) == 0:
        raise UsageError(f"holdout {path} has a header but no rows")
    return frame


# --- data checks -------------------------------------------------------------------------

# MLflow signature types and the pandas dtype kinds that convert to them without loss.
_ACCEPTS = {
    "long": "iub",
    "integer": "iub",
    "double": "iufb",
    "float": "iufb",
    "boolean": "b",
    "string": "OUS",
    "datetime": "M",
    "binary": "OS",
}


def _dtype_kind(series: pd.Series) -> str:
    dtype = series.dtype
    if str(dtype).startswith(("str", "string")):
        return "O"
    return getattr(dtype, "kind", "O")


def required_columns(signature: Any) -> list[str]:
    if signature is None or signature.inputs is None or not signature.inputs.has_input_names():
        return []
    return [spec.name for spec in signature.inputs.inputs if getattr(spec, "required", True)]


def missing_columns(holdout: Holdout, signature: Any) -> list[str]:
    present = set(map(str, holdout.features.columns))
    return [c for c in required_columns(signature) if c not in present]


def schema_check(holdout: Holdout, signature: Any, *, role: str) -> Finding:
    """Columns and types of the holdout against the model's input signature."""
    name = f"data: columns and types ({role})"
    if signature is None or signature.inputs is None or not signature.inputs.has_input_names():
        return Finding(
            name,
            "skipped",
            message=f"the {role} has no named input signature to check the columns against",
            blocking=False,
            details={"kind": "data"},
        )
    frame = holdout.features
    problems = []
    for spec in signature.inputs.inputs:
        column = spec.name
        if column not in frame.columns:
            continue  # missing required columns are a usage error before this check runs
        expected = getattr(getattr(spec, "type", None), "name", str(getattr(spec, "type", "")))
        accepted = _ACCEPTS.get(str(expected))
        kind = _dtype_kind(frame[column])
        if accepted and kind not in accepted:
            detail = f"{column} (holdout {frame[column].dtype}"
            if kind == "f" and accepted == "iub" and frame[column].isna().any():
                detail += ", integers with missing values"
            problems.append(f"{detail}; model expects {expected})")
    extra = [str(c) for c in frame.columns if c not in set(required_columns(signature))]
    details = {"kind": "data", "extra_columns": extra[:50], "columns": len(frame.columns)}
    if problems:
        return Finding(
            name,
            "failed",
            message=f"{len(problems)} column(s) have a type the {role} does not accept: {'; '.join(problems[:5])}",
            blocking=True,
            details={**details, "mismatches": problems},
        )
    note = f"; {len(extra)} extra column(s) are ignored" if extra else ""
    return Finding(
        name,
        "passed",
        message=f"every input the {role} needs is present with a compatible type{note}",
        blocking=True,
        details=details,
    )


def missing_values_check(holdout: Holdout) -> Finding:
    counts = holdout.features.isna().sum()
    counts = counts[counts > 0].sort_values(ascending=False)
    details: dict[str, Any] = {
        "kind": "data",
        "missing": {str(k): int(v) for k, v in counts.items()},
        "dropped_rows_missing_target": holdout.dropped,
        "n": holdout.rows,
    }
    notes = []
    if len(counts):
        top = ", ".join(f"{k} ({v / max(holdout.rows, 1):.1%})" for k, v in list(counts.items())[:5])
        notes.append(f"missing values in {len(counts)} column(s): {top}")
    if holdout.dropped:
        notes.append(f"{holdout.dropped} row(s) without a target were left out")
    if not notes:
        return Finding(
            "data: missing values", "passed", message="no missing values", blocking=False, details=details
        )
    return Finding(
        "data: missing values", "warning", message="; ".join(notes), blocking=False, details=details
    )


def labels_check(y: Any, classes: dict[str, Any]) -> Finding:
    """Holdout labels the models cannot predict, and labels the holdout never has."""
    import numpy as np

    seen = set(np.unique(np.asarray(y, dtype=object)).tolist())
    details: dict[str, Any] = {"kind": "data", "holdout_labels": sorted(map(str, seen))[:50]}
    notes = []
    for role, known in classes.items():
        if known is None:
            continue
        known_set = set(known)
        unknown = seen - known_set
        never = known_set - seen
        details[f"{role}_labels"] = sorted(map(str, known_set))[:50]
        if unknown:
            rows = int(np.isin(np.asarray(y, dtype=object), list(unknown)).sum())
            notes.append(
                f"{rows} holdout row(s) have labels the {role} never predicts: {', '.join(map(str, sorted(unknown, key=str)[:5]))}"
            )
        if never:
            notes.append(
                f"the holdout has no rows of the {role}'s label(s) {', '.join(map(str, sorted(never, key=str)[:5]))}"
            )
    if notes:
        return Finding("data: labels", "warning", message="; ".join(notes), blocking=False, details=details)
    return Finding(
        "data: labels",
        "passed",
        message=f"{len(seen)} labels, the same as the models'",
        blocking=False,
        details=details,
    )
