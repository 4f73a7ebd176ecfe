"""The recommendation rules: the operating point, CPU and memory, replicas, quantities."""

from __future__ import annotations

import pytest

from mlops_ci.profiling.recommend import (
    Objective,
    cpu_quantity,
    memory_quantity,
    parse_cpus,
    parse_memory,
    recommend,
)
from mlops_ci.profiling.sweep import MemoryProbe, Sweep
from tests.profiling.samples import MIB, point


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
