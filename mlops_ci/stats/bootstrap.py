"""Bootstrap confidence intervals of a metric, or of the paired difference of a metric
between two models scored on the same rows.

The paired bootstrap resamples rows (each row keeps both models' predictions), so the
correlation between the two models — usually strong, since they err on the same hard rows —
narrows the interval of their difference. Intervals are percentile or BCa (bias-corrected
and accelerated, Efron 1987): BCa corrects the percentile interval for the median bias and
the skewness of the bootstrap distribution, using a jackknife for the acceleration. The bias
correction uses mid-ranks, so the many exact ties of discrete metrics (accuracy on a few
hundred rows) do not bias it.

P-values come from the same distributions the intervals come from, so "the interval excludes
c" and "the p-value for c is below alpha" agree.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
from scipy.special import ndtr, ndtri

from mlops_ci.stats._checks import (
    check_alternative,
    check_choice,
    check_int,
    check_number,
    check_probability,
    check_random_state,
)
from mlops_ci.stats._engine import ProgressCallback, Term, TermOutput, resample_terms
from mlops_ci.stats._prepare import prepare_terms
from mlops_ci.stats._results import ConfidenceInterval
from mlops_ci.stats.metrics import Metric, get_metric

METHODS = ("bca", "percentile")
# Above this share of resamples in which the metric is undefined, no interval is reported.
MAX_INVALID_SHARE = 0.10

UNDEFINED_HINTS = {
    "roc-auc": "it needs rows of both classes",
    "precision": "no row is predicted positive",
    "recall": "no row is positive",
    "f1": "no row is positive or predicted positive",
    "r2": "the true values are constant",
    "balanced-accuracy": "no class is present",
}


@dataclass(frozen=True, eq=False)
class BootstrapResult:
    """A bootstrap estimate: of one model's metric, or of ``candidate - baseline``.

    ``statistic`` is the observed value (the difference for a paired bootstrap),
    ``confidence_interval`` its interval at ``confidence_level``, ``pvalue`` the p-value of
    ``null_value`` under ``alternative``. ``decision`` is ``"reject"`` (the interval excludes
    the null value), ``"retain"``, or ``"skip"`` when the metric is undefined on these rows
    (``reason`` says why; the numbers are then NaN). With a batch of problems (``y_true`` of
    shape (n, S)) every number is an array of S values.

    ``interval()`` and ``pvalue_at()`` give other levels and null values from the same
    resamples, as a multiple-testing correction needs.
    """

    metric: str
    statistic: Any
    pvalue: Any
    confidence_interval: ConfidenceInterval
    standard_error: Any
    decision: Any
    reason: Any
    candidate: Any
    baseline: Any
    n: int
    n_resamples: int
    n_valid: Any
    method: str
    confidence_level: float
    alternative: str
    null_value: float | None
    higher_is_better: bool
    bootstrap_distribution: np.ndarray = field(repr=False)
    _theta: np.ndarray = field(repr=False, default=None)  # type: ignore[assignment]
    _z0: np.ndarray = field(repr=False, default=None)  # type: ignore[assignment]
    _accel: np.ndarray = field(repr=False, default=None)  # type: ignore[assignment]
    _batched: bool = field(repr=False, default=False)

    def interval(
        self, confidence_level: float | None = None, *, alternative: str = "two-sided"
    ) -> ConfidenceInterval:
        """The interval at another level (same resamples)."""
        level = (
            self.confidence_level
            if confidence_level is None
            else check_probability("confidence_level", confidence_level)
        )
        low, high = _interval(
            self._sorted,
            self._valid,
            self._theta,
            self._z0,
            self._accel,
            level,
            check_alternative(alternative),
            self.method,
        )
        return ConfidenceInterval(_out(low, self._batched), _out(high, self._batched))

    def pvalue_at(self, null_value: float, *, alternative: str = "two-sided") -> Any:
        """The bootstrap p-value of ``null_value`` (same resamples)."""
        check_number("null_value", null_value)
        p = _pvalue(
            self._sorted,
            self._valid,
            self._z0,
            self._accel,
            null_value,
            check_alternative(alternative),
            self.method,
        )
        return _out(p, self._batched)

    @property
    def skipped(self) -> Any:
        return _out(np.asarray(self.decision) == "skip", self._batched)

    @cached_property
    def _sorted(self) -> np.ndarray:
        dist = self.bootstrap_distribution
        return np.sort(dist if dist.ndim == 2 else dist[:, None], axis=0)

    @cached_property
    def _valid(self) -> np.ndarray:
        dist = self.bootstrap_distribution
        return np.isfinite(dist if dist.ndim == 2 else dist[:, None]).sum(axis=0)


@dataclass(frozen=True, eq=False)
class ModelBootstrap:
    """Bootstrap distributions of several metrics for several models, on shared resamples
    (so any two models are paired). Ask it for intervals with ``compare`` (a difference) or
    ``estimate`` (one model's metric)."""

    n: int
    n_resamples: int
    metrics: dict[str, Metric]
    models: tuple[str, ...]
    batched: bool
    _outputs: dict[tuple[str, str], TermOutput] = field(repr=False)

    def compare(
        self,
        metric: str,
        candidate: str = "candidate",
        baseline: str = "baseline",
        *,
        confidence_level: float = 0.95,
        method: str = "bca",
        alternative: str = "two-sided",
        null_value: float = 0.0,
    ) -> BootstrapResult:
        """``metric(candidate) - metric(baseline)``."""
        m = self._metric(metric)
        opts = _result_options(confidence_level, method, alternative)
        return summarise(
            m,
            self._output(m.name, candidate),
            self._output(m.name, baseline),
            n=self.n,
            batched=self.batched,
            null_value=check_number("null_value", null_value),
            **opts,
        )

    def estimate(
        self,
        metric: str,
        model: str = "candidate",
        *,
        confidence_level: float = 0.95,
        method: str = "bca",
        alternative: str = "two-sided",
        null_value: float | None = None,
    ) -> BootstrapResult:
        """One model's metric."""
        m = self._metric(metric)
        opts = _result_options(confidence_level, method, alternative)
        null = None if null_value is None else check_number("null_value", null_value)
        return summarise(
            m, self._output(m.name, model), None, n=self.n, batched=self.batched, null_value=null, **opts
        )

    def _metric(self, metric: str | Metric) -> Metric:
        name = metric.name if isinstance(metric, Metric) else metric
        if name not in self.metrics:
            raise ValueError(
                f"`metric` {name!r} was not bootstrapped; choose one of {', '.join(self.metrics)}"
            )
        return self.metrics[name]

    def _output(self, metric: str, model: str) -> TermOutput:
        if model not in self.models:
            raise ValueError(f"model {model!r} was not bootstrapped; choose one of {', '.join(self.models)}")
        return self._outputs[(metric, model)]


def bootstrap_models(
    y_true: Any,
    predictions: Mapping[str, Mapping[str, Any]],
    metrics: Sequence[str | Metric],
    *,
    n_resamples: int = 2000,
    random_state: Any = None,
    progress: ProgressCallback | None = None,
    workers: int | None = None,
    _names: Mapping[str, str] | None = None,
) -> ModelBootstrap:
    """Resample once, evaluate every metric for every model.

    ``predictions`` maps a model name to what it predicted, by kind: ``{"candidate":
    {"labels": ..., "scores": ...}, "baseline": {...}}`` (``"values"`` for regression).
    Every metric needs its kind from every model.
    """
    if not isinstance(predictions, Mapping) or not predictions:
        raise TypeError("`predictions` must map model names to {kind: array} mappings")
    resolved = [get_metric(m) for m in metrics]
    if not resolved:
        raise ValueError("`metrics` is empty")
    names = [m.name for m in resolved]
    if len(set(names)) != len(names):
        raise ValueError(f"`metrics` names a metric twice: {', '.join(names)}")
    n_resamples = check_int("n_resamples", n_resamples)
    seed = check_random_state(random_state)
    workers = None if workers is None else check_int("workers", workers)
    items, keys = [], []
    for model, kinds in predictions.items():
        if not isinstance(kinds, Mapping):
            raise TypeError(f"`predictions[{model!r}]` must map kinds (labels, scores, values) to arrays")
        for metric in resolved:
            if metric.input not in kinds or kinds[metric.input] is None:
                raise ValueError(f"metric {metric.name} needs `predictions[{model!r}][{metric.input!r}]`")
            name = (_names or {}).get(model) or f"predictions[{model!r}][{metric.input!r}]"
            items.append((metric, name, kinds[metric.input]))
            keys.append((metric.name, model))
    prep, arrays = prepare_terms(y_true, items)
    terms = [Term(metric, array) for (metric, _, _), array in zip(items, arrays, strict=True)]
    outputs = resample_terms(
        prep, terms, n_resamples=n_resamples, seed=seed, progress=progress, workers=workers
    )
    return ModelBootstrap(
        n=prep.n,
        n_resamples=n_resamples,
        metrics={m.name: m for m in resolved},
        models=tuple(predictions),
        batched=prep.batched,
        _outputs=dict(zip(keys, outputs, strict=True)),
    )


def paired_bootstrap(
    y_true: Any,
    candidate: Any,
    baseline: Any,
    metric: str | Metric,
    *,
    n_resamples: int = 2000,
    confidence_level: float = 0.95,
    method: str = "bca",
    alternative: str = "two-sided",
    null_value: float = 0.0,
    random_state: Any = None,
    progress: ProgressCallback | None = None,
    workers: int | None = None,
) -> BootstrapResult:
    """Bootstrap of ``metric(candidate) - metric(baseline)`` on the same rows.

    ``candidate`` and ``baseline`` are what the metric consumes: predicted labels,
    probabilities (of the positive class, or one column per class) or regression values.
    """
    metric = get_metric(metric)
    _result_options(confidence_level, method, alternative)
    boot = bootstrap_models(
        y_true,
        {"candidate": {metric.input: candidate}, "baseline": {metric.input: baseline}},
        [metric],
        n_resamples=n_resamples,
        random_state=random_state,
        progress=progress,
        workers=workers,
        _names={"candidate": "candidate", "baseline": "baseline"},
    )
    return boot.compare(
        metric.name,
        confidence_level=confidence_level,
        method=method,
        alternative=alternative,
        null_value=null_value,
    )


def bootstrap_metric(
    y_true: Any,
    predictions: Any,
    metric: str | Metric,
    *,
    n_resamples: int = 2000,
    confidence_level: float = 0.95,
    method: str = "bca",
    alternative: str = "two-sided",
    null_value: float | None = None,
    random_state: Any = None,
    progress: ProgressCallback | None = None,
    workers: int | None = None,
) -> BootstrapResult:
    """Bootstrap of one model's metric. ``pvalue`` is None unless ``null_value`` is given."""
    metric = get_metric(metric)
    _result_options(confidence_level, method, alternative)
    boot = bootstrap_models(
        y_true,
        {"model": {metric.input: predictions}},
        [metric],
        n_resamples=n_resamples,
        random_state=random_state,
        progress=progress,
        workers=workers,
        _names={"model": "predictions"},
    )
    return boot.estimate(
        metric.name,
        "model",
        confidence_level=confidence_level,
        method=method,
        alternative=alternative,
        null_value=null_value,
    )


def _result_options(confidence_level: Any, method: Any, alternative: Any) -> dict[str, Any]:
    return {
        "confidence_level": check_probability("confidence_level", confidence_level),
        "method": check_choice("method", method, METHODS),
        "alternative": check_alternative(alternative),
    }


def summarise(
    metric: Metric,
    cand: TermOutput,
    base: TermOutput | None,
    *,
    n: int,
    batched: bool,
    null_value: float | None,
    confidence_level: float,
    method: str,
    alternative: str,
) -> BootstrapResult:
    """Turn engine output (one term, or two paired terms) into a BootstrapResult."""
    if base is None:
        theta, dist, jack, weight = cand.point, cand.boot.copy(), cand.jack, cand.jack_weight
    else:
        theta = cand.point - base.point
        dist = cand.boot - base.boot
        jack = cand.jack - base.jack
        weight = cand.jack_weight
    S = theta.shape[0]
    dist = np.where(np.isfinite(dist), dist, np.nan)
    valid = np.isfinite(dist).sum(axis=0)
    B = dist.shape[0]
    undefined = ~np.isfinite(theta)
    invalid_share = 1 - valid / B
    skip = undefined | (invalid_share > MAX_INVALID_SHARE) | (n < 2)
    reasons = np.array([""] * S, dtype=object)
    for s in range(S):
        if n < 2:
            reasons[s] = f"{metric.name} needs at least 2 rows, got {n}"
        elif undefined[s]:
            who = _undefined_side(cand.point[s], None if base is None else base.point[s])
            hint = UNDEFINED_HINTS.get(metric.name)
            reasons[s] = f"{metric.name} is undefined on these rows for the {who}" + (
                f" ({hint})" if hint else ""
            )
        elif invalid_share[s] > MAX_INVALID_SHARE:
            reasons[s] = (
                f"{metric.name} is undefined in {invalid_share[s]:.0%} of the resamples (too few rows of a "
                "class); more rows are needed for an interval"
            )
    safe_dist = np.where(skip[None, :], np.nan, dist)
    sorted_ = np.sort(safe_dist, axis=0)
    valid = np.where(skip, 0, valid)
    z0, accel = (
        _bca_parameters(sorted_, valid, theta, jack, weight)
        if method == "bca"
        else (np.zeros(S), np.zeros(S))
    )
    low, high = _interval(sorted_, valid, theta, z0, accel, confidence_level, alternative, method)
    with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        se = np.where(valid > 1, np.nanstd(safe_dist, axis=0, ddof=1) if B > 1 else np.nan, np.nan)
    if null_value is None:
        pvalue: Any = None
        decision = np.where(skip, "skip", "estimate")
    else:
        pvalue = _pvalue(sorted_, valid, z0, accel, null_value, alternative, method)
        excluded = _excludes(low, high, null_value, alternative)
        decision = np.where(skip, "skip", np.where(excluded, "reject", "retain"))
        level = _percent(confidence_level)
        for s in range(S):
            if skip[s]:
                continue
            verb = "excludes" if excluded[s] else "contains"
            reasons[s] = f"the {level} interval [{low[s]:.4g}, {high[s]:.4g}] {verb} {null_value:g}"
    if null_value is None:
        for s in range(S):
            if not skip[s]:
                reasons[s] = (
                    f"{metric.name} {theta[s]:.4g}, {_percent(confidence_level)} interval [{low[s]:.4g}, {high[s]:.4g}]"
                )
    nan_if_skip = lambda a: np.where(skip, np.nan, a)  # noqa: E731
    return BootstrapResult(
        metric=metric.name,
        statistic=_out(nan_if_skip(theta), batched),
        pvalue=None if pvalue is None else _out(nan_if_skip(pvalue), batched),
        confidence_interval=ConfidenceInterval(
            _out(nan_if_skip(low), batched), _out(nan_if_skip(high), batched)
        ),
        standard_error=_out(nan_if_skip(se), batched),
        decision=_out(decision, batched, text=True),
        reason=_out(reasons, batched, text=True),
        candidate=_out(cand.point, batched),
        baseline=None if base is None else _out(base.point, batched),
        n=n,
        n_resamples=B,
        n_valid=_out(valid, batched, integer=True),
        method=method,
        confidence_level=confidence_level,
        alternative=alternative,
        null_value=null_value,
        higher_is_better=metric.higher_is_better,
        bootstrap_distribution=safe_dist if batched else safe_dist[:, 0],
        _theta=theta,
        _z0=z0,
        _accel=accel,
        _batched=batched,
    )


def _percent(level: float) -> str:
    return f"{100 * level:.2f}".rstrip("0").rstrip(".") + "%"


def _undefined_side(cand: float, base: float | None) -> str:
    if base is None:
        return "model"
    if not np.isfinite(cand) and not np.isfinite(base):
        return "candidate and the baseline"
    return "candidate" if not np.isfinite(cand) else "baseline"


def _out(values: Any, batched: bool, *, text: bool = False, integer: bool = False) -> Any:
    array = np.asarray(values)
    if batched:
        return array
    item = array.reshape(-1)[0]
    if text:
        return str(item)
    if integer:
        return int(item)
    return float(item)


# --- interval maths (vectorised over problems) -------------------------------------------


def _quantile(sorted_: np.ndarray, valid: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Per-problem quantile (numpy's default linear interpolation) of the valid values."""
    S = sorted_.shape[1]
    out = np.full(S, np.nan)
    ok = valid > 0
    if not ok.any():
        return out
    q = np.clip(np.broadcast_to(q, (S,)), 0.0, 1.0)
    h = q * (valid - 1)
    lo = np.floor(h).astype(np.int64)
    hi = np.minimum(lo + 1, np.maximum(valid - 1, 0))
    cols = np.arange(S)
    lo_c, hi_c = np.clip(lo, 0, sorted_.shape[0] - 1), np.clip(hi, 0, sorted_.shape[0] - 1)
    a, b = sorted_[lo_c, cols], sorted_[hi_c, cols]
    value = a + (h - lo) * (b - a)
    return np.where(ok, np.where(a == b, a, value), np.nan)


def _mid_rank_cdf(sorted_: np.ndarray, valid: np.ndarray, c: np.ndarray) -> np.ndarray:
    """(#below c + half #equal to c) / #valid, per problem; NaNs sort last and are ignored."""
    c = np.broadcast_to(np.asarray(c, dtype=np.float64), (sorted_.shape[1],))
    below = (sorted_ < c[None, :]).sum(axis=0)
    equal = (sorted_ == c[None, :]).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (below + 0.5 * equal) / valid


def _bca_parameters(sorted_, valid, theta, jack, weight) -> tuple[np.ndarray, np.ndarray]:
    S = sorted_.shape[1]
    v = np.maximum(valid, 1)
    p0 = np.clip(_mid_rank_cdf(sorted_, v, np.where(np.isfinite(theta), theta, 0.0)), 0.5 / v, 1 - 0.5 / v)
    z0 = np.where(valid > 0, ndtri(p0), 0.0)
    w = np.where(np.isfinite(jack), weight, 0.0)
    j = np.where(np.isfinite(jack), jack, 0.0)
    total = w.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(total > 0, (w * j).sum(axis=0) / np.maximum(total, 1e-300), 0.0)
        d = mean[None, :] - j
        num = (w * d**3).sum(axis=0)
        den = 6.0 * ((w * d**2).sum(axis=0)) ** 1.5
        accel = np.where(den > 0, num / np.where(den > 0, den, 1.0), 0.0)
    return np.where(np.isfinite(z0), z0, 0.0), np.where(np.isfinite(accel), accel, 0.0) * np.ones(S)


def _bca_level(q: float, z0: np.ndarray, accel: np.ndarray) -> np.ndarray:
    """Nominal lower-tail probability q -> the BCa-adjusted one."""
    if q <= 0:
        return np.zeros_like(z0)
    if q >= 1:
        return np.ones_like(z0)
    zq = ndtri(q)
    t = z0 + zq
    den = 1 - accel * t
    with np.errstate(divide="ignore", invalid="ignore"):
        adjusted = ndtr(z0 + t / den)
    return np.where(den > 0, adjusted, np.where(t > 0, 1.0, 0.0))


def _interval(sorted_, valid, theta, z0, accel, level, alternative, method) -> tuple[np.ndarray, np.ndarray]:
    tail = 1 - level
    lo_q = tail / 2 if alternative == "two-sided" else tail
    hi_q = 1 - lo_q
    if method == "bca":
        q_low, q_high = _bca_level(lo_q, z0, accel), _bca_level(hi_q, z0, accel)
    else:
        q_low, q_high = np.full(len(z0), lo_q), np.full(len(z0), hi_q)
    low, high = _quantile(sorted_, valid, q_low), _quantile(sorted_, valid, q_high)
    if alternative == "less":
        low = np.full_like(low, -np.inf)
    elif alternative == "greater":
        high = np.full_like(high, np.inf)
    return low, high


def _pvalue(sorted_, valid, z0, accel, c, alternative, method) -> np.ndarray:
    """Smallest alpha at which the bound of the (1 - alpha) interval on the alternative's
    side passes ``c`` (two-sided: twice the smaller one-sided value)."""
    v = np.maximum(valid, 1)
    g = np.clip(_mid_rank_cdf(sorted_, v, c), 0.5 / v, 1 - 0.5 / v)
    if method == "bca":
        w = ndtri(g) - z0
        den = 1 + accel * w
        with np.errstate(divide="ignore", invalid="ignore"):
            q = ndtr(w / den - z0)
        q = np.where(den > 0, q, np.where(w > 0, 1.0, 0.0))
    else:
        q = g
    p_less, p_greater = 1 - q, q
    if alternative == "less":
        p = p_less
    elif alternative == "greater":
        p = p_greater
    else:
        p = np.minimum(1.0, 2 * np.minimum(p_less, p_greater))
    return np.where(valid > 0, p, np.nan)


def _excludes(low, high, c, alternative) -> np.ndarray:
    if alternative == "less":
        return high < c
    if alternative == "greater":
        return low > c
    return (high < c) | (low > c)
