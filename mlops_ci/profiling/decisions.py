"""The profile's decisions: is the latency objective met, does the target throughput fit in
the replicas allowed, which memory limit survives without an OOM kill, is the load
generator the bottleneck, is the candidate slower than the champion. Each is a
``Decision``: a status, the numbers behind it and a message."""

from __future__ import annotations

from typing import Any

from mlops_ci.profiling.report import CEILING_SHARE, ProfileReport
from mlops_ci.result import Finding

LATENCY = "latency p95 vs champion"


# A profiling decision is a Finding: one verdict with the numbers behind it. ``status``:
# passed, failed, warning or skipped; a failed ``blocking`` decision fails the profile.
Decision = Finding


def decide(report: ProfileReport, server: str, policy: str) -> tuple[Decision, ...]:
    """Every decision on a finished report, in the order they are shown. ``server`` is what
    was loaded; ``policy`` what a slower candidate means: block, warn or off."""
    return (
        *objective_decisions(report),
        *memory_decisions(report, server),
        *ceiling_decisions(report),
        latency_decision(report, policy),
    )


def blocking_failures(decisions: tuple[Decision, ...]) -> list[str]:
    """The names of the failed blocking decisions: any fails the profile."""
    return [d.name for d in decisions if d.status == "failed" and d.blocking]


def _skipped(name: str, message: str) -> Decision:
    """A resource decision that could not be made, and why; it blocks nothing."""
    return Decision(name, "skipped", message=message, blocking=False, details={"kind": "resources"})


def objective_decisions(report: ProfileReport) -> list[Decision]:
    rec = report.recommendation
    objective = report.objective
    if rec is None:
        return [
            _skipped("latency-objective", "no end-to-end measurement (server: none): nothing recommended")
        ]
    point = rec.operating_point
    slo = objective.slo_p99_ms
    details: dict[str, Any] = {"kind": "resources", "metric": "p99-ms"}
    if point is not None:
        details.update(
            {
                "concurrency": point.concurrency,
                "cpus": point.cpus,
                "rps": point.rps,
                "error_rate": point.error_rate,
            }
        )
    if rec.slo_met:
        message = f"{rec.throughput_rps:,.0f} req/s per replica at p99 {rec.p99_ms:.2f} ms" + (
            f" (objective {slo:g} ms)" if slo is not None else ""
        )
        decisions = [
            Decision(
                "latency-objective",
                "passed",
                value=rec.p99_ms,
                threshold=slo,
                message=message,
                details=details,
            )
        ]
    else:
        decisions = [
            Decision(
                "latency-objective",
                "failed",
                value=rec.p99_ms,
                threshold=slo,
                message=rec.problems[0] if rec.problems else "the latency objective is not met",
                details=details,
            )
        ]
    if objective.target_rps is not None:
        if not rec.slo_met:
            decisions.append(
                _skipped("target-throughput", "not sized: no configuration met the latency objective")
            )
        else:
            text = next((p for p in rec.problems if "replicas" in p), None)
            decisions.append(
                Decision(
                    "target-throughput",
                    "passed" if rec.target_met else "failed",
                    value=float(rec.replicas),
                    threshold=float(objective.max_replicas),
                    message=text
                    or f"{rec.replicas} replica(s) serve {objective.target_rps:,.0f} req/s at "
                    f"{objective.utilization:.0%} of their capacity",
                    details={"kind": "resources", "target_rps": objective.target_rps},
                )
            )
    return decisions


