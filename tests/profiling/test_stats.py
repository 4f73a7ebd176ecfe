"""The ratio-of-p95 bootstrap on known distributions, and latency summaries."""

from __future__ import annotations

import numpy as np
import pytest

from mlops_ci.profiling.stats import quantile_ratio_test, summarize
from tests.profiling.samples import lognormal_blocks


def test_a_ratio_above_the_threshold_is_slower_and_an_equal_one_is_not():
    rng = np.random.default_rng(1)
    base = lognormal_blocks(rng, 20, 100)
    slower = quantile_ratio_test(lognormal_blocks(rng, 20, 100, scale=1.6), base, threshold=1.2)
    assert slower.slower and slower.confidence_interval.low > 1.2 and slower.pvalue < 0.025
    assert 1.4 < slower.statistic < 1.8
    equal = quantile_ratio_test(lognormal_blocks(rng, 20, 100), base, threshold=1.2)
    assert not equal.slower and equal.confidence_interval.low < 1.0 < equal.confidence_interval.high
    assert equal.pvalue > 0.5
    faster = quantile_ratio_test(lognormal_blocks(rng, 20, 100, scale=0.5), base, threshold=1.2)
    assert faster.faster and not faster.slower


def test_pairing_keeps_shared_noise_from_deciding():
    """Rounds where the machine was busy slow both sides; resampling rounds together keeps
    the interval honest (it covers 1 for equal models) whatever the bursts."""
    rng = np.random.default_rng(7)
    shared = np.where(rng.random(20) < 0.3, 4.0, 1.0)
    misses = 0
    for seed in range(10):
        local = np.random.default_rng(seed)
        result = quantile_ratio_test(
            lognormal_blocks(local, 20, 80, shared=shared),
            lognormal_blocks(local, 20, 80, shared=shared),
            threshold=1.2,
            random_state=seed,
        )
        misses += result.slower
    assert misses == 0


def test_bad_arguments_name_the_parameter():
    blocks = [np.full(5, 1e-3)] * 3
    with pytest.raises(ValueError, match="`quantile`"):
        quantile_ratio_test(blocks, blocks, quantile=1.5)
    with pytest.raises(ValueError, match="`n_resamples`"):
        quantile_ratio_test(blocks, blocks, n_resamples=10)
    with pytest.raises(ValueError, match="same number of rounds"):
        quantile_ratio_test(blocks, blocks[:2])
    with pytest.raises(ValueError, match="positive, finite"):
        quantile_ratio_test([np.array([1e-3, -1.0])] * 3, blocks)
    with pytest.raises(ValueError, match="`samples_s`"):
        summarize([])


def test_summary_is_in_milliseconds():
    summary = summarize(np.linspace(0.001, 0.1, 1000))
    assert summary.n == 1000 and abs(summary.p50_ms - 50.5) < 0.1 and abs(summary.max_ms - 100) < 1e-9
