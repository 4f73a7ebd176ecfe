"""Bootstrap intervals and p-values, argument checks and degenerate data."""

from __future__ import annotations

import numpy as np
import pytest

from mlops_ci import stats


def test_bca_and_percentile_intervals_and_pvalues_agree_with_each_other(binary):
    args = (binary["y"], binary["p_a"], binary["p_b"], "log-loss")
    for method in ("bca", "percentile"):
        b = stats.paired_bootstrap(*args, random_state=0, method=method)
        low, high = b.confidence_interval
        assert low < b.statistic < high
        # The interval bound and the p-value are two views of one distribution.
        assert b.pvalue_at(low, alternative="greater") == pytest.approx(0.025, abs=0.002)
        assert b.pvalue_at(high, alternative="less") == pytest.approx(0.025, abs=0.002)
        assert b.pvalue == pytest.approx(b.pvalue_at(0.0))
        wide = b.interval(0.99)
        assert wide.low < low and wide.high > high
    bca = stats.paired_bootstrap(*args, random_state=0)
    percentile = stats.paired_bootstrap(*args, random_state=0, method="percentile")
    assert bca.confidence_interval != percentile.confidence_interval
    assert bca.confidence_interval.low == pytest.approx(
        percentile.confidence_interval.low, abs=bca.standard_error / 2
    )


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda d: stats.paired_bootstrap(d["y"], d["l_a"], d["l_b"], "accuracy", n_resamples=-3),
            "`n_resamples` must be a positive integer, got -3",
        ),
        (
            lambda d: stats.paired_bootstrap(d["y"], d["l_a"], d["l_b"], "accuracy", confidence_level=1.5),
            r"`confidence_level` must be in \(0, 1\)",
        ),
        (
            lambda d: stats.paired_bootstrap(d["y"], d["l_a"], d["l_b"], "accuracy", method="bcaa"),
            "`method` must be one of",
        ),
        (
            lambda d: stats.paired_bootstrap(d["y"], d["l_a"], d["l_b"][:-1], "accuracy"),
            "`baseline` has 799 rows but `y_true` has 800",
        ),
        (
            lambda d: stats.paired_bootstrap(d["y"], d["l_a"], d["l_b"], "acuracy"),
            "`metric` 'acuracy' is not a built-in metric",
        ),
        (
            lambda d: stats.paired_bootstrap(d["y"], d["l_a"], d["l_b"], "accuracy", random_state=-1),
            "`random_state` must be a non-negative",
        ),
        (
            lambda d: stats.compare(d["y"], d["l_a"], d["l_b"], "accuracy", rule="non-inferiority"),
            "`margin` is required for non-inferiority",
        ),
        (
            lambda d: stats.compare(d["y"], d["l_a"], d["l_b"], "accuracy", rule="no-regresion"),
            "`rule` must be one of",
        ),
        (
            lambda d: stats.compare(d["y"], d["l_a"], d["l_b"], "accuracy", margin=-0.1),
            "`margin` must be at least 0",
        ),
        (
            lambda d: stats.check_threshold(d["y"], d["l_a"], "accuracy", threshold=float("nan")),
            "`threshold` must be finite",
        ),
        (lambda d: stats.holm_bonferroni([0.1, 1.2]), r"`pvalues` must lie in \[0, 1\]"),
        (
            lambda d: stats.paired_bootstrap(d["y"], d["p_a"], d["p_b"] * np.nan, "roc-auc"),
            "`baseline` contains 800 NaN",
        ),
    ],
)
def test_argument_errors_name_the_parameter(binary, call, message):
    with pytest.raises((ValueError, TypeError), match=message):
        call(binary)


def test_type_errors_for_wrong_types(binary):
    with pytest.raises(TypeError, match="`n_resamples` must be an integer"):
        stats.paired_bootstrap(binary["y"], binary["l_a"], binary["l_b"], "accuracy", n_resamples=2.5)
    with pytest.raises(TypeError, match="`candidate` holds numbers but `y_true` holds text"):
        stats.paired_bootstrap(binary["y"], (binary["l_a"] == "yes").astype(int), binary["l_b"], "accuracy")


def test_degenerate_data_is_a_clear_skip_not_a_nan_verdict():
    y = np.array([1] * 50)
    scores = np.linspace(0, 1, 50)
    result = stats.compare(y, scores, scores[::-1], "roc-auc", random_state=0)
    assert result.decision == "skip"
    assert (
        "roc-auc is undefined on these rows for the candidate and the baseline (it needs rows of both classes)"
        in result.reason
    )
    # constant predictions: precision undefined for a model that never predicts positive
    y2 = np.r_[np.zeros(30), np.ones(30)].astype(int)
    never = np.zeros(60, dtype=int)
    result = stats.compare(y2, never, y2, "precision", random_state=0)
    assert result.decision == "skip" and "for the candidate (no row is predicted positive)" in result.reason
    # identical predictions: a zero-width interval, and no-regression passes
    same = stats.compare(y2, y2, y2, "accuracy", random_state=0)
    assert same.decision == "pass" and same.confidence_interval == (0.0, 0.0)
    # empty input is an argument error
    with pytest.raises(ValueError, match="`y_true` is empty"):
        stats.compare([], [], [], "accuracy")
    # too few rows of a class in the resamples: skip rather than an interval from few resamples
    tiny = np.r_[np.zeros(40), np.ones(2)].astype(int)
    result = stats.compare(tiny, np.linspace(0, 1, 42), np.linspace(1, 0, 42), "roc-auc", random_state=0)
    assert result.decision == "skip" and "undefined in" in result.reason
