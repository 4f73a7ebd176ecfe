"""Two-sample drift tests and effect sizes, one frozen result per feature.

Numeric features: the two-sample Kolmogorov–Smirnov test; effect sizes PSI (on the
reference's deciles) and the Wasserstein distance in units of the reference's standard
deviation (so one threshold fits every scale). Categorical features: Pearson's
chi-squared test of homogeneity on the category counts, categories seen in only one of
the two samples included (an unseen category is drift, not an error), categories too rare
for the chi-squared approximation pooled into one; effect size PSI over the categories.

Missing values are left out of the tests and reported as their own share.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

# PSI of a bin that is empty on one side: a small floor keeps the logarithm finite.
PSI_EPSILON = 1e-4
PSI_BINS = 10
# Pearson's rule of thumb: expected counts of at least 5 in every cell.
MIN_EXPECTED = 5.0
OTHER = "(other)"
MISSING = "(missing)"


@dataclass(frozen=True)
class FeatureTest:
    """The test of one feature: ``statistic`` and ``pvalue`` of the test named ``test``,
    the effect sizes, and what the two samples looked like."""

    feature: str
    kind: str  # numeric | categorical
    test: str  # ks | chi2 | none
    statistic: float | None
    pvalue: float | None
    psi: float | None
    wasserstein: float | None  # in reference standard deviations; numeric only
    reference_n: int
    current_n: int
    reference_missing: float
    current_missing: float
    skipped: str | None = None
    unseen_categories: tuple[str, ...] = ()
    unseen_share: float = 0.0
    summary: dict[str, Any] = field(default_factory=dict)


def _check_kind(kind: str) -> None:
    if kind not in ("numeric", "categorical"):
        raise ValueError(f"`kind` must be 'numeric' or 'categorical', got {kind!r}")


def compare_feature(
    feature: str, reference: np.ndarray, current: np.ndarray, *, kind: str, min_rows: int = 30
) -> FeatureTest:
    """Test whether ``current`` comes from the distribution of ``reference``."""
    _check_kind(kind)
    if min_rows < 2:
        raise ValueError(f"`min_rows` must be at least 2, got {min_rows}")
    if kind == "numeric":
        return _numeric(feature, reference, current, min_rows)
    return _categorical(feature, reference, current, min_rows)


def _numeric(feature: str, reference: np.ndarray, current: np.ndarray, min_rows: int) -> FeatureTest:
    from scipy import stats

    ref_all = np.asarray(reference, dtype=np.float64)
    cur_all = np.asarray(current, dtype=np.float64)
    ref = ref_all[np.isfinite(ref_all)]
    cur = cur_all[np.isfinite(cur_all)]
    base = dict(
        feature=feature,
        kind="numeric",
        reference_n=int(ref.size),
        current_n=int(cur.size),
        reference_missing=_share(ref_all.size - ref.size, ref_all.size),
        current_missing=_share(cur_all.size - cur.size, cur_all.size),
    )
    if ref.size < min_rows or cur.size < min_rows:
        return FeatureTest(
            test="none",
            statistic=None,
            pvalue=None,
            psi=None,
            wasserstein=None,
            skipped=f"fewer than {min_rows} values (reference {ref.size}, current {cur.size})",
            **base,
        )
    result = stats.ks_2samp(ref, cur, method="auto")
    spread = float(np.std(ref))
    distance = float(stats.wasserstein_distance(ref, cur))
    # A constant reference: any movement is infinitely many standard deviations.
    wasserstein = distance / spread if spread > 0 else (0.0 if distance == 0 else math.inf)
    summary = {
        "reference_mean": float(np.mean(ref)),
        "current_mean": float(np.mean(cur)),
        "reference_std": spread,
        "current_std": float(np.std(cur)),
        "reference_median": float(np.median(ref)),
        "current_median": float(np.median(cur)),
    }
    return FeatureTest(
        test="ks",
        statistic=float(result.statistic),
        pvalue=float(result.pvalue),
        psi=numeric_psi(ref, cur),
        wasserstein=wasserstein,
        summary=summary,
        **base,
    )


def numeric_psi(reference: np.ndarray, current: np.ndarray, *, bins: int = PSI_BINS) -> float:
    """Population stability index on the reference's quantile bins (ties merged)."""
    edges = np.unique(np.quantile(reference, np.linspace(0, 1, bins + 1)[1:-1]))
    ref_counts = np.bincount(np.searchsorted(edges, reference, side="right"), minlength=edges.size + 1)
    cur_counts = np.bincount(np.searchsorted(edges, current, side="right"), minlength=edges.size + 1)
    return _psi(ref_counts, cur_counts)


def _psi(ref_counts: np.ndarray, cur_counts: np.ndarray) -> float:
    p = np.maximum(ref_counts / max(ref_counts.sum(), 1), PSI_EPSILON)
    q = np.maximum(cur_counts / max(cur_counts.sum(), 1), PSI_EPSILON)
    return float(np.sum((q - p) * np.log(q / p)))


