"""The resampling engine: the cells path is an exact row bootstrap, independent weights
for large holdouts give the same spread, seeds and not thread counts decide, progress."""

from __future__ import annotations

import numpy as np
import pytest

from mlops_ci import stats
from mlops_ci.stats._prepare import prepare_terms


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


def test_the_engine_tells_metrics_apart_by_their_kind(binary):
    """The engine does not import the metric classes; each class declares how it is computed."""
    from mlops_ci.stats._engine import Term, resample_terms
    from mlops_ci.stats.metrics import Metric

    assert [stats.get_metric(m).kind for m in ("accuracy", "roc-auc")] == ["linear", "rank"]
    assert stats.custom_metric(lambda y, p: 1.0, name="one", higher_is_better=True).kind == "aggregate"
    bare = Metric("bare", higher_is_better=True, input="labels", task="classification")
    prep, arrays = prepare_terms(binary["y"], [(bare, "candidate", binary["l_a"])])
    with pytest.raises(TypeError, match="`metric` 'bare' has an unknown kind ''"):
        resample_terms(prep, [Term(bare, arrays[0])], n_resamples=10, seed=np.random.SeedSequence(0))
