"""The metrics against scikit-learn, also with sample weights (which is what a resample
is), and custom metrics."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from mlops_ci import stats
from mlops_ci.stats import _engine
from mlops_ci.stats._prepare import prepare_terms

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
