"""Drift over a whole table: one test per feature (and per prediction column), the
Benjamini–Hochberg correction across all of them, and per-feature effect-size thresholds.

A feature has drifted when both hold:

* its test rejects "same distribution" at false-discovery rate ``alpha`` after the
  correction — with many features, uncorrected tests at 0.05 raise an alarm on some
  feature almost every day; corrected, a day without drift raises one with probability
  at most ``alpha``;
* the shift is large enough to matter: PSI at least ``psi`` or (numeric features) the
  Wasserstein distance at least ``wasserstein`` reference standard deviations — with
  100,000 logged rows a test detects shifts far too small to act on.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mlops_ci.errors import UsageError
from mlops_ci.monitoring.data import PREDICTION, PREDICTION_SCORE, Window
from mlops_ci.monitoring.twosample import FeatureTest, benjamini_hochberg, compare_feature

if TYPE_CHECKING:
    import pandas as pd

DEFAULT_PSI = 0.1
DEFAULT_WASSERSTEIN = 0.3
PREDICTION_COLUMNS = (PREDICTION, PREDICTION_SCORE)
# Above this share of unparseable values a numeric column is text, not numbers with typos.
MAX_BAD_NUMBERS = 0.01


@dataclass(frozen=True)
class FeatureRule:
    """Per-feature settings (``drift.features.<name>`` in mlops-ci.yaml)."""

    psi: float | None = None
    wasserstein: float | None = None
    kind: str | None = None
    ignore: bool = False


@dataclass(frozen=True)
class Verdict:
    test: FeatureTest
    adjusted_pvalue: float | None
    significant: bool
    psi_threshold: float
    wasserstein_threshold: float | None
    drifted: bool
    reason: str
    prediction: bool = False

    @property
    def name(self) -> str:
        return self.test.feature

    def to_dict(self) -> dict[str, Any]:
        t = self.test
        return {
            "feature": t.feature,
            "prediction": self.prediction,
            "kind": t.kind,
            "test": t.test,
            "statistic": _finite(t.statistic),
            "p_value": _finite(t.pvalue),
            "p_value_adjusted": _finite(self.adjusted_pvalue),
            "psi": _finite(t.psi),
            "psi_threshold": self.psi_threshold,
            "wasserstein": _finite(t.wasserstein),
            "wasserstein_threshold": self.wasserstein_threshold,
            "significant": self.significant,
            "drifted": self.drifted,
            "reason": self.reason,
            "skipped": t.skipped,
            "reference_n": t.reference_n,
            "current_n": t.current_n,
            "reference_missing": t.reference_missing,
            "current_missing": t.current_missing,
            "unseen_categories": list(t.unseen_categories[:50]),
            "unseen_share": t.unseen_share,
            "summary": t.summary,
        }


@dataclass(frozen=True)
class DriftReport:
    verdicts: tuple[Verdict, ...]
    alpha: float
    reference_rows: int
    current_rows: int
    window: Window = field(default_factory=Window)
    reference_source: str = ""
    current_source: str = ""

    @property
    def features(self) -> tuple[Verdict, ...]:
        return tuple(v for v in self.verdicts if not v.prediction)

    @property
    def predictions(self) -> tuple[Verdict, ...]:
        return tuple(v for v in self.verdicts if v.prediction)

    @property
    def drifted_features(self) -> list[str]:
        return [v.name for v in self.features if v.drifted]

    @property
    def prediction_drift(self) -> bool | None:
        tested = [v for v in self.predictions if v.test.skipped is None]
        return any(v.drifted for v in tested) if tested else None

    @property
    def drifted(self) -> bool:
        return bool(self.drifted_features) or bool(self.prediction_drift)

    def to_dict(self) -> dict[str, Any]:
        tested = [v for v in self.features if v.test.skipped is None]
        return {
            "schema": "mlops-ci/drift-report/v1",
            "drift": self.drifted,
            "drifted_features": self.drifted_features,
            "prediction_drift": self.prediction_drift,
            "features_tested": len(tested),
            "share_drifted": len(self.drifted_features) / len(tested) if tested else 0.0,
            "alpha": self.alpha,
            "correction": "benjamini-hochberg",
            "reference": {"source": self.reference_source, "rows": self.reference_rows},
            "current": {
                "source": self.current_source,
                "rows": self.current_rows,
                "window_start": self.window.start,
                "window_end": self.window.end,
            },
            "features": [v.to_dict() for v in self.verdicts],
        }


class UnknownFeatures(UsageError):
    """Features asked for by name that the data lacks; ``missing`` says where each is missing."""

    def __init__(self, missing: str) -> None:
        super().__init__(f"the features asked for are not all columns of the data: {missing}")
        self.missing = missing


class ColumnMismatch(UsageError):
    """The reference and the current data have different columns (and no features were
    named to compare a subset)."""


def feature_columns(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    *,
    features: Sequence[str] = (),
    exclude: Sequence[str] = (),
) -> list[str]:
    """The columns to compare: ``features`` if given (both sides must have them), else every
    column, which must then be the same on both sides (prediction columns and ``exclude``
    aside). Different columns are a usage error naming them."""
    skip = set(exclude) | set(PREDICTION_COLUMNS)
    if features:
        missing_ref = [c for c in features if c not in reference.columns]
        missing_cur = [c for c in features if c not in current.columns]
        if missing_ref or missing_cur:
            raise UnknownFeatures(
                "; ".join(
                    part
                    for part in (
                        f"not in the reference: {', '.join(missing_ref)}" if missing_ref else "",
                        f"not in the current data: {', '.join(missing_cur)}" if missing_cur else "",
                    )
                    if part
                )
            )
        return [c for c in features if c not in skip]
    ref_cols = [c for c in reference.columns if c not in skip]
    cur_cols = [c for c in current.columns if c not in skip]
    only_ref = [c for c in ref_cols if c not in set(cur_cols)]
    only_cur = [c for c in cur_cols if c not in set(ref_cols)]
    if only_ref or only_cur:
        parts = []
        if only_ref:
            parts.append(f"missing from the current data: {', '.join(only_ref[:10])}")
        if only_cur:
            parts.append(f"not in the reference: {', '.join(only_cur[:10])}")
        raise ColumnMismatch("reference and current data have different columns (" + "; ".join(parts) + ")")
    return ref_cols


def detect(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    *,
    columns: Sequence[str],
    alpha: float = 0.05,
    psi: float = DEFAULT_PSI,
    wasserstein: float = DEFAULT_WASSERSTEIN,
    rules: Mapping[str, FeatureRule] | None = None,
    min_rows: int = 30,
    window: Window | None = None,
    reference_source: str = "",
    current_source: str = "",
) -> DriftReport:
    """Test every column in ``columns`` and every prediction column both sides have."""
    if not 0 < alpha < 1:
        raise ValueError(f"`alpha` must be between 0 and 1, got {alpha}")
    rules = dict(rules or {})
    tests: list[tuple[FeatureTest, bool]] = []
    for column in columns:
        rule = rules.get(column, FeatureRule())
        if rule.ignore:
            continue
        kind = rule.kind or _kind(reference[column])
        ref, cur = _values(reference[column], current[column], column, kind)
        tests.append((compare_feature(column, ref, cur, kind=kind, min_rows=min_rows), False))
    for column in PREDICTION_COLUMNS:
        if column in reference.columns and column in current.columns:
            kind = _kind(reference[column])
            ref, cur = _values(reference[column], current[column], column, kind)
            tests.append((compare_feature(column, ref, cur, kind=kind, min_rows=min_rows), True))

    tested = [i for i, (t, _) in enumerate(tests) if t.pvalue is not None]
    correction = benjamini_hochberg([tests[i][0].pvalue for i in tested], alpha=alpha)
    adjusted = dict(zip(tested, correction.adjusted, strict=True))
    verdicts = []
    for i, (test, is_prediction) in enumerate(tests):
        rule = rules.get(test.feature, FeatureRule())
        psi_threshold = rule.psi if rule.psi is not None else psi
        w_threshold = (
            (rule.wasserstein if rule.wasserstein is not None else wasserstein)
            if test.kind == "numeric"
            else None
        )
        verdicts.append(_verdict(test, adjusted.get(i), alpha, psi_threshold, w_threshold, is_prediction))
    return DriftReport(
        tuple(verdicts),
        alpha,
        reference_rows=len(reference),
        current_rows=len(current),
        window=window or Window(),
        reference_source=reference_source,
        current_source=current_source,
    )


def _verdict(test, adjusted, alpha, psi_threshold, w_threshold, is_prediction) -> Verdict:
    if test.skipped:
        return Verdict(
            test, None, False, psi_threshold, w_threshold, False, f"not tested: {test.skipped}", is_prediction
        )
    significant = adjusted is not None and adjusted <= alpha
    large = (test.psi or 0.0) >= psi_threshold or (
        w_threshold is not None and test.wasserstein is not None and test.wasserstein >= w_threshold
    )
    effect = f"PSI {test.psi:.3f}" + (
        f", Wasserstein {test.wasserstein:.2f} sd" if test.wasserstein is not None else ""
    )
    if significant and large:
        reason = f"drifted: adjusted p {adjusted:.2g} <= {alpha:g} and {effect} over the threshold"
    elif significant:
        reason = f"a significant but small shift ({effect}, below the thresholds)"
    else:
        reason = f"no significant difference (adjusted p {adjusted:.2g})"
    if test.unseen_categories:
        reason += f"; {test.unseen_share:.2%} of current rows have categories unseen in the reference"
    return Verdict(
        test, adjusted, significant, psi_threshold, w_threshold, significant and large, reason, is_prediction
    )


def _kind(series: pd.Series) -> str:
    import pandas as pd

    if pd.api.types.is_bool_dtype(series):
        return "categorical"
    return "numeric" if pd.api.types.is_numeric_dtype(series) else "categorical"


def _values(reference: pd.Series, current: pd.Series, column: str, kind: str):
    import pandas as pd

    if kind == "categorical":
        return reference.to_numpy(dtype=object), current.to_numpy(dtype=object)
    ref = pd.to_numeric(reference, errors="coerce")
    cur = pd.to_numeric(current, errors="coerce")
    for side, raw, parsed in (("reference", reference, ref), ("current data", current, cur)):
        present = int(raw.notna().sum())
        bad = present - int(parsed.notna().sum())
        if present and bad / present > MAX_BAD_NUMBERS:
            raise UsageError(
                f"column {column!r} is numeric but {bad} of {present} values in the {side} are not numbers; "
                f"set drift.features.{column}.kind: categorical, or fix the data"
            )
    return ref.to_numpy(dtype="float64"), cur.to_numpy(dtype="float64")


def _finite(value: float | None) -> float | None:
    if value is None:
        return None
    return float(value) if math.isfinite(value) else None
