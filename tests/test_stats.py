"""mlops_ci.stats against reference implementations: scikit-learn for the metrics (also
with sample weights, which is what a resample is), statsmodels for McNemar and Holm, scipy
for the signed-rank and t tests, and brute-force computations for DeLong and the
Hodges–Lehmann interval."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from mlops_ci import stats
from mlops_ci.stats import _engine
from mlops_ci.stats._prepare import prepare_terms


@pytest.fixture(scope="module")
def binary():
    """Two correlated probabilistic classifiers with string labels and tied scores."""
    rng = np.random.default_rng(1)
    n = 800
    y = rng.choice(np.array(["no", "yes"]), n, p=[0.7, 0.3])
    signal = rng.normal(0, 1, n) + 1.2 * (y == "yes")
    p_a = np.round(1 / (1 + np.exp(-(signal + rng.normal(0, 0.7, n) - 1))), 2)
    p_b = np.round(1 / (1 + np.exp(-(signal + rng.normal(0, 0.7, n) - 1))), 2)
    return {
        "y": y,
        "p_a": p_a,
        "p_b": p_b,
        "l_a": np.where(p_a > 0.5, "yes", "no"),
        "l_b": np.where(p_b > 0.5, "yes", "no"),
    }


SKLEARN_BINARY = {
    "accuracy": lambda y, lab, p, w: skm.accuracy_score(y, lab, sample_weight=w),
    "balanced-accuracy": lambda y, lab, p, w: skm.balanced_accuracy_score(y, lab, sample_weight=w),
    "precision": lambda y, lab, p, w: skm.precision_score(y, lab, pos_label="yes", sample_weight=w),
    "recall": lambda y, lab, p, w: skm.recall_score(y, lab, pos_label="yes", sample_weight=w),
    "f1": lambda y, lab, p, w: skm.f1_score(y, lab, pos_label="yes", sample_weight=w),
    "precision-macro": lambda y, lab, p, w: skm.precision_score(y, lab, average="macro", sample_weight=w),
    "recall-macro": lambda y, lab, p, w: skm.recall_score(y, lab, average="macro", sample_weight=w),
    "f1-macro": lambda y, lab, p, w: skm.f1_score(y, lab, average="macro", sample_weight=w),
    "roc-auc": lambda y, lab, p, w: skm.roc_auc_score(y == "yes", p, sample_weight=w),
    "log-loss": lambda y, lab, p, w: skm.log_loss(y, np.c_[1 - p, p], labels=["no", "yes"], sample_weight=w),
    "brier": lambda y, lab, p, w: skm.brier_score_loss(y, p, pos_label="yes", sample_weight=w),
}


@pytest.mark.parametrize("name", sorted(SKLEARN_BINARY))
def test_binary_metrics_match_sklearn(binary, name):
    metric = stats.get_metric(name, pos_label="yes")
    pred = binary["p_a"] if metric.input == "scores" else binary["l_a"]
    expected = SKLEARN_BINARY[name](binary["y"], binary["l_a"], binary["p_a"], None)
    assert metric(binary["y"], pred) == pytest.approx(expected, abs=1e-12)


def test_multiclass_and_regression_metrics_match_sklearn():
    rng = np.random.default_rng(2)
    n = 600
    y = rng.choice([0, 1, 2], n)
    proba = rng.dirichlet([1, 1, 1], n)
    proba[np.arange(n), y] += 0.6
    proba /= proba.sum(1, keepdims=True)
    labels = proba.argmax(1)
    assert stats.get_metric("roc-auc")(y, proba) == pytest.approx(
        skm.roc_auc_score(y, proba, multi_class="ovr")
    )
    assert stats.get_metric("log-loss")(y, proba) == pytest.approx(skm.log_loss(y, proba))
    assert stats.get_metric("brier")(y, proba) == pytest.approx(skm.brier_score_loss(y, proba))
    assert stats.get_metric("f1-macro")(y, labels) == pytest.approx(skm.f1_score(y, labels, average="macro"))
    assert stats.get_metric("balanced-accuracy")(y, labels) == pytest.approx(
        skm.balanced_accuracy_score(y, labels)
    )
    truth = rng.normal(10, 3, n)
    pred = truth + rng.normal(0, 1, n)
    assert stats.get_metric("mae")(truth, pred) == pytest.approx(skm.mean_absolute_error(truth, pred))
    assert stats.get_metric("rmse")(truth, pred) == pytest.approx(
        np.sqrt(skm.mean_squared_error(truth, pred))
    )
    assert stats.get_metric("r2")(truth, pred) == pytest.approx(skm.r2_score(truth, pred))
    assert stats.get_metric("mape")(truth, pred) == pytest.approx(
        skm.mean_absolute_percentage_error(truth, pred)
    )


def _weighted(metric_name, binary, weights):
    """Our vectorised resample evaluation for given row weights, through the engine."""
    metric = stats.get_metric(metric_name, pos_label="yes")
    pred = binary["p_a"] if metric.input == "scores" else binary["l_a"]
    prep, (encoded,) = prepare_terms(binary["y"], [(metric, "pred", pred)])
    if isinstance(metric, stats.metrics.RankMetric):
        problem = _engine._rank_problem(prep.y[:, 0] == prep.enc.pos, encoded[:, 0])
        return _engine._rank_exact_batch(weights, problem)
    features = metric.features(prep.y, encoded, prep.enc).reshape(len(weights[0]), -1)
    return metric.finish((weights @ features)[:, None, :], weights.sum(1)[:, None], prep.enc)[:, 0]


@pytest.mark.parametrize("name", sorted(SKLEARN_BINARY))
def test_resample_evaluation_equals_sklearn_with_sample_weights(binary, name):
    """A resample is a vector of row counts: our batched evaluation must equal scikit-learn
    called with those counts as sample weights."""
    rng = np.random.default_rng(3)
    weights = rng.multinomial(len(binary["y"]), np.full(len(binary["y"]), 1 / len(binary["y"])), size=4)
    ours = _weighted(name, binary, weights.astype(float))
    expected = [SKLEARN_BINARY[name](binary["y"], binary["l_a"], binary["p_a"], w) for w in weights]
    np.testing.assert_allclose(ours, expected, rtol=1e-10, atol=1e-12)


def test_cells_path_is_an_exact_row_bootstrap(binary):
    """Label metrics resample cell counts instead of rows: same distribution, so the
    standard errors agree (within Monte Carlo error) with accuracy computed per row."""
    labels = {"candidate": binary["l_a"], "baseline": binary["l_b"]}
    # The same accuracy as a per-row metric of 0/1 "scores" takes the row path.
    row_accuracy = stats.custom_metric(
        lambda y, p: ((y == "yes") == (p > 0.5)).astype(float),
        name="row-accuracy",
        higher_is_better=True,
        input="scores",
        per_row=True,
    )
    kinds = {k: {"labels": v, "scores": (v == "yes").astype(float)} for k, v in labels.items()}
    boot = stats.bootstrap_models(
        binary["y"], kinds, [row_accuracy, "accuracy"], n_resamples=4000, random_state=1
    )
    assert boot._outputs[("accuracy", "candidate")].path == "cells"
    assert boot._outputs[("row-accuracy", "candidate")].path == "rows"
    by_cells, by_rows = boot.compare("accuracy"), boot.compare("row-accuracy")
    assert by_cells.statistic == pytest.approx(by_rows.statistic)
    assert by_cells.standard_error == pytest.approx(by_rows.standard_error, rel=0.06)
    assert by_cells.confidence_interval.low == pytest.approx(by_rows.confidence_interval.low, abs=0.004)


def test_large_holdouts_use_independent_weights_with_the_same_spread():
    """Above POISSON_MIN_ROWS rows, independent weights (and the linear projection of ROC AUC)
    give the same standard errors as the exact multinomial path, and as DeLong for AUC."""
    rng = np.random.default_rng(4)
    n = 24_000
    y = (rng.random(n) < 0.3).astype(int)
    signal = rng.normal(0, 1, n) + 1.0 * y
    p_a = 1 / (1 + np.exp(-(signal + rng.normal(0, 0.8, n))))
    p_b = 1 / (1 + np.exp(-(signal + rng.normal(0, 0.8, n))))
    preds = {"candidate": {"scores": p_a}, "baseline": {"scores": p_b}}
    metrics = ["roc-auc", "log-loss"]
    independent = stats.bootstrap_models(y, preds, metrics, n_resamples=1500, random_state=2)
    from mlops_ci.stats._engine import Term, resample_terms

    prep, arrays = prepare_terms(
        y, [(stats.get_metric(m), "p", preds[k]["scores"]) for m in metrics for k in preds]
    )
    terms = [
        Term(stats.get_metric(m), a) for m, a in zip([m for m in metrics for _ in preds], arrays, strict=True)
    ]
    exact = resample_terms(
        prep, terms, n_resamples=1500, seed=np.random.SeedSequence(2), scheme="multinomial"
    )
    for i, metric in enumerate(metrics):
        se_independent = independent.compare(metric).standard_error
        se_exact = np.std(exact[2 * i].boot[:, 0] - exact[2 * i + 1].boot[:, 0], ddof=1)
        assert se_independent == pytest.approx(se_exact, rel=0.08), metric
    delong = stats.delong(y, p_a, p_b)
    se_delong = (delong.confidence_interval.high - delong.estimate) / 1.959964
    assert independent.compare("roc-auc").standard_error == pytest.approx(se_delong, rel=0.07)


def test_same_seed_same_result_and_thread_count_does_not_matter(binary):
    args = (binary["y"], binary["p_a"], binary["p_b"], "roc-auc")
    one = stats.paired_bootstrap(*args, random_state=7, workers=1)
    two = stats.paired_bootstrap(*args, random_state=7, workers=3)
    np.testing.assert_array_equal(one.bootstrap_distribution, two.bootstrap_distribution)
    other = stats.paired_bootstrap(*args, random_state=8)
    assert not np.array_equal(one.bootstrap_distribution, other.bootstrap_distribution)


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


def test_minimum_detectable_difference_formula():
    # z(0.975) + z(0.8) = 1.95996 + 0.84162
    assert stats.minimum_detectable_difference(0.01, alpha=0.05, power=0.8) == pytest.approx(
        0.0280158, rel=1e-5
    )
    # default power 1 - alpha: z(0.975) + z(0.95)
    assert stats.minimum_detectable_difference(0.01, alpha=0.05) == pytest.approx(0.0360481, rel=1e-5)
    assert stats.required_sample_size(0.01, standard_error=0.01, n=1000, power=0.8) == 7849
    with pytest.raises(ValueError, match="`power` must be in"):
        stats.minimum_detectable_difference(0.01, power=1.0)


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


def test_holm_matches_statsmodels():
    from statsmodels.stats.multitest import multipletests

    p = [0.01, 0.04, 0.03, 0.005, 0.2, float("nan")]
    ours = stats.holm_bonferroni(p, alpha=0.05)
    reject, adjusted, _, _ = multipletests(p[:-1], alpha=0.05, method="holm")
    assert ours.reject[:-1] == tuple(bool(r) for r in reject)
    np.testing.assert_allclose(ours.pvalues_adjusted[:-1], adjusted)
    assert ours.reject[-1] is False and np.isnan(ours.pvalues_adjusted[-1])
    assert ours.alphas[3] == pytest.approx(0.05 / 5)


def test_custom_metrics_per_row_and_aggregate(binary):
    cost = stats.custom_metric(
        lambda y, p: np.where((p == "no") & (y == "yes"), 5.0, np.where(p != y, 1.0, 0.0)),
        name="cost",
        higher_is_better=False,
        per_row=True,
    )
    expected = np.mean(
        np.where((binary["l_a"] == "no") & (binary["y"] == "yes"), 5.0, binary["l_a"] != binary["y"])
    )
    assert cost(binary["y"], binary["l_a"]) == pytest.approx(expected)
    mcc = stats.custom_metric(skm.matthews_corrcoef, name="mcc", higher_is_better=True)
    result = stats.paired_bootstrap(
        binary["y"], binary["l_a"], binary["l_b"], mcc, n_resamples=100, random_state=0
    )
    assert result.statistic == pytest.approx(
        skm.matthews_corrcoef(binary["y"], binary["l_a"]) - skm.matthews_corrcoef(binary["y"], binary["l_b"])
    )
    assert result.confidence_interval.low < result.statistic < result.confidence_interval.high


def test_progress_is_reported(binary):
    seen = []
    stats.paired_bootstrap(
        binary["y"],
        binary["p_a"],
        binary["p_b"],
        "roc-auc",
        n_resamples=3000,
        random_state=0,
        progress=lambda done, total: seen.append((done, total)),
    )
    assert seen[-1] == (3000, 3000) and len(seen) > 1
