"""The profile's decisions on a finished report: the objective, the target throughput,
the memory limit, the load generator's ceiling and the champion comparison."""

from __future__ import annotations

import numpy as np

from mlops_ci.profiling.compare import Comparison
from mlops_ci.profiling.decisions import (
    Decision,
    blocking_failures,
    ceiling_decisions,
    decide,
    latency_decision,
    memory_decisions,
    objective_decisions,
)
from mlops_ci.profiling.loadgen import LoadResult
from mlops_ci.profiling.recommend import Objective, recommend
from mlops_ci.profiling.report import ProfileReport
from mlops_ci.profiling.stats import quantile_ratio_test, summarize
from mlops_ci.profiling.sweep import MemoryProbe, Sweep
from tests.profiling.samples import MIB, lognormal_blocks, point


def test_the_policy_makes_a_slower_candidate_block_or_warn():
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
    blocked, warned = latency_decision(report, "block"), latency_decision(report, "warn")
    assert (blocked.status, blocked.blocking) == ("failed", True)
    assert (warned.status, warned.blocking) == ("warning", False)
    assert blocked.details["kind"] == "latency" and blocked.details["champion_version"] == "4"
    assert blocked.interval == (result.confidence_interval.low, result.confidence_interval.high)
    assert blocked.threshold == 1.2 and "slower" in blocked.message
    equal = quantile_ratio_test(lognormal_blocks(rng, 12, 60), base, threshold=1.2)
    report.comparison = Comparison(
        "in-process", equal, comparison.candidate, comparison.champion, 60, 1.0, "b"
    )
    assert latency_decision(report, "block").status == "passed"
    report.comparison, report.comparison_note = None, "not compared (latency-regression: off)"
    off = latency_decision(report, "off")
    assert off.status == "skipped" and not off.blocking and "off" in off.message


def measured(objective, *points, ceiling_rps=None):
    sweep = Sweep("container", "wrk")
    sweep.points = list(points)
    if ceiling_rps is not None:
        sweep.ceiling = LoadResult("wrk", 4, 5.0, int(ceiling_rps * 5), 0, {}, ceiling_rps, *[0.1] * 6)
    return ProfileReport(
        model={}, objective=objective, sweep=sweep, recommendation=recommend(sweep, objective)
    )


def test_the_objective_passes_or_fails_and_the_target_is_sized_only_when_it_is_met():
    met = measured(Objective(slo_p99_ms=50, target_rps=3000), point(1.0, 4, 2000, 6))
    objective, target = objective_decisions(met)
    assert (objective.name, objective.status, objective.value, objective.threshold) == (
        "latency-objective",
        "passed",
        6,
        50,
    )
    assert target.name == "target-throughput" and target.status == "passed" and target.value == 3.0
    assert "3 replica(s) serve 3,000 req/s at 70% of their capacity" in target.message
    unmet = measured(Objective(slo_p99_ms=1, target_rps=3000), point(1.0, 4, 2000, 6))
    objective, target = objective_decisions(unmet)
    assert objective.status == "failed" and objective.blocking and "cannot be met" in objective.message
    assert target.status == "skipped" and not target.blocking
    too_many = measured(Objective(slo_p99_ms=50, target_rps=10_000, max_replicas=2), point(1.0, 4, 2000, 6))
    assert objective_decisions(too_many)[1].status == "failed"
    nothing = ProfileReport(model={}, objective=Objective(slo_p99_ms=50, target_rps=None))
    (skipped,) = objective_decisions(nothing)
    assert skipped.status == "skipped" and "--" not in skipped.message


def test_the_memory_limit_needs_a_container_and_a_limit_that_survives():
    report = measured(Objective(slo_p99_ms=50, target_rps=None), point(1.0, 4, 2000, 6))
    assert memory_decisions(report, "serve")[0].status == "skipped"
    assert memory_decisions(report, "container")[0].status == "skipped"  # no probes: search off
    report.sweep.memory_probes = [
        MemoryProbe(64 * MIB, False, True, "OOM-killed under load"),
        MemoryProbe(96 * MIB, True, False, "served"),
    ]
    (found,) = memory_decisions(report, "container")
    assert found.status == "passed" and found.value == 96 * MIB and "64Mi: OOM-killed" in found.message
    report.sweep.memory_probes = [MemoryProbe(64 * MIB, False, True, "OOM-killed under load")]
    (none,) = memory_decisions(report, "container")
    assert none.status == "failed" and none.blocking and "add larger values to memory-limits" in none.message
    assert memory_decisions(ProfileReport(model={}, objective=report.objective), "container") == []


def test_a_point_near_the_generators_ceiling_warns_that_the_generator_may_be_the_limit():
    objective = Objective(slo_p99_ms=50, target_rps=None)
    near = ceiling_decisions(measured(objective, point(1.0, 4, 900, 6), ceiling_rps=1000))
    assert near[0].status == "warning" and not near[0].blocking and near[0].value == 0.9
    far = ceiling_decisions(measured(objective, point(1.0, 4, 100, 6), ceiling_rps=1000))
    assert far[0].status == "passed"
    assert ceiling_decisions(measured(objective, point(1.0, 4, 100, 6))) == []


def test_only_failed_blocking_decisions_fail_the_profile():
    decisions = (
        Decision("a", "failed"),
        Decision("b", "failed", blocking=False),
        Decision("c", "warning"),
        Decision("d", "passed"),
    )
    assert blocking_failures(decisions) == ["a"]
    report = measured(Objective(slo_p99_ms=1, target_rps=None), point(1.0, 4, 2000, 6), ceiling_rps=10_000)
    report.comparison_note = "not compared (latency-regression: off)"
    every = decide(report, "serve", "off")
    assert [d.name for d in every] == [
        "latency-objective",
        "memory-limit",
        "load-generator",
        "latency p95 vs champion",
    ]
    assert blocking_failures(every) == ["latency-objective"]
