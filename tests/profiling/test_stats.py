"""mlops_ci.profiling on real pieces: the ratio-of-p95 bootstrap on known distributions, the
recommendation rules, both load generators against a real server subprocess, and the
interleaved champion comparison on real ONNX models (equal: never flagged, repeated;
a much larger forest: flagged)."""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest

from mlops_ci.profiling.loadgen import AsyncioGenerator, LoadResult, WrkGenerator, find_generator
from mlops_ci.profiling.payload import Request, onnx_feeds, v2_request
from mlops_ci.profiling.recommend import (
    Objective,
    cpu_quantity,
    memory_quantity,
    parse_cpus,
    parse_memory,
    recommend,
)
from mlops_ci.profiling.stats import quantile_ratio_test, summarize
from mlops_ci.profiling.sweep import E2EPoint, MemoryProbe, Sweep
from tests.helpers import free_port, wait_http
from tests.model_fixtures import serving_command

MIB = 2**20


# -- the statistics ---------------------------------------------------------------------------


def lognormal_blocks(rng, rounds, size, scale=1.0, shared=None):
    """Latency-like samples (~0.1 ms, right-skewed); ``shared`` multiplies round r of
    every side alike (a noisy neighbour that slows both models during that round)."""
    blocks = []
    for r in range(rounds):
        factor = shared[r] if shared is not None else 1.0
        blocks.append(rng.lognormal(np.log(1e-4), 0.35, size) * scale * factor)
    return blocks


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


def test_the_policy_makes_a_slower_candidate_block_or_warn():
    from mlops_ci.profiling.compare import Comparison
    from mlops_ci.profiling.report import ProfileReport
    from mlops_ci.steps.profile_result import latency_check

    rng = np.random.default_rng(3)
    base = lognormal_blocks(rng, 12, 60)
    slower = lognormal_blocks(rng, 12, 60, scale=2.0)
    result = quantile_ratio_test(slower, base, threshold=1.2)
    comparison = Comparison(
        "in-process",
        result,
        summarize(np.concatenate(slower)),
        summarize(np.concatenate(base)),
        60,
        1.0,
        "batch 1",
    )
    report = ProfileReport(
        model={}, objective=Objective(slo_p99_ms=10, target_rps=None), comparison=comparison
    )
    report.champion = {"version": "4"}
    blocked, warned = latency_check(report, "block"), latency_check(report, "warn")
    assert (blocked.status, blocked.blocking) == ("failed", True)
    assert (warned.status, warned.blocking) == ("warning", False)
    assert blocked.details["kind"] == "latency" and blocked.details["champion_version"] == "4"
    assert blocked.interval == (result.confidence_interval.low, result.confidence_interval.high)
    assert blocked.threshold == 1.2 and "slower" in blocked.message
    equal = quantile_ratio_test(lognormal_blocks(rng, 12, 60), base, threshold=1.2)
    report.comparison = Comparison(
        "in-process", equal, comparison.candidate, comparison.champion, 60, 1.0, "b"
    )
    assert latency_check(report, "block").status == "passed"
    report.comparison, report.comparison_note = None, "not compared (latency-regression: off)"
    off = latency_check(report, "off")
    assert off.status == "skipped" and not off.blocking and "off" in off.message


# -- the recommendation -----------------------------------------------------------------------


def point(cpus, concurrency, rps, p99, *, errors=0.0, cores=None, rss=80 * MIB):
    requests = int(rps * 5)
    failed = int(requests * errors)
    load = LoadResult(
        "wrk", concurrency, 5.0, requests, failed, {"http non-2xx": failed} if failed else {},
        rps, p99 / 4, p99 / 3, p99 / 2, p99 / 1.5, p99, p99 * 2,
    )  # fmt: skip
    return E2EPoint(cpus, concurrency, load, cores if cores is not None else (cpus or 1.0) * 0.9, rss)