def _categorical(feature: str, reference: np.ndarray, current: np.ndarray, min_rows: int) -> FeatureTest:
    from scipy import stats

    ref_counts, ref_missing = _counts(reference)
    cur_counts, cur_missing = _counts(current)
    ref_n, cur_n = sum(ref_counts.values()), sum(cur_counts.values())
    base = dict(
        feature=feature,
        kind="categorical",
        reference_n=ref_n,
        current_n=cur_n,
        reference_missing=_share(ref_missing, ref_n + ref_missing),
        current_missing=_share(cur_missing, cur_n + cur_missing),
    )
    unseen = tuple(sorted(set(cur_counts) - set(ref_counts)))
    unseen_share = _share(sum(cur_counts[c] for c in unseen), cur_n)
    if ref_n < min_rows or cur_n < min_rows:
        return FeatureTest(
            test="none",
            statistic=None,
            pvalue=None,
            psi=None,
            wasserstein=None,
            skipped=f"fewer than {min_rows} values (reference {ref_n}, current {cur_n})",
            unseen_categories=unseen,
            unseen_share=unseen_share,
            **base,
        )
    categories = sorted(set(ref_counts) | set(cur_counts))
    ref_row = np.array([ref_counts.get(c, 0) for c in categories], dtype=np.float64)
    cur_row = np.array([cur_counts.get(c, 0) for c in categories], dtype=np.float64)
    psi = _psi(ref_row, cur_row)
    table, labels = pool_rare(np.vstack([ref_row, cur_row]), categories)
    summary = {
        "categories": len(categories),
        "pooled_into_other": [c for c in categories if c not in labels][:50],
        "top_reference": _top(ref_counts, ref_n),
        "top_current": _top(cur_counts, cur_n),
    }
    if table.shape[1] < 2:
        # One category on both sides (after pooling): the distributions are identical.
        return FeatureTest(
            test="chi2",
            statistic=0.0,
            pvalue=1.0,
            psi=psi,
            wasserstein=None,
            unseen_categories=unseen,
            unseen_share=unseen_share,
            summary=summary,
            **base,
        )
    statistic, pvalue, _, _ = stats.chi2_contingency(table, correction=False)
    return FeatureTest(
        test="chi2",
        statistic=float(statistic),
        pvalue=float(pvalue),
        psi=psi,
        wasserstein=None,
        unseen_categories=unseen,
        unseen_share=unseen_share,
        summary=summary,
        **base,
    )


def pool_rare(table: np.ndarray, labels: list[str]) -> tuple[np.ndarray, list[str]]:
    """Pool the categories whose smallest expected count is below 5 into one column (the
    chi-squared approximation needs that); a pooled column still too small joins the
    smallest remaining category."""
    total = table.sum()
    expected_min = table.sum(axis=1).min() * table.sum(axis=0) / total
    keep = expected_min >= MIN_EXPECTED
    if keep.all():
        return table, list(labels)
    kept = table[:, keep]
    pooled = table[:, ~keep].sum(axis=1, keepdims=True)
    kept_labels = [label for label, k in zip(labels, keep, strict=True) if k]
    if pooled.sum() > 0:
        if table.sum(axis=1).min() * pooled.sum() / total >= MIN_EXPECTED or kept.shape[1] == 0:
            kept = np.hstack([kept, pooled])
            kept_labels.append(OTHER)
        else:
            smallest = int(np.argmin(kept.sum(axis=0)))
            kept[:, smallest] += pooled[:, 0]
            kept_labels[smallest] = f"{kept_labels[smallest]}+{OTHER}"
    return kept, kept_labels


def _counts(values: np.ndarray) -> tuple[dict[str, int], int]:
    """Counts per category (as text) and the number of missing values."""
    import pandas as pd

    series = pd.Series(np.asarray(values, dtype=object).ravel(), dtype=object)
    missing = series.isna()
    counts = series[~missing].astype(str).value_counts()
    return {str(k): int(v) for k, v in counts.items()}, int(missing.sum())


def _top(counts: dict[str, int], total: int, n: int = 5) -> list[list[Any]]:
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:n]
    return [[name, round(count / total, 4)] for name, count in ranked] if total else []


def _share(part: int, whole: int) -> float:
    return float(part) / whole if whole else 0.0


@dataclass(frozen=True)
class BHResult:
    """Benjamini–Hochberg: ``adjusted`` p-values (q-values) in input order, and which are
    rejected at false-discovery rate ``alpha``."""

    adjusted: tuple[float, ...]
    rejected: tuple[bool, ...]
    alpha: float


def benjamini_hochberg(pvalues: list[float] | np.ndarray, *, alpha: float = 0.05) -> BHResult:
    """The Benjamini–Hochberg step-up procedure. With every null true it rejects anything
    with probability at most ``alpha`` (for independent or positively dependent tests)."""
    if not 0 < alpha < 1:
        raise ValueError(f"`alpha` must be between 0 and 1, got {alpha}")
    p = np.asarray(pvalues, dtype=np.float64)
    if p.ndim != 1 or np.any((p < 0) | (p > 1)) or np.any(~np.isfinite(p)):
        raise ValueError("`pvalues` must be a flat list of numbers between 0 and 1")
    m = p.size
    if m == 0:
        return BHResult((), (), alpha)
    order = np.argsort(p, kind="mergesort")
    ranked = p[order] * m / np.arange(1, m + 1)
    adjusted_sorted = np.minimum.accumulate(ranked[::-1])[::-1].clip(max=1.0)
    adjusted = np.empty(m)
    adjusted[order] = adjusted_sorted
    return BHResult(tuple(float(a) for a in adjusted), tuple(bool(a <= alpha) for a in adjusted), alpha)
