"""Decision rules on the interval of a difference, and Holm–Bonferroni.

Every rule reads the two-sided ``(1 - alpha)`` bootstrap interval of ``candidate -
baseline`` (of the candidate's own metric for the absolute rules). "Better" means higher for
metrics such as accuracy and lower for losses: below, ``change`` is the difference oriented
so that positive is better, and ``margin >= 0`` is in the metric's units.

``no-regression``
    Block only on evidence of harm: fail when the whole interval of the change lies below
    ``-margin``. When the models are equal, that happens with probability about ``alpha/2``
    (one tail of a two-sided interval): the other ``alpha/2`` is a safety margin that
    absorbs the bootstrap's slight under-coverage on small holdouts, so equal models are
    blocked at most ``alpha`` of the time at any size. Too small a holdout cannot block.
``non-inferiority``
    The candidate must prove it is not worse than ``margin``: pass only when the whole
    interval lies above ``-margin``. The burden of proof is on the candidate, so a holdout
    too small for the margin blocks — the result says so, with the minimum detectable
    difference (MDE) and the rows needed, rather than calling the model worse.
``superiority``
    Pass only when the whole interval lies above ``+margin``.
``floor`` / ``ceiling``
    Absolute: pass only when the candidate's interval lies wholly at or above the floor
    (at or below the ceiling).

p-values are two-sided-equivalent (twice the one-sided bootstrap p-value of the rule's null),
so ``p <= alpha`` exactly when the interval clears the bound.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from mlops_ci.stats._checks import check_choice, check_number, check_probability
from mlops_ci.stats._results import ConfidenceInterval, HolmResult
from mlops_ci.stats.bootstrap import BootstrapResult, bootstrap_metric, paired_bootstrap
from mlops_ci.stats.metrics import Metric
from mlops_ci.stats.power import z_sum

COMPARISON_RULES = ("no-regression", "non-inferiority", "superiority")
ABSOLUTE_RULES = ("floor", "ceiling")
RULES = COMPARISON_RULES + ABSOLUTE_RULES
# Fewer resamples than this beyond a bound make the bound itself noisy.
MIN_TAIL_RESAMPLES = 10


@dataclass(frozen=True, eq=False)
class RuleResult:
    """A decision: ``"pass"``, ``"fail"`` or ``"skip"`` (the metric is undefined here),
    with ``reason`` in words and the numbers behind it.

    ``statistic`` is ``candidate - baseline`` for comparisons and the candidate's metric for
    absolute rules; ``confidence_interval`` is its two-sided ``(1 - alpha)`` interval; ``mde``
    the minimum detectable difference at ``alpha`` and ``power``; ``n_required`` the rows a
    non-inferiority or superiority margin needs (None otherwise). With a batch of problems
    every number is an array.
    """

    metric: str
    rule: str
    statistic: Any
    pvalue: Any
    confidence_interval: ConfidenceInterval
    decision: Any
    reason: Any
    candidate: Any
    baseline: Any
    margin: float | None
    threshold: float | None
    alpha: float
    power: float
    higher_is_better: bool
    standard_error: Any
    mde: Any
    n_required: Any
    n: int
    warnings: Any
    bootstrap: BootstrapResult

    @property
    def passed(self) -> Any:
        return np.asarray(self.decision) == "pass" if self.bootstrap._batched else self.decision == "pass"


def check_rule_arguments(
    rule: str, *, margin: float | None, threshold: float | None, alpha: float, power: float | None
) -> tuple[str, float | None, float | None, float, float]:
    rule = check_choice("rule", rule, RULES)
    alpha = check_probability("alpha", alpha)
    power = 1 - alpha if power is None else check_probability("power", power)
    if rule in COMPARISON_RULES:
        if threshold is not None:
            raise ValueError(f"`threshold` is for the floor and ceiling rules; rule {rule} takes `margin`")
        if margin is None:
            if rule == "non-inferiority":
                raise ValueError(
                    "`margin` is required for non-inferiority: how much worse is still acceptable"
                )
            margin = 0.0
        margin = check_number("margin", margin, minimum=0.0)
        if rule == "non-inferiority" and margin == 0:
            raise ValueError("`margin` must be positive for non-inferiority (with 0, use superiority)")
    else:
        if margin is not None:
            raise ValueError(f"`margin` is for comparisons; rule {rule} takes `threshold`")
        if threshold is None:
            raise ValueError(f"`threshold` is required for rule {rule}")
        threshold = check_number("threshold", threshold)
    return rule, margin, threshold, alpha, power


def decide(
    result: BootstrapResult,
    *,
    rule: str,
    margin: float | None = None,
    threshold: float | None = None,
    alpha: float = 0.05,
    power: float | None = None,
) -> RuleResult:
    """Apply a rule to a bootstrap result (paired for comparisons, single for absolute
    rules) at level ``alpha``; the resamples are reused, not redrawn."""
    if not isinstance(result, BootstrapResult):
        raise TypeError(f"`result` must be a BootstrapResult, got {type(result).__name__}")
    rule, margin, threshold, alpha, power = check_rule_arguments(
        rule, margin=margin, threshold=threshold, alpha=alpha, power=power
    )
    paired = result.baseline is not None
    if rule in COMPARISON_RULES and not paired:
        raise ValueError(f"rule {rule} compares two models; `result` must come from paired_bootstrap")
    if rule in ABSOLUTE_RULES and paired:
        raise ValueError(f"rule {rule} judges one model; `result` must come from bootstrap_metric")

    batched = result._batched
    theta = np.atleast_1d(np.asarray(result.statistic, dtype=np.float64))
    S = theta.shape[0]
    low, high = (np.atleast_1d(np.asarray(v, dtype=np.float64)) for v in result.interval(1 - alpha))
    se = np.atleast_1d(np.asarray(result.standard_error, dtype=np.float64))
    valid = np.atleast_1d(np.asarray(result.n_valid))
    skipped = np.atleast_1d(np.asarray(result.decision)) == "skip"
    base_reason = np.atleast_1d(np.asarray(result.reason, dtype=object))
    mde = z_sum(alpha, power) * se
    sign = 1.0 if result.higher_is_better else -1.0
    level = percent(1 - alpha)

    if rule in COMPARISON_RULES:
        assert margin is not None
        # The interval of the change (positive = better).
        c_low, c_high = (low, high) if sign > 0 else (-high, -low)
        if rule == "no-regression":
            passed = ~(c_high < -margin)
            one_sided = _one_sided(result, -sign * margin, "less" if sign > 0 else "greater")
        elif rule == "non-inferiority":
            passed = c_low > -margin
            one_sided = _one_sided(result, -sign * margin, "greater" if sign > 0 else "less")
        else:
            passed = c_low > margin
            one_sided = _one_sided(result, sign * margin, "greater" if sign > 0 else "less")
    else:
        assert threshold is not None
        if rule == "floor":
            passed = low >= threshold
            one_sided = _one_sided(result, threshold, "greater")
        else:
            passed = high <= threshold
            one_sided = _one_sided(result, threshold, "less")
    pvalue = np.minimum(1.0, 2 * one_sided)

    n_required = np.full(S, np.nan)
    if rule in ("non-inferiority", "superiority") and margin:
        with np.errstate(divide="ignore", invalid="ignore"):
            n_required = np.where(mde > margin, np.ceil(result.n * (mde / margin) ** 2), result.n)

    decisions = np.where(skipped, "skip", np.where(passed, "pass", "fail")).astype(object)
    reasons = np.empty(S, dtype=object)
    warnings: list[tuple[str, ...]] = []
    for s in range(S):
        notes: list[str] = []
        if skipped[s]:
            reasons[s] = str(base_reason[s])
            warnings.append(())
            continue
        tail = alpha / 2 * valid[s]
        if tail < MIN_TAIL_RESAMPLES:
            notes.append(
                f"only {tail:.0f} resamples lie beyond each bound at alpha {alpha:g}; use at least "
                f"{math.ceil(2 * MIN_TAIL_RESAMPLES / alpha)} resamples for a stable decision"
            )
        if valid[s] < result.n_resamples:
            share = 1 - valid[s] / result.n_resamples
            notes.append(f"{result.metric} was undefined in {share:.1%} of the resamples; they were left out")
        words = _Words(result.metric, level, theta[s], low[s], high[s], mde[s], power, result.n)
        if rule in COMPARISON_RULES:
            too_small = rule == "non-inferiority" and mde[s] > margin
            if too_small:
                notes.append(
                    f"the holdout is too small for a margin of {margin:g}: with {result.n} rows the minimum "
                    f"detectable difference is {mde[s]:.4g} (alpha {alpha:g}, power {power:g}); about "
                    f"{int(n_required[s])} rows are needed, or a wider margin"
                )
            reasons[s] = words.comparison(rule, margin, sign, bool(passed[s]), too_small)
        else:
            reasons[s] = words.absolute(rule, threshold, bool(passed[s]))
        warnings.append(tuple(notes))

    def out(a: Any, *, text: bool = False) -> Any:
        array = np.asarray(a, dtype=object if text else np.float64)
        if batched:
            return array
        item = array.reshape(-1)[0]
        return str(item) if text else float(item)

    nan_skip = lambda a: np.where(skipped, np.nan, a)  # noqa: E731
    return RuleResult(
        metric=result.metric,
        rule=rule,
        statistic=out(nan_skip(theta)),
        pvalue=out(nan_skip(pvalue)),
        confidence_interval=ConfidenceInterval(out(nan_skip(low)), out(nan_skip(high))),
        decision=out(decisions, text=True),
        reason=out(reasons, text=True),
        candidate=result.candidate,
        baseline=result.baseline,
        margin=margin,
        threshold=threshold,
        alpha=alpha,
        power=power,
        higher_is_better=result.higher_is_better,
        standard_error=out(nan_skip(se)),
        mde=out(nan_skip(mde)),
        n_required=None if rule not in ("non-inferiority", "superiority") else out(nan_skip(n_required)),
        n=result.n,
        warnings=warnings if batched else warnings[0],
        bootstrap=result,
    )


def percent(level: float) -> str:
    """0.95 -> '95%', 0.975 -> '97.5%', 0.99833 -> '99.83%'."""
    text = f"{100 * level:.2f}".rstrip("0").rstrip(".")
    return f"{text}%"


def _one_sided(result: BootstrapResult, c: float, alternative: str) -> np.ndarray:
    return np.atleast_1d(np.asarray(result.pvalue_at(c, alternative=alternative), dtype=np.float64))


@dataclass
class _Words:
    metric: str
    level: str
    theta: float
    low: float
    high: float
    mde: float
    power: float
    n: int

    def interval(self) -> str:
        return f"{self.level} interval [{self.low:+.4g}, {self.high:+.4g}]"

    def comparison(self, rule: str, margin: float, sign: float, passed: bool, too_small: bool) -> str:
        change = f"{self.metric} changed by {self.theta:+.4g} ({self.interval()})"
        m = f"{margin:g}"
        if rule == "no-regression":
            if not passed:
                beyond = f"by more than the margin {m}" if margin else "than the baseline"
                return f"regression: {change}; the whole interval shows the candidate worse {beyond}"
            return (
                f"no evidence of a regression: {change}; a regression of {margin + self.mde:.4g} or more "
                f"would be caught with {self.power:.0%} probability"
            )
        c_high = self.high if sign > 0 else -self.low
        if rule == "non-inferiority":
            if passed:
                return f"shown not worse than the baseline by more than {m}: {change}"
            if c_high < -margin:
                return f"worse than the baseline by more than the margin {m}: {change}"
            if too_small:
                return (
                    f"not shown to be within {m} of the baseline: {change}. The holdout is too small to tell "
                    f"(minimum detectable difference {self.mde:.4g} > margin {m}); this does not mean the "
                    "candidate is worse"
                )
            return f"not shown to be within {m} of the baseline: {change} reaches past -{m}"
        if passed:
            return f"shown better than the baseline by more than {m}: {change}"
        return (
            f"not shown better than the baseline by more than {m}: {change} (minimum detectable "
            f"difference {self.mde:.4g})"
        )

    def absolute(self, rule: str, threshold: float, passed: bool) -> str:
        value = f"{self.metric} {self.theta:.4g} ({self.level} interval [{self.low:.4g}, {self.high:.4g}])"
        if rule == "floor":
            return f"{value} {'clears' if passed else 'does not clear'} the floor {threshold:g}"
        return f"{value} {'stays under' if passed else 'does not stay under'} the ceiling {threshold:g}"


def compare(
    y_true: Any,
    candidate: Any,
    baseline: Any,
    metric: str | Metric,
    *,
    rule: str = "no-regression",
    margin: float | None = None,
    alpha: float = 0.05,
    power: float | None = None,
    n_resamples: int = 2000,
    method: str = "bca",
    random_state: Any = None,
    progress: Any = None,
    workers: int | None = None,
) -> RuleResult:
    """Paired bootstrap of ``candidate - baseline`` and a comparison rule, in one call."""
    check_rule_arguments(rule, margin=margin, threshold=None, alpha=alpha, power=power)
    if rule not in COMPARISON_RULES:
        raise ValueError(f"`rule` must be one of {', '.join(COMPARISON_RULES)} for compare(); got {rule!r}")
    boot = paired_bootstrap(
        y_true,
        candidate,
        baseline,
        metric,
        n_resamples=n_resamples,
        confidence_level=1 - alpha,
        method=method,
        random_state=random_state,
        progress=progress,
        workers=workers,
    )
    return decide(boot, rule=rule, margin=margin, alpha=alpha, power=power)


def check_threshold(
    y_true: Any,
    predictions: Any,
    metric: str | Metric,
    *,
    rule: str = "floor",
    threshold: float,
    alpha: float = 0.05,
    n_resamples: int = 2000,
    method: str = "bca",
    random_state: Any = None,
    progress: Any = None,
    workers: int | None = None,
) -> RuleResult:
    """Bootstrap of one model's metric and an absolute rule (floor or ceiling)."""
    check_rule_arguments(rule, margin=None, threshold=threshold, alpha=alpha, power=None)
    if rule not in ABSOLUTE_RULES:
        raise ValueError(f"`rule` must be floor or ceiling for check_threshold(); got {rule!r}")
    boot = bootstrap_metric(
        y_true,
        predictions,
        metric,
        n_resamples=n_resamples,
        confidence_level=1 - alpha,
        method=method,
        random_state=random_state,
        progress=progress,
        workers=workers,
    )
    return decide(boot, rule=rule, threshold=threshold, alpha=alpha)


