"""Drift detection simulated: without drift the corrected decision raises a false alarm
at most about alpha of the time; a shifted feature is detected with high power."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from mlops_ci.monitoring.detect import detect
from tests.calibration import check_rate

NUMERIC, CATEGORICAL = 6, 4
CATEGORIES = np.array(["a", "b", "c", "d", "e"])
SHARES = np.array([0.4, 0.25, 0.2, 0.1, 0.05])
ALPHA = 0.05


def sample(rng, n: int, *, shift: float = 0.0, share_of_a: float | None = None) -> pd.DataFrame:
    data = {}
    for i in range(NUMERIC):
        values = rng.normal(size=n) if i % 2 else rng.gamma(2.0, size=n)
        data[f"n{i}"] = values + (shift if i == 0 else 0.0)
    for i in range(CATEGORICAL):
        shares = SHARES
        if i == 0 and share_of_a is not None:
            rest = SHARES[1:] / SHARES[1:].sum() * (1 - share_of_a)
            shares = np.concatenate([[share_of_a], rest])
        data[f"c{i}"] = rng.choice(CATEGORIES, size=n, p=shares)
    return pd.DataFrame(data)


def test_false_alarms_without_drift_stay_at_alpha_after_correction():
    rng = np.random.default_rng(20251125)
    # The design rate is alpha (Holm keeps the chance of any false alarm among the ten
    # features at most alpha). 800 runs: bound 7.5 %, power 0.991 against a doubled rate
    # (10 %), where alpha + 3 SE over 200 runs passed a 10 % detector about half the time.
    trials = 800
    corrected = uncorrected = 0
    columns = [f"n{i}" for i in range(NUMERIC)] + [f"c{i}" for i in range(CATEGORICAL)]
    for _ in range(trials):
        reference, current = sample(rng, 1000), sample(rng, 500)
        # Thresholds 0: the statistics alone decide (effect sizes would only lower the rate).
        report = detect(reference, current, columns=columns, alpha=ALPHA, psi=0.0, wasserstein=0.0)
        corrected += bool(report.drifted_features)
        uncorrected += any(v.test.pvalue <= ALPHA for v in report.features)
    check_rate("drift, no drift, false alarms after Holm", corrected, trials, design=ALPHA, broken=2 * ALPHA)
    # Without the correction ten features alarm far more often (1 - 0.95^10 is about 0.4;
    # lower here because KS on a sample is conservative).
    assert uncorrected / trials > 0.2, uncorrected


def test_a_shifted_feature_is_detected_with_high_power():
    rng = np.random.default_rng(7)
    trials = 60
    numeric_hits = categorical_hits = others = 0
    columns = [f"n{i}" for i in range(NUMERIC)] + [f"c{i}" for i in range(CATEGORICAL)]
    for _ in range(trials):
        reference = sample(rng, 1500)
        # Default thresholds (PSI 0.1, Wasserstein 0.3 sd): half a standard deviation of
        # n0, and category "a" of c0 going from 40 % to 60 % (PSI about 0.16).
        current = sample(rng, 800, shift=0.5 * math.sqrt(2.0), share_of_a=0.60)
        report = detect(reference, current, columns=columns, alpha=ALPHA)
        numeric_hits += "n0" in report.drifted_features
        categorical_hits += "c0" in report.drifted_features
        others += len(set(report.drifted_features) - {"n0", "c0"})
    assert numeric_hits / trials >= 0.95 and categorical_hits / trials >= 0.95, (
        numeric_hits,
        categorical_hits,
    )
    assert others <= 2
