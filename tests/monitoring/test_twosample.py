"""The drift statistics against scipy and statsmodels, and their edge cases."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from mlops_ci.monitoring.twosample import OTHER, benjamini_hochberg, compare_feature, numeric_psi, pool_rare


def test_ks_matches_scipy_and_reports_effect_sizes():
    rng = np.random.default_rng(1)
    ref, cur = rng.normal(0, 2, 3000), rng.normal(1, 2, 2000)
    result = compare_feature("x", ref, cur, kind="numeric")
    expected = stats.ks_2samp(ref, cur)
    assert result.test == "ks" and result.statistic == pytest.approx(expected.statistic)
    assert result.pvalue == pytest.approx(expected.pvalue)
    # A shift of half a standard deviation: Wasserstein about 0.5 sd, PSI well above 0.1.
    assert result.wasserstein == pytest.approx(0.5, abs=0.08)
    assert result.psi > 0.15


def test_missing_values_are_left_out_and_reported():
    ref = np.array([1.0, 2.0, np.nan, 4.0] * 50)
    cur = np.array([1.0, np.nan, np.nan, 4.0] * 50)
    result = compare_feature("x", ref, cur, kind="numeric")
    assert result.reference_n == 150 and result.current_n == 100
    assert result.reference_missing == pytest.approx(0.25) and result.current_missing == pytest.approx(0.5)


def test_chi_squared_matches_scipy_with_unseen_categories():
    ref = np.array(["a"] * 500 + ["b"] * 300 + ["c"] * 200, dtype=object)
    cur = np.array(["a"] * 400 + ["b"] * 300 + ["c"] * 200 + ["new"] * 100, dtype=object)
    result = compare_feature("x", ref, cur, kind="categorical")
    table = np.array([[500, 300, 200, 0], [400, 300, 200, 100]])
    statistic, pvalue, _, _ = stats.chi2_contingency(table, correction=False)
    assert result.statistic == pytest.approx(statistic) and result.pvalue == pytest.approx(pvalue)
    assert result.unseen_categories == ("new",) and result.unseen_share == pytest.approx(0.1)
    assert result.psi > 0.5  # a 10 % category out of nowhere is a large shift


def test_rare_categories_are_pooled_for_the_approximation():
    table = np.array([[500, 300, 4, 3], [480, 310, 3, 5]], dtype=float)
    pooled, labels = pool_rare(table, ["a", "b", "c", "d"])
    assert labels == ["a", "b", OTHER] and pooled[:, 2].tolist() == [7, 8]
    # A pooled column still too small joins the smallest kept category.
    pooled, labels = pool_rare(np.array([[500, 300, 1], [480, 310, 1]], dtype=float), ["a", "b", "c"])
    assert labels == ["a", f"b+{OTHER}"] and pooled.sum() == 1592


def test_one_category_on_both_sides_is_no_drift():
    result = compare_feature("x", np.array(["a"] * 100), np.array(["a"] * 80), kind="categorical")
    assert result.pvalue == 1.0 and result.psi == pytest.approx(0.0)


def test_too_little_data_is_skipped_with_a_reason():
    result = compare_feature("x", np.arange(100.0), np.arange(5.0), kind="numeric", min_rows=30)
    assert result.pvalue is None and "fewer than 30 values" in result.skipped


def test_constant_reference_and_bad_arguments():
    moved = compare_feature("x", np.zeros(100), np.ones(100), kind="numeric")
    assert moved.wasserstein == float("inf") and moved.pvalue < 1e-10
    same = compare_feature("x", np.zeros(100), np.zeros(100), kind="numeric")
    assert same.wasserstein == 0.0 and same.psi == pytest.approx(0.0)
    with pytest.raises(ValueError, match="`kind` must be"):
        compare_feature("x", np.zeros(3), np.zeros(3), kind="text")


def test_psi_of_identical_samples_is_zero_and_grows_with_the_shift():
    rng = np.random.default_rng(2)
    ref = rng.normal(size=20000)
    assert numeric_psi(ref, ref) == pytest.approx(0.0)
    assert numeric_psi(ref, ref + 0.1) < numeric_psi(ref, ref + 0.3) < numeric_psi(ref, ref + 1)


def test_benjamini_hochberg_matches_statsmodels():
    from statsmodels.stats.multitest import multipletests

    rng = np.random.default_rng(3)
    for _ in range(20):
        p = np.concatenate([rng.uniform(size=15), rng.uniform(0, 0.01, size=5)])
        rejected, adjusted, _, _ = multipletests(p, alpha=0.05, method="fdr_bh")
        ours = benjamini_hochberg(p, alpha=0.05)
        assert np.allclose(ours.adjusted, adjusted) and list(ours.rejected) == list(rejected)
    assert benjamini_hochberg([], alpha=0.05).adjusted == ()
    with pytest.raises(ValueError, match="`alpha`"):
        benjamini_hochberg([0.5], alpha=1.5)
    with pytest.raises(ValueError, match="`pvalues`"):
        benjamini_hochberg([1.5])
