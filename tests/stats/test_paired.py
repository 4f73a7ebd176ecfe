"""Paired tests against reference implementations: statsmodels for McNemar, scipy for
the signed-rank and t tests, a brute-force computation for DeLong and Hodges–Lehmann."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from mlops_ci import stats


def test_mcnemar_matches_statsmodels_exact():
    from statsmodels.stats.contingency_tables import mcnemar as sm_mcnemar

    rng = np.random.default_rng(7)
    for n, flip in ((30, 0.2), (200, 0.1), (2000, 0.05), (5000, 0.02)):
        y = rng.integers(0, 2, n)
        a = np.where(rng.random(n) < 0.8, y, 1 - y)
        b = np.where(rng.random(n) < flip, 1 - a, a)
        ours = stats.mcnemar(y, a, b)
        ra, rb = a == y, b == y
        table = [[np.sum(ra & rb), np.sum(ra & ~rb)], [np.sum(~ra & rb), np.sum(~ra & ~rb)]]
        ref = sm_mcnemar(table, exact=True)
        assert ours.pvalue == pytest.approx(ref.pvalue, rel=1e-12)
        assert ours.statistic == ref.statistic
        assert ours.estimate == pytest.approx((np.sum(ra & ~rb) - np.sum(~ra & rb)) / n)
        assert ours.confidence_interval.low <= ours.estimate <= ours.confidence_interval.high


def _delong_brute_force(y, a, b):
    """DeLong et al. (1988) from the Mann–Whitney kernel over every (positive, negative)
    pair: O(m * n), independent of the midrank algorithm."""
    pos, neg = y == 1, y == 0
    comps = []
    for s in (a, b):
        psi = (s[pos][:, None] > s[neg][None, :]) + 0.5 * (s[pos][:, None] == s[neg][None, :])
        comps.append((psi.mean(), psi.mean(axis=1), psi.mean(axis=0)))
    (auc_a, v10_a, v01_a), (auc_b, v10_b, v01_b) = comps
    m, k = pos.sum(), neg.sum()
    s10 = np.cov(np.vstack([v10_a, v10_b]))
    s01 = np.cov(np.vstack([v01_a, v01_b]))
    cov = s10 / m + s01 / k
    var = cov[0, 0] + cov[1, 1] - 2 * cov[0, 1]
    return auc_a - auc_b, var


def test_delong_agrees_with_a_brute_force_computation():
    from scipy.stats import norm

    rng = np.random.default_rng(8)
    for n, digits in ((60, 1), (300, 2), (1200, 6)):
        y = (rng.random(n) < 0.35).astype(int)
        a = np.round(rng.normal(0, 1, n) + 1.0 * y, digits)
        b = np.round(0.6 * a + rng.normal(0, 0.8, n) + 0.3 * y, digits)
        result = stats.delong(y, a, b)
        diff, var = _delong_brute_force(y, a, b)
        assert result.estimate == pytest.approx(diff, abs=1e-12)
        assert result.details["variance"] == pytest.approx(var, rel=1e-10)
        assert result.pvalue == pytest.approx(2 * norm.sf(abs(diff) / np.sqrt(var)), rel=1e-9)
        assert result.details["auc_candidate"] == pytest.approx(skm.roc_auc_score(y, a))


def test_wilcoxon_and_paired_t_on_per_row_losses():
    from scipy import stats as sps

    rng = np.random.default_rng(9)
    truth = rng.normal(20, 4, 300)
    a, b = truth + rng.normal(0, 1.0, 300), truth + rng.normal(0, 1.2, 300)
    loss_a = stats.per_row_losses(truth, a, "mae")
    loss_b = stats.per_row_losses(truth, b, "mae")
    np.testing.assert_allclose(loss_a, np.abs(truth - a))
    w = stats.wilcoxon_signed_rank(loss_a, loss_b)
    ref = sps.wilcoxon(loss_a - loss_b)
    assert w.pvalue == pytest.approx(ref.pvalue) and w.statistic == pytest.approx(ref.statistic)
    # Hodges–Lehmann: median of all Walsh averages, computed by brute force
    d = loss_a - loss_b
    i, j = np.triu_indices(len(d))
    walsh = np.sort((d[i] + d[j]) / 2)
    assert w.estimate == pytest.approx(np.median(walsh), abs=1e-9)
    k = int(
        np.floor(
            len(d) * (len(d) + 1) / 4 - 1.959964 * np.sqrt(len(d) * (len(d) + 1) * (2 * len(d) + 1) / 24)
        )
    )
    assert w.confidence_interval.low == pytest.approx(walsh[k - 1], abs=1e-9)
    assert w.confidence_interval.high == pytest.approx(walsh[len(walsh) - k], abs=1e-9)
    t = stats.paired_t(loss_a, loss_b)
    ref_t = sps.ttest_rel(loss_a, loss_b)
    assert t.pvalue == pytest.approx(ref_t.pvalue) and t.estimate == pytest.approx(d.mean())
    same = stats.wilcoxon_signed_rank(loss_a, loss_a)
    assert same.decision == "retain" and same.pvalue == 1.0
