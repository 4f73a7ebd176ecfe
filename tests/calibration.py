"""Calibrated bounds for simulated rates: a bound the DESIGN rate passes (a true rate of
exactly the design rate exceeds it with probability at most 1 - SURE) and that a broken
rate (a doubled false-alarm rate, a 90 % interval labelled 95 %) fails with probability at
least MIN_POWER. Each check prints the observed rate, the bound and its power, and fails
when the number of simulated holdouts is too small for that power, so a later cut in the
number of holdouts cannot quietly make the bound toothless.

Binomial quantiles are exact (scipy), not normal approximations; the seeds of the
simulations are fixed, so each outcome is deterministic."""

from __future__ import annotations

from dataclasses import dataclass

from scipy.stats import binom

SURE = 0.999  # a true design rate passes with probability >= SURE
MIN_POWER = 0.99  # a broken rate fails with probability >= MIN_POWER


@dataclass(frozen=True)
class Bound:
    trials: int
    design: float
    broken: float
    limit: int  # the count the observed count is compared with
    power: float  # P(fail | broken rate)


def rate_bound(trials: int, design: float, broken: float) -> Bound:
    """Upper bound on the count of events (false blocks, false alarms): pass when
    count <= limit. Power: P(count > limit) under the broken rate."""
    limit = int(binom.ppf(SURE, trials, design))
    return Bound(trials, design, broken, limit, float(binom.sf(limit, trials, broken)))


def coverage_bound(trials: int, nominal: float, broken: float) -> Bound:
    """Lower bound on the count of covering intervals: pass when count >= limit. Power:
    P(count < limit) under the broken coverage."""
    limit = int(binom.ppf(1 - SURE, trials, nominal))
    return Bound(trials, nominal, broken, limit, float(binom.cdf(limit - 1, trials, broken)))


def check_rate(label: str, count: int, trials: int, *, design: float, broken: float) -> Bound:
    bound = rate_bound(trials, design, broken)
    print(
        f"{label}: {count / trials:.2%} of {trials} (design rate {design:.1%}, bound "
        f"{bound.limit / trials:.2%}, power {bound.power:.4f} against {broken:.1%})"
    )
    assert bound.power >= MIN_POWER, (
        f"{trials} trials are too few: power {bound.power:.3f} against {broken:.1%}"
    )
    assert count <= bound.limit, f"{label}: {count} of {trials} > {bound.limit} (design rate {design:.1%})"
    return bound


def check_coverage(label: str, covered: int, trials: int, *, nominal: float, broken: float) -> Bound:
    bound = coverage_bound(trials, nominal, broken)
    print(
        f"{label}: coverage {covered / trials:.2%} of {trials} (nominal {nominal:.0%}, bound "
        f">= {bound.limit / trials:.2%}, power {bound.power:.4f} against {broken:.0%})"
    )
    assert bound.power >= MIN_POWER, (
        f"{trials} trials are too few: power {bound.power:.3f} against {broken:.0%}"
    )
    assert covered >= bound.limit, f"{label}: covered {covered} of {trials} < {bound.limit}"
    # Over-coverage is not a gate bug in itself, but far above nominal means a wider
    # interval than labelled (lost power): bound it the same way from above.
    assert covered <= int(binom.ppf(SURE, trials, nominal)), f"{label}: covered {covered} of {trials}"
    return bound
