"""The interleaved champion comparison on real ONNX models: equal models are never
flagged (repeated), a much larger forest always is."""

from __future__ import annotations

from mlops_ci.profiling.payload import onnx_feeds

# Latency on a shared 2-core machine is noisy, so these tests are built not to depend on it:
# both models are measured in 16 interleaved rounds (a burst of load hits both sides), the
# decision is the paired-round bootstrap interval on the ratio of p95s, and the margins are
# wide on both sides. On 64-row calls the forest measures about x4 the logistic regression
# (lower bounds above x3 here, load average 3.5); equal models measure about x1 (upper
# bounds below x1.15). The threshold x1.5 sits far from both, so neither outcome flips
# under load, and each comparison takes about a second.
THRESHOLD = 1.5
BATCH = 64


def compare(candidate_dir, champion_dir, seed=0):
    from mlops_ci.profiling.compare import compare_latency, inprocess_sampler
    from mlops_ci.profiling.inprocess import load_model

    models = [load_model(d) for d in (candidate_dir, champion_dir)]
    samplers = [inprocess_sampler(m, onnx_feeds(m.settings, BATCH, decoder=m.decoder)) for m in models]
    return compare_latency(
        *samplers,
        mode="in-process",
        setup=f"batch {BATCH}",
        rounds=16,
        duration_s=1.0,
        threshold=THRESHOLD,
        confidence_level=0.95,
        n_resamples=1000,
        seed=seed,
    )


def test_an_equal_candidate_is_never_flagged(census_model_dir, other_lr_dir):
    """The same comparison four times on a shared, noisy machine: never flagged."""
    results = [compare(other_lr_dir, census_model_dir, seed=i).result for i in range(4)]
    assert not any(r.slower for r in results), [(r.statistic, r.confidence_interval) for r in results]
    assert all(r.confidence_interval.low < 1.2 for r in results)


def test_a_much_larger_forest_is_always_flagged(census_model_dir, slow_forest_dir):
    """Three times, each a fresh measurement: flagged every time, by a wide margin."""
    for seed in range(3):
        comparison = compare(slow_forest_dir, census_model_dir, seed=seed)
        result = comparison.result
        assert result.slower and result.statistic > 2.5, (result.statistic, result.confidence_interval)
        assert result.pvalue < 0.025 and comparison.candidate.p95_ms > comparison.champion.p95_ms
        assert result.rounds == 16 and comparison.block_calls >= 5
