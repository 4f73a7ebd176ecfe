"""Each comparison rule at its boundary, with margins above 0: one bootstrap result, its
interval read off, and margins just inside and just outside the edge the rule compares.
Mirrors the rule text in mlops_ci/stats/decision.py: no-regression fails only when the
whole interval of the change lies below ``-margin``; non-inferiority passes only when it
lies above ``-margin``; superiority only when it lies above ``+margin``."""

from __future__ import annotations

import numpy as np
import pytest

from mlops_ci import stats

EPS = 1e-6


@pytest.fixture(scope="module", params=["accuracy", "log-loss"])
def worse(request):
    """A paired bootstrap where the candidate is clearly worse (the whole interval of the
    change lies below 0), for a higher-is-better and a mirrored lower-is-better metric."""
    rng = np.random.default_rng(11)
    n = 2000
    y = rng.integers(0, 2, n)
    if request.param == "accuracy":
        base = np.where(rng.random(n) < 0.90, y, 1 - y)
        cand = np.where(rng.random(n) < 0.80, y, 1 - y)
    else:
        noise = rng.normal(0, 0.1, n)
        base = np.clip(0.5 + 0.35 * (2 * y - 1) + noise, 0.01, 0.99)
        cand = np.clip(0.5 + 0.20 * (2 * y - 1) + noise, 0.01, 0.99)
    boot = stats.paired_bootstrap(y, cand, base, request.param, n_resamples=2000, random_state=0)
    low, high = boot.interval(0.95)
    # The change, positive = better (what the rules compare against the margin).
    c_low, c_high = (low, high) if boot.higher_is_better else (-high, -low)
    assert c_high < 0, "the fixture must be a clear regression"
    return boot, float(c_low), float(c_high)


def test_no_regression_passes_when_the_interval_reaches_above_minus_margin(worse):
    boot, _, c_high = worse
    # The interval's top is -|c_high|: a margin just wider than that tolerates the loss.
    inside = stats.decide(boot, rule="no-regression", margin=-c_high + EPS)
    outside = stats.decide(boot, rule="no-regression", margin=-c_high - EPS)
    assert inside.decision == "pass", inside.reason
    assert outside.decision == "fail", outside.reason
    assert stats.decide(boot, rule="no-regression", margin=0.0).decision == "fail"


def test_non_inferiority_needs_the_whole_interval_above_minus_margin(worse):
    boot, c_low, _ = worse
    inside = stats.decide(boot, rule="non-inferiority", margin=-c_low + EPS)
    outside = stats.decide(boot, rule="non-inferiority", margin=-c_low - EPS)
    assert inside.decision == "pass", inside.reason
    assert outside.decision == "fail", outside.reason


@pytest.fixture(scope="module")
def better():
    rng = np.random.default_rng(12)
    n = 2000
    y = rng.integers(0, 2, n)
    base = np.where(rng.random(n) < 0.80, y, 1 - y)
    cand = np.where(rng.random(n) < 0.90, y, 1 - y)
    boot = stats.paired_bootstrap(y, cand, base, "accuracy", n_resamples=2000, random_state=0)
    low, high = boot.interval(0.95)
    assert low > 0
    return boot, float(low), float(high)


def test_superiority_needs_the_whole_interval_above_plus_margin(better):
    boot, c_low, _ = better
    assert stats.decide(boot, rule="superiority", margin=c_low - EPS).decision == "pass"
    assert stats.decide(boot, rule="superiority", margin=c_low + EPS).decision == "fail"


def test_no_regression_with_a_margin_passes_an_improvement_and_a_small_loss(better):
    """An interval straddling or above 0 passes no-regression for every margin >= 0."""
    boot, c_low, c_high = better
    for margin in (0.0, c_low / 2, c_high, 2 * c_high):
        assert stats.decide(boot, rule="no-regression", margin=margin).decision == "pass"


def test_pvalues_agree_with_the_decision_away_from_the_boundary(worse, better):
    """The p-value tests each rule's own null at its own boundary (-margin or +margin, on
    the mirrored scale for lower-is-better metrics): small exactly where the interval lies
    clearly beyond that boundary, large where it clearly does not."""
    boot, c_low, c_high = worse
    width = c_high - c_low
    regressed = stats.decide(boot, rule="no-regression", margin=max(0.0, -c_high - width))
    tolerated = stats.decide(boot, rule="no-regression", margin=-c_low + width)
    assert (regressed.decision, tolerated.decision) == ("fail", "pass")
    assert regressed.pvalue < 0.05 < tolerated.pvalue
    inferior = stats.decide(boot, rule="non-inferiority", margin=max(1e-3, -c_high - width))
    non_inferior = stats.decide(boot, rule="non-inferiority", margin=-c_low + width)
    assert (inferior.decision, non_inferior.decision) == ("fail", "pass")
    assert non_inferior.pvalue < 0.05 < inferior.pvalue

    boot, c_low, c_high = better
    width = c_high - c_low
    superior = stats.decide(boot, rule="superiority", margin=max(0.0, c_low - width))
    not_superior = stats.decide(boot, rule="superiority", margin=c_high + width)
    assert (superior.decision, not_superior.decision) == ("pass", "fail")
    assert superior.pvalue < 0.05 < not_superior.pvalue


def test_holm_accepts_p_values_of_exactly_0_and_1_and_caps_adjusted_ones_at_1():
    result = stats.holm_bonferroni([1.0, 0.0, 0.6, 0.7], alpha=0.05)
    assert result.reject == (False, True, False, False)
    assert result.pvalues_adjusted == (1.0, 0.0, 1.0, 1.0)  # 3 * 0.6 and 2 * 0.7 capped at 1
    with pytest.raises(ValueError, match=r"`pvalues` must lie in \[0, 1\]"):
        stats.holm_bonferroni([1.0 + 1e-12])