def memory_decisions(report: ProfileReport, server: str) -> list[Decision]:
    sweep = report.sweep
    if sweep is None:
        return []
    if server != "container":
        return [
            _skipped(
                "memory-limit",
                "no OOM search: memory limits need a container engine; the limit is sized from the peak "
                "resident memory",
            )
        ]
    if not sweep.memory_probes:
        return [_skipped("memory-limit", "no OOM search (memory-search off, or nothing was measured)")]
    smallest = sweep.smallest_memory_bytes
    largest = max(p.limit_bytes for p in sweep.memory_probes)
    failed = [p for p in sweep.memory_probes if not p.passed]
    if smallest is None:
        return [
            Decision(
                "memory-limit",
                "failed",
                value=float(largest),
                message=f"the server did not survive the heaviest load even with {largest / 2**20:.0f}Mi "
                f"({failed[-1].message}); add larger values to memory-limits",
                details={"kind": "resources", "probes": [p.to_dict() for p in sweep.memory_probes]},
            )
        ]
    below = [p for p in failed if p.limit_bytes < smallest]
    why = f"; {below[-1].limit_bytes / 2**20:.0f}Mi: {below[-1].message}" if below else ""
    return [
        Decision(
            "memory-limit",
            "passed",
            value=float(smallest),
            message=f"smallest memory limit without OOM under the heaviest load: {smallest / 2**20:.0f}Mi{why}",
            details={
                "kind": "resources",
                "oom_killed": sum(1 for p in sweep.memory_probes if p.oom_killed),
                "probes": len(sweep.memory_probes),
            },
        )
    ]


def ceiling_decisions(report: ProfileReport) -> list[Decision]:
    sweep = report.sweep
    share = report.ceiling_share
    if sweep is None or sweep.ceiling is None or share is None:
        return []
    ceiling = sweep.ceiling.rps
    if share >= CEILING_SHARE:
        return [
            Decision(
                "load-generator",
                "warning",
                value=share,
                threshold=CEILING_SHARE,
                message=f"the best point reached {share:.0%} of the load generator's ceiling ({ceiling:,.0f} req/s "
                f"with {sweep.generator}): the throughput measured may be the generator's or the machine's limit, "
                "not the model's",
                blocking=False,
                details={"kind": "resources", "ceiling_rps": ceiling},
            )
        ]
    return [
        Decision(
            "load-generator",
            "passed",
            value=share,
            threshold=CEILING_SHARE,
            message=f"the best point reached {share:.0%} of the load generator's ceiling ({ceiling:,.0f} req/s with "
            f"{sweep.generator})",
            blocking=False,
            details={"kind": "resources", "ceiling_rps": ceiling},
        )
    ]


def latency_decision(report: ProfileReport, policy: str) -> Decision:
    """The champion comparison as a check: a slower candidate fails it (``block``, a
    blocking check) or only warns (``warn``); not compared: skipped with the reason."""
    blocking = policy == "block"
    comparison = report.comparison
    if comparison is None:
        return Decision(
            LATENCY,
            "skipped",
            message=report.comparison_note or "not compared",
            blocking=False,
            details={"kind": "latency", "metric": "p95-ms", "rule": "ratio"},
        )
    r = comparison.result
    champion = report.champion or {}
    details = {
        "kind": "latency",
        "metric": "p95-ms",
        "rule": "ratio",
        "margin": round(r.threshold - 1.0, 6),
        "ratio": r.statistic,
        "alpha": round(1 - r.confidence_level, 6),
        "n": r.n_candidate,
        "rounds": r.rounds,
        "mode": comparison.mode,
        "setup": comparison.setup,
        "champion_version": champion.get("version"),
        "higher_is_better": False,
    }
    stored = (champion.get("stored_profile") or {}).get("inprocess_p99_ms")
    if stored:
        details["champion_stored_inprocess_p99_ms"] = stored
    interval = (r.confidence_interval.low, r.confidence_interval.high)
    where = f"{comparison.mode}, {comparison.setup}"
    text = (
        f"p95 latency ×{r.statistic:.2f} the champion's; its {r.confidence_level:.0%} interval "
        f"[{interval[0]:.2f}, {interval[1]:.2f}]"
    )
    if r.slower:
        status = "failed" if blocking else "warning"
        message = f"{text} is above ×{r.threshold:g}: slower ({where})"
    else:
        status = "passed"
        message = f"{text} reaches ×{r.threshold:g} or below: not slower by more than the margin ({where})"
        if r.faster:
            message = f"{text} is below ×{1 / r.threshold:.2f}: faster ({where})"
    return Decision(
        LATENCY,
        status,
        value=r.candidate_ms,
        baseline=r.baseline_ms,
        interval=interval,
        p_value=r.pvalue,
        threshold=r.threshold,
        message=message,
        blocking=blocking,
        details=details,
    )