def test_the_limit_with_the_best_throughput_per_core_that_meets_the_objective_is_chosen():
    sweep = Sweep("container", "wrk")
    sweep.points = [
        point(0.5, 1, 900, 3), point(0.5, 4, 1000, 45), point(0.5, 16, 1010, 90),
        point(1.0, 1, 1500, 2), point(1.0, 4, 2000, 6), point(1.0, 16, 2100, 30),
        point(2.0, 1, 1600, 2), point(2.0, 4, 2200, 5), point(2.0, 16, 2300, 20),
    ]  # fmt: skip
    sweep.memory_probes = [
        MemoryProbe(64 * MIB, False, True, "OOM-killed under load"),
        MemoryProbe(96 * MIB, True, False, "served", rss_max_bytes=85 * MIB),
        MemoryProbe(1024 * MIB, True, False, "served", rss_max_bytes=86 * MIB),
    ]
    rec = recommend(sweep, Objective(slo_p99_ms=50, target_rps=5000))
    # 0.5 CPU: 2,000 req/s per core; 1 CPU: 2,100; 2 CPUs: 1,150. 0.5 and 1 are within 10%:
    # the larger limit wins.
    assert rec.slo_met and rec.cpus == 1.0 and rec.cpu_limit == "1"
    assert rec.throughput_rps == 2100 and rec.p99_ms == 30
    assert rec.cpu_request == "900m"  # 0.9 cores used at that point
    assert rec.replicas == 4  # ceil(5000 / (2100 * 0.7))
    assert rec.memory_request == "96Mi"  # peak 86 MiB, rounded up to 16Mi
    assert rec.memory_limit == "128Mi"  # max(96Mi, 86 MiB) * 1.25 = 120 MiB -> 128Mi
    assert rec.target_met and not rec.problems


def test_a_tighter_objective_moves_the_operating_point():
    sweep = Sweep("container", "wrk")
    sweep.points = [point(1.0, 1, 1500, 2), point(1.0, 4, 2000, 6), point(1.0, 16, 2100, 30)]
    rec = recommend(sweep, Objective(slo_p99_ms=10, target_rps=None))
    assert rec.throughput_rps == 2000 and rec.replicas == 1
    assert any("no target-rps" in reason for reason in rec.reasons)


def test_an_objective_no_point_meets_is_reported_with_the_best_latency_seen():
    sweep = Sweep("serve", "python")
    sweep.points = [point(None, 1, 300, 12.5, cores=0.4), point(None, 4, 320, 40, cores=0.5)]
    rec = recommend(sweep, Objective(slo_p99_ms=5, target_rps=100))
    assert not rec.slo_met and not rec.target_met and rec.throughput_rps is None
    assert "cannot be met" in rec.problems[0] and "12.50 ms" in rec.problems[0]
    assert "relax profile.slo-p99-ms" in rec.problems[0]


def test_failed_requests_do_not_count_as_capacity():
    sweep = Sweep("serve", "wrk")
    sweep.points = [point(None, 1, 1000, 2, cores=0.5), point(None, 4, 3000, 3, errors=0.2, cores=0.9)]
    rec = recommend(sweep, Objective(slo_p99_ms=50, target_rps=None))
    assert rec.throughput_rps == 1000
    assert rec.cpu_limit == "500m" and rec.cpu_request == "500m"  # measured use, no limit applied


def test_a_target_beyond_max_replicas_is_a_problem():
    sweep = Sweep("container", "wrk")
    sweep.points = [point(1.0, 4, 100, 5)]
    rec = recommend(sweep, Objective(slo_p99_ms=50, target_rps=10_000, max_replicas=10))
    assert not rec.target_met and rec.replicas == 10
    assert "needs 143 replicas, more than max-replicas 10" in rec.problems[0]


