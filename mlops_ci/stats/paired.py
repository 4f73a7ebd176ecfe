"""Classical paired tests of two models scored on the same rows.

* ``mcnemar`` — exact McNemar test on the discordant pairs (rows exactly one model gets
  right), for classifiers.
* ``delong`` — DeLong, DeLong & Clarke-Pearson (1988) test of two correlated ROC AUCs,
  computed with midranks (Sun & Xu 2014) in O(n log n).
* ``wilcoxon_signed_rank`` and ``paired_t`` — on per-row losses (absolute or squared
  error, log loss...) of regressors or probabilistic classifiers.

Each returns a ``TestResult``; the estimate and interval are of ``candidate - baseline``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import stats as sps
from scipy.special import ndtr, ndtri

from mlops_ci.stats._checks import (
    check_alternative,
    check_choice,
    check_probability,
    check_same_rows,
)
from mlops_ci.stats._results import ConfidenceInterval, TestResult, skipped_interval
from mlops_ci.stats.metrics import LinearMetric, Metric, get_metric

# The Hodges–Lehmann interval of the Wilcoxon test sorts Walsh averages implicitly; above
# this many rows it is left out (the p-value is still computed).
HODGES_LEHMANN_MAX_ROWS = 200_000


def _labels(name: str, values: Any) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim != 1:
        raise ValueError(f"`{name}` must be one-dimensional (one value per row), got shape {array.shape}")
    return array


def _decision(pvalue: float, alpha: float) -> str:
    return "reject" if pvalue <= alpha else "retain"


def _skip(test: str, reason: str, alternative: str, alpha: float, n: int) -> TestResult:
    nan = float("nan")
    return TestResult(test, nan, nan, nan, skipped_interval(), "skip", reason, alternative, alpha, n)


def mcnemar(
    y_true: Any,
    candidate: Any,
    baseline: Any,
    *,
    alternative: str = "two-sided",
    alpha: float = 0.05,
    confidence_level: float = 0.95,
) -> TestResult:
    """Exact McNemar test: among rows exactly one model classifies correctly, is the
    candidate right as often as the baseline?

    ``statistic`` is ``min(b, c)`` for the two-sided test (as statsmodels reports it) and
    ``b`` (rows only the candidate gets right) for one-sided ones; the p-value is the exact
    binomial one. ``estimate`` is the accuracy difference ``(b - c) / n`` and
    ``confidence_interval`` an exact interval for it conditional on ``b + c`` (Clopper–Pearson
    on ``b / (b + c)``). ``alternative="greater"`` means the candidate is more accurate.
    """
    alternative = check_alternative(alternative)
    alpha = check_probability("alpha", alpha)
    level = check_probability("confidence_level", confidence_level)
    y, cand, base = _labels("y_true", y_true), _labels("candidate", candidate), _labels("baseline", baseline)
    check_same_rows("y_true", y, candidate=cand, baseline=base)
    n = len(y)
    if n == 0:
        return _skip("mcnemar", "no rows", alternative, alpha, 0)
    right_c, right_b = cand == y, base == y
    b = int(np.sum(right_c & ~right_b))
    c = int(np.sum(~right_c & right_b))
    d = b + c
    if d == 0:
        zero = ConfidenceInterval(0.0, 0.0)
        return TestResult(
            "mcnemar",
            0.0,
            1.0,
            0.0,
            zero,
            "retain",
            "no discordant rows: the models are right on the same rows",
            alternative,
            alpha,
            n,
            {"b": 0, "c": 0},
        )
    if alternative == "two-sided":
        statistic = float(min(b, c))
        pvalue = float(min(1.0, 2 * sps.binom.cdf(min(b, c), d, 0.5)))
    elif alternative == "greater":
        statistic = float(b)
        pvalue = float(sps.binom.sf(b - 1, d, 0.5))
    else:
        statistic = float(b)
        pvalue = float(sps.binom.cdf(b, d, 0.5))
    tail = 1 - level
    ci = sps.binomtest(b, d).proportion_ci(confidence_level=level, method="exact")
    low_p, high_p = ci.low, ci.high
    if alternative == "less":
        low_p = 0.0
        high_p = sps.binomtest(b, d).proportion_ci(confidence_level=1 - 2 * tail, method="exact").high
    elif alternative == "greater":
        high_p = 1.0
        low_p = sps.binomtest(b, d).proportion_ci(confidence_level=1 - 2 * tail, method="exact").low
    scale = d / n
    interval = ConfidenceInterval(float(scale * (2 * low_p - 1)), float(scale * (2 * high_p - 1)))
    estimate = (b - c) / n
    decision = _decision(pvalue, alpha)
    reason = (
        f"{b} rows only the candidate gets right, {c} only the baseline; exact p = {pvalue:.4g}"
        f" ({'reject' if decision == 'reject' else 'retain'} equal accuracy at alpha {alpha:g})"
    )
    return TestResult(
        "mcnemar",
        statistic,
        pvalue,
        estimate,
        interval,
        decision,
        reason,
        alternative,
        alpha,
        n,
        {"b": b, "c": c},
    )


def _midrank(x: np.ndarray) -> np.ndarray:
    return sps.rankdata(x, method="average")


def delong(
    y_true: Any,
    candidate: Any,
    baseline: Any,
    *,
    pos_label: Any = None,
    alternative: str = "two-sided",
    alpha: float = 0.05,
    confidence_level: float = 0.95,
) -> TestResult:
    """DeLong's test of ``AUC(candidate) - AUC(baseline)`` for scores on the same rows.

    ``candidate``/``baseline`` are scores of the positive class (higher = more likely
    positive); ``pos_label`` defaults to the greater of the two labels. ``statistic`` is the
    z statistic; the interval is the normal one with DeLong's variance.
    """
    alternative = check_alternative(alternative)
    alpha = check_probability("alpha", alpha)
    level = check_probability("confidence_level", confidence_level)
    y = _labels("y_true", y_true)
    scores = [
        np.asarray(_labels(name, v), dtype=np.float64)
        for name, v in (("candidate", candidate), ("baseline", baseline))
    ]
    check_same_rows("y_true", y, candidate=scores[0], baseline=scores[1])
    for name, s in zip(("candidate", "baseline"), scores, strict=True):
        if not np.isfinite(s).all():
            raise ValueError(f"`{name}` contains NaN or infinite scores")
    classes = np.unique(y)
    if len(classes) > 2:
        raise ValueError(f"DeLong's test is for two classes; `y_true` has {len(classes)}")
    if pos_label is None:
        pos_label = classes[-1]
    positive = y == pos_label
    m, k = int(positive.sum()), int((~positive).sum())
    if m < 2 or k < 2:
        return _skip(
            "delong", "DeLong's test needs at least two rows of each class", alternative, alpha, len(y)
        )
    aucs, v10, v01 = _delong_components(positive, np.vstack(scores))
    s10, s01 = np.cov(v10), np.cov(v01)
    cov = s10 / m + s01 / k
    var = float(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1])
    diff = float(aucs[0] - aucs[1])
    details = {"auc_candidate": float(aucs[0]), "auc_baseline": float(aucs[1]), "variance": var}
    if var <= 1e-15:
        same = abs(diff) < 1e-12
        return TestResult(
            "delong",
            0.0,
            1.0 if same else 0.0,
            diff,
            ConfidenceInterval(diff, diff),
            "retain" if same else "reject",
            "the two scores rank the rows identically" if same else "the AUC difference has no variance",
            alternative,
            alpha,
            len(y),
            details,
        )
    se = var**0.5
    z = diff / se
    if alternative == "two-sided":
        pvalue = float(2 * ndtr(-abs(z)))
        q = ndtri(1 - (1 - level) / 2)
        interval = ConfidenceInterval(float(diff - q * se), float(diff + q * se))
    elif alternative == "greater":
        pvalue = float(ndtr(-z))
        interval = ConfidenceInterval(float(diff - ndtri(level) * se), float("inf"))
    else:
        pvalue = float(ndtr(z))
        interval = ConfidenceInterval(float("-inf"), float(diff + ndtri(level) * se))
    decision = _decision(pvalue, alpha)
    reason = f"AUC {aucs[0]:.4g} vs {aucs[1]:.4g}, difference {diff:+.4g}, z = {z:.3g}, p = {pvalue:.4g}"
    return TestResult(
        "delong", float(z), pvalue, diff, interval, decision, reason, alternative, alpha, len(y), details
    )


def _delong_components(positive: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """AUCs and structural components V10 (per positive) and V01 (per negative), via
    midranks: O(n log n) instead of comparing every positive with every negative."""
    x, y = scores[:, positive], scores[:, ~positive]
    m, k = x.shape[1], y.shape[1]
    aucs, v10, v01 = [], [], []
    for r in range(scores.shape[0]):
        tx, ty = _midrank(x[r]), _midrank(y[r])
        tz = _midrank(np.concatenate([x[r], y[r]]))
        aucs.append((tz[:m].sum() - m * (m + 1) / 2) / (m * k))
        v10.append((tz[:m] - tx) / k)
        v01.append(1.0 - (tz[m:] - ty) / m)
    return np.array(aucs), np.array(v10), np.array(v01)


def _differences(candidate: Any, baseline: Any) -> np.ndarray:
    a = np.asarray(_labels("candidate", candidate), dtype=np.float64)
    b = np.asarray(_labels("baseline", baseline), dtype=np.float64)
    check_same_rows("candidate", a, baseline=b)
    for name, v in (("candidate", a), ("baseline", b)):
        if not np.isfinite(v).all():
            raise ValueError(f"`{name}` contains NaN or infinite losses")
    return a - b


def paired_t(
    candidate: Any,
    baseline: Any,
    *,
    alternative: str = "two-sided",
    alpha: float = 0.05,
    confidence_level: float = 0.95,
) -> TestResult:
    """Paired t test of the mean per-row loss difference ``candidate - baseline``."""
    alternative = check_alternative(alternative)
    alpha = check_probability("alpha", alpha)
    level = check_probability("confidence_level", confidence_level)
    d = _differences(candidate, baseline)
    n = len(d)
    if n < 2:
        return _skip("paired-t", "the paired t test needs at least two rows", alternative, alpha, n)
    if np.ptp(d) == 0:
        value = float(d[0])
        return TestResult(
            "paired-t",
            0.0 if value == 0 else float("inf") * np.sign(value),
            1.0 if value == 0 else 0.0,
            value,
            ConfidenceInterval(value, value),
            "retain" if value == 0 else "reject",
            "every row has the same loss difference",
            alternative,
            alpha,
            n,
        )
    result = sps.ttest_1samp(d, 0.0, alternative=alternative)
    ci = result.confidence_interval(confidence_level=level)
    pvalue = float(result.pvalue)
    decision = _decision(pvalue, alpha)
    reason = f"mean loss difference {d.mean():+.4g}, t = {float(result.statistic):.3g}, p = {pvalue:.4g}"
    return TestResult(
        "paired-t",
        float(result.statistic),
        pvalue,
        float(d.mean()),
        ConfidenceInterval(float(ci.low), float(ci.high)),
        decision,
        reason,
        alternative,
        alpha,
        n,
        {"df": n - 1},
    )


def wilcoxon_signed_rank(
    candidate: Any,
    baseline: Any,
    *,
    alternative: str = "two-sided",
    alpha: float = 0.05,
    confidence_level: float = 0.95,
    zero_method: str = "wilcox",
) -> TestResult:
    """Wilcoxon signed-rank test of the per-row loss differences ``candidate - baseline``
    (scipy's implementation), with the Hodges–Lehmann estimate (median of the Walsh
    averages) and its distribution-free interval."""
    alternative = check_alternative(alternative)
    alpha = check_probability("alpha", alpha)
    level = check_probability("confidence_level", confidence_level)
    zero_method = check_choice("zero_method", zero_method, ("wilcox", "pratt", "zsplit"))
    d = _differences(candidate, baseline)
    n = len(d)
    nonzero = int(np.count_nonzero(d))
    if nonzero == 0:
        return TestResult(
            "wilcoxon",
            0.0,
            1.0,
            0.0,
            ConfidenceInterval(0.0, 0.0),
            "retain",
            "every row has the same loss under both models",
            alternative,
            alpha,
            n,
        )
    if nonzero < 2:
        return _skip(
            "wilcoxon",
            "the signed-rank test needs at least two rows with different losses",
            alternative,
            alpha,
            n,
        )
    result = sps.wilcoxon(d, zero_method=zero_method, alternative=alternative)
    pvalue = float(result.pvalue)
    estimate, interval = _hodges_lehmann(d, level, alternative)
    decision = _decision(pvalue, alpha)
    reason = f"Hodges-Lehmann shift {estimate:+.4g}, p = {pvalue:.4g}"
    return TestResult(
        "wilcoxon",
        float(result.statistic),
        pvalue,
        estimate,
        interval,
        decision,
        reason,
        alternative,
        alpha,
        n,
        {"nonzero": nonzero},
    )


def _hodges_lehmann(d: np.ndarray, level: float, alternative: str) -> tuple[float, ConfidenceInterval]:
    n = len(d)
    if n > HODGES_LEHMANN_MAX_ROWS:
        return float(np.median(d)), skipped_interval()
    ds = np.sort(d)
    total = n * (n + 1) // 2

    def kth(k: int) -> float:
        """The k-th smallest (1-based) Walsh average (d_i + d_j) / 2, i <= j, by bisection
        on its value: counting those below a value is O(n log n)."""
        lo, hi = ds[0], ds[-1]
        for _ in range(200):
            mid = (lo + hi) / 2
            if mid in (lo, hi):
                break
            count = np.maximum(np.searchsorted(ds, 2 * mid - ds, "right") - np.arange(n), 0).sum()
            if count >= k:
                hi = mid
            else:
                lo = mid
        return float(hi)

    mid = (total + 1) / 2
    estimate = (
        kth(int(np.floor(mid))) if mid == int(mid) else (kth(int(np.floor(mid))) + kth(int(np.ceil(mid)))) / 2
    )
    tail = (1 - level) / (2 if alternative == "two-sided" else 1)
    sd = (n * (n + 1) * (2 * n + 1) / 24) ** 0.5
    k = int(np.floor(n * (n + 1) / 4 - ndtri(1 - tail) * sd))
    k = max(k, 1)
    low, high = kth(k), kth(total - k + 1)
    if alternative == "less":
        low = float("-inf")
    elif alternative == "greater":
        high = float("inf")
    return estimate, ConfidenceInterval(low, high)


def per_row_losses(y_true: Any, predictions: Any, metric: str | Metric) -> np.ndarray:
    """The per-row loss whose mean is ``metric`` (absolute error for MAE, squared error for
    MSE, log loss, Brier score, 0/1 error for accuracy) — the input of the paired t and
    Wilcoxon tests."""
    from mlops_ci.stats._prepare import prepare

    metric = get_metric(metric)
    if not isinstance(metric, LinearMetric) or metric.per_row is None:
        raise ValueError(f"`metric` {metric.name} is not the mean of a per-row loss")
    prep, (pred,) = prepare(metric, y_true, [("predictions", predictions)])
    if prep.batched:
        raise ValueError("`y_true` must be one-dimensional here")
    return np.asarray(metric.per_row(prep.y, pred, prep.enc), dtype=np.float64)[:, 0]
