"""The decision rules: mirrored lower-is-better metrics, non-inferiority on small
holdouts, Holm against statsmodels."""

from __future__ import annotations

import numpy as np
import pytest

from mlops_ci import stats


def test_lower_is_better_metrics_are_mirrored():
    """A candidate with a clearly higher log loss is a regression; a lower one is not."""
    rng = np.random.default_rng(5)
    n = 3000
    y = (rng.random(n) < 0.4).astype(int)
    good = np.clip(0.5 + 0.35 * (2 * y - 1) + rng.normal(0, 0.1, n), 0.01, 0.99)
    bad = np.clip(0.5 + 0.15 * (2 * y - 1) + rng.normal(0, 0.1, n), 0.01, 0.99)
    worse = stats.compare(y, bad, good, "log-loss", random_state=0)
    assert worse.statistic > 0 and worse.decision == "fail" and worse.reason.startswith("regression:")
    better = stats.compare(y, good, bad, "log-loss", rule="superiority", random_state=0)
    assert better.statistic < 0 and better.decision == "pass"
    ceiling = stats.check_threshold(y, good, "log-loss", rule="ceiling", threshold=0.5, random_state=0)
    assert ceiling.decision == "pass" and ceiling.confidence_interval.high <= 0.5


def test_non_inferiority_says_when_the_holdout_is_too_small():
    rng = np.random.default_rng(6)
    y = rng.integers(0, 2, 400)
    a = np.where(rng.random(400) < 0.85, y, 1 - y)
    b = np.where(rng.random(400) < 0.85, y, 1 - y)
    result = stats.compare(y, a, b, "accuracy", rule="non-inferiority", margin=0.01, random_state=0)
    assert result.decision == "fail"
    assert "too small to tell" in result.reason and "does not mean the candidate is worse" in result.reason
    assert any("the holdout is too small for a margin of 0.01" in w for w in result.warnings)
    assert result.mde > 0.01 and result.n_required > 400
    # the MDE formula and the rows needed
    assert result.mde == pytest.approx(stats.minimum_detectable_difference(result.standard_error, alpha=0.05))
    assert result.n_required == stats.required_sample_size(0.01, standard_error=result.standard_error, n=400)


def test_holm_matches_statsmodels():
    from statsmodels.stats.multitest import multipletests

    p = [0.01, 0.04, 0.03, 0.005, 0.2, float("nan")]
    ours = stats.holm_bonferroni(p, alpha=0.05)
    reject, adjusted, _, _ = multipletests(p[:-1], alpha=0.05, method="holm")
    assert ours.reject[:-1] == tuple(bool(r) for r in reject)
    np.testing.assert_allclose(ours.pvalues_adjusted[:-1], adjusted)
    assert ours.reject[-1] is False and np.isnan(ours.pvalues_adjusted[-1])
    assert ours.alphas[3] == pytest.approx(0.05 / 5)