def test_kubernetes_quantities():
    assert cpu_quantity(0.5, step_m=1) == "500m" and cpu_quantity(2, step_m=1) == "2"
    assert cpu_quantity(0.63, step_m=100) == "700m" and cpu_quantity(0.001, step_m=50) == "50m"
    assert memory_quantity(130 * MIB) == "144Mi" and memory_quantity(1024 * MIB) == "1Gi"
    assert memory_quantity(1) == "32Mi"
    assert parse_memory("256Mi") == 256 * MIB and parse_memory("1Gi") == 2**30 and parse_memory("500M") == 5e8
    assert parse_cpus("500m") == 0.5 and parse_cpus("2") == 2.0
    for bad in ("lots", "-1Gi", "0"):
        with pytest.raises(ValueError, match="memory quantity"):
            parse_memory(bad)
    with pytest.raises(ValueError, match="CPU quantity"):
        parse_cpus("fast")


def test_objective_arguments_are_checked():
    with pytest.raises(ValueError, match="`utilization`"):
        Objective(slo_p99_ms=10, target_rps=None, utilization=1.5)
    with pytest.raises(ValueError, match="`min_replicas`"):
        Objective(slo_p99_ms=10, target_rps=None, min_replicas=5, max_replicas=2)


# -- requests and load generators against a real server ------------------------------------------


def test_requests_come_from_the_input_example(census_model_dir):
    from mlops_ci.serving.settings import load_settings

    settings = load_settings(census_model_dir)
    request = v2_request(settings, 7)
    body = json.loads(request.body)
    assert request.path == "/v2/models/census-income/infer"
    assert [t["name"] for t in body["inputs"]] == [c.name for c in settings.columns]
    assert all(t["shape"] == [7, 1] and len(t["data"]) == 7 for t in body["inputs"])
    feeds = onnx_feeds(settings, 512)
    assert {array.shape[0] for array in feeds.values()} == {512}


@pytest.fixture(scope="module")
def census_server(census_model_dir, tmp_path_factory):
    port = free_port()
    log = tmp_path_factory.mktemp("server") / "server.log"
    with log.open("wb") as handle:
        process = subprocess.Popen(
            serving_command(census_model_dir, port), stdout=handle, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(url + "/v2/health/ready", timeout_s=60, process=process)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def generators():
    found = find_generator("auto")
    out = [AsyncioGenerator()]
    if isinstance(found, WrkGenerator):
        out.append(found)
    return out


@pytest.mark.parametrize("generator", generators(), ids=lambda g: g.name)
def test_generators_measure_a_real_server_and_count_errors(generator, census_server, census_model_dir):
    from mlops_ci.serving.settings import load_settings

    request = v2_request(load_settings(census_model_dir))
    good = generator.run(census_server, request, concurrency=4, duration_s=1.0)
    assert good.requests > 50 and good.errors == 0 and good.rps > 50
    assert 0 < good.p50_ms <= good.p99_ms <= good.max_ms
    # A request the server refuses (unknown model: 404) is an error, not throughput.
    wrong = generator.run(
        census_server, Request("POST", "/v2/models/nope/infer", request.body), concurrency=2, duration_s=1.0
    )
    assert wrong.requests > 0 and wrong.error_rate == 1.0 and wrong.rps == 0
    ceiling = generator.ceiling(census_server, concurrency=4, duration_s=1.0)
    assert ceiling.errors == 0 and ceiling.rps > good.rps


def test_connection_errors_are_counted_not_raised():
    result = AsyncioGenerator().run(
        f"http://127.0.0.1:{free_port()}", Request("GET", "/"), concurrency=2, duration_s=0.3
    )
    assert result.requests == 0 and result.errors > 0 and result.error_kinds.get("connect")


def test_asyncio_sequence_returns_every_sample(census_server, census_model_dir):
    from mlops_ci.serving.settings import load_settings

    result = AsyncioGenerator().sequence(census_server, v2_request(load_settings(census_model_dir)), count=25)
    assert result.samples_s is not None and result.samples_s.size == 25 and result.errors == 0


def test_wrk_is_required_only_when_asked():
    from mlops_ci.errors import UsageError

    assert isinstance(find_generator("auto", {"PATH": "/nonexistent"}), AsyncioGenerator)
    with pytest.raises(UsageError, match="wrk is not installed"):
        find_generator("wrk", {"PATH": "/nonexistent"})


# -- the champion comparison on real models -------------------------------------------------------
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
