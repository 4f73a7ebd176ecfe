"""Segments of the holdout: one per value of a column, or per numeric bin."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from mlops_ci.errors import SettingError
from mlops_ci.validation.checks import SliceSpec

if TYPE_CHECKING:
    import pandas as pd

# A numeric column with more distinct values than this is binned (quartiles by default).
MAX_VALUE_SEGMENTS = 20
DEFAULT_QUANTILE_BINS = 4
MAX_SEGMENTS = 50


@dataclass(frozen=True)
class Segment:
    column: str
    label: str  # "Male", "[30, 45)", "(missing)"
    mask: np.ndarray

    @property
    def rows(self) -> int:
        return int(self.mask.sum())

    @property
    def name(self) -> str:
        return f"{self.column}={self.label}"


def segments(frame: pd.DataFrame, spec: SliceSpec, *, where: str) -> list[Segment]:
    import pandas as pd

    if spec.column not in frame.columns:
        hint = difflib.get_close_matches(spec.column, [str(c) for c in frame.columns], n=1)
        suggestion = f"did you mean '{hint[0]}'?" if hint else "it must be a column of the holdout"
        raise SettingError(
            f"{where}.column '{spec.column}' is not in the holdout; {suggestion}", setting=where
        )
    column = frame[spec.column]
    numeric = pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column)
    missing = column.isna().to_numpy()
    out: list[Segment] = []
    if spec.bins is not None and not numeric:
        raise SettingError(
            f"{where}.bins: column '{spec.column}' is not numeric; drop bins to slice by value", setting=where
        )
    if numeric and (spec.bins is not None or column.nunique() > MAX_VALUE_SEGMENTS):
        values = column.to_numpy(dtype=np.float64)
        if isinstance(spec.bins, tuple):
            edges = np.asarray(spec.bins)
        else:
            count = spec.bins or DEFAULT_QUANTILE_BINS
            edges = np.unique(np.nanquantile(values, np.linspace(0, 1, count + 1)))
        for i, (low, high) in enumerate(zip(edges[:-1], edges[1:], strict=True)):
            last = i == len(edges) - 2
            mask = (values >= low) & ((values <= high) if last else (values < high))
            out.append(Segment(spec.column, f"[{low:g}, {high:g}{']' if last else ')'}", mask & ~missing))
        outside = ~missing & ~np.any([s.mask for s in out], axis=0) if out else ~missing
        if outside.any():
            out.append(Segment(spec.column, "(outside the bins)", outside))
    else:
        for value in sorted(column.dropna().unique().tolist(), key=str):
            out.append(Segment(spec.column, str(value), (column == value).to_numpy() & ~missing))
    if missing.any():
        out.append(Segment(spec.column, "(missing)", missing))
    if len(out) > MAX_SEGMENTS:
        raise SettingError(
            f"{where}: column '{spec.column}' has {len(out)} segments (at most {MAX_SEGMENTS}); use bins or another column",
            setting=where,
        )
    return out
