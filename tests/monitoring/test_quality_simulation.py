"""Simulated labelled periods through the quality test (`monitoring.quality.assess`),
vectorised over periods: a decay is caught with high power, and stable periods are flagged
at most at alpha - with enough periods that a rule flagging twice as often would fail."""

from __future__ import annotations

import numpy as np
from scipy.stats import binom

from mlops_ci.monitoring.quality import assess

ROWS = 2000
VALIDATED = 0.85
ALPHA = 0.05


def _periods(rng: np.random.Generator, accuracy: float, periods: int) -> tuple[np.ndarray, np.ndarray]:
    """Binary predictions and labels that agree with them at rate ``accuracy``: labels that
    drift away from the predictions lower it. Shape (rows, periods)."""
    predictions = rng.integers(0, 2, size=(ROWS, periods))
    agree = rng.random((ROWS, periods)) < accuracy
    return np.where(agree, predictions, 1 - predictions), predictions


def test_a_five_point_decay_is_caught_in_at_least_95_percent_of_200_periods():
    labels, predictions = _periods(np.random.default_rng(1), VALIDATED - 0.05, 200)
    found = assess(labels, predictions, "accuracy", expected=VALIDATED, alpha=ALPHA, random_state=11)
    power = float(np.mean(found.decayed))
    print(f"decay of 5 points on {ROWS} rows: caught in {power:.1%} of 200 periods")
    assert power >= 0.95
    # The retraining reason names the live metric, its interval and the validated value.
    one = assess(labels[:, 0], predictions[:, 0], "accuracy", expected=VALIDATED, alpha=ALPHA, random_state=0)
    assert one.decayed and one.headline().startswith("quality decay: accuracy 0.")
    assert one.headline().endswith("vs 0.85 validated")


def test_a_decay_within_the_margin_is_not_flagged():
    labels, predictions = _periods(np.random.default_rng(2), VALIDATED - 0.01, 200)
    found = assess(
        labels, predictions, "accuracy", expected=VALIDATED, margin=0.05, alpha=ALPHA, random_state=12
    )
    assert float(np.mean(found.decayed)) <= ALPHA


def test_stable_periods_are_flagged_at_most_at_alpha():
    periods = 1000
    labels, predictions = _periods(np.random.default_rng(3), VALIDATED, periods)
    found = assess(labels, predictions, "accuracy", expected=VALIDATED, alpha=ALPHA, random_state=13)
    flagged = int(np.sum(found.decayed))
    # A correct rule exceeds the bound with probability <= 0.001; a rule with twice the
    # false-alarm rate stays within it only rarely (its power is printed and checked).
    bound = int(binom.ppf(0.999, periods, ALPHA))
    power_against_double = float(binom.sf(bound, periods, 2 * ALPHA))
    print(
        f"stable periods flagged: {flagged / periods:.1%} of {periods} (alpha {ALPHA:g}); bound {bound}; "
        f"a rule flagging at {2 * ALPHA:g} exceeds it with probability {power_against_double:.4f}"
    )
    assert power_against_double >= 0.99
    assert flagged <= bound