def holm_bonferroni(pvalues: Sequence[float], *, alpha: float = 0.05) -> HolmResult:
    """Holm's step-down procedure: the family-wise error of the rejected set is at most
    ``alpha``. NaN p-values (skipped checks) are left out of the family and never rejected."""
    alpha = check_probability("alpha", alpha)
    p = np.asarray(list(pvalues), dtype=np.float64)
    if p.ndim != 1:
        raise ValueError("`pvalues` must be a flat sequence")
    if ((p < 0) | (p > 1)).any():
        raise ValueError("`pvalues` must lie in [0, 1]")
    finite = np.flatnonzero(np.isfinite(p))
    m = len(finite)
    adjusted = np.full(len(p), np.nan)
    alphas = np.full(len(p), np.nan)
    reject = np.zeros(len(p), dtype=bool)
    order = finite[np.argsort(p[finite], kind="stable")]
    running = 0.0
    still = True
    for rank, i in enumerate(order):
        factor = m - rank
        running = max(running, min(1.0, factor * p[i]))
        adjusted[i] = running
        alphas[i] = alpha / factor
        still = still and p[i] <= alpha / factor
        reject[i] = still
    return HolmResult(
        pvalues=tuple(float(v) for v in p),
        pvalues_adjusted=tuple(float(v) for v in adjusted),
        alphas=tuple(float(v) for v in alphas),
        reject=tuple(bool(v) for v in reject),
        alpha=alpha,
    )
