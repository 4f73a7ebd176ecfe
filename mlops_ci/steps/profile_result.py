"""The profile step's result: outputs (the recommendation deploy reads), checks and the
one-line summary, from a ``ProfileReport``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mlops_ci.profiling.report import CEILING_SHARE, ProfileReport
from mlops_ci.result import Check, StepResult
from mlops_ci.steps.base import StepContext

LATENCY_CHECK = "latency p95 vs champion"


def build_result(ctx: StepContext, report: ProfileReport, plan: Any, paths: dict[str, Path]) -> StepResult:
    opts = ctx.options
    outputs = _outputs(report, plan, paths)
    checks: list[Check] = []
    checks += _objective_checks(report)
    checks += _memory_checks(report, plan)
    checks += _ceiling_checks(report)
    checks.append(latency_check(report, opts.latency_regression))
    failed = [c.name for c in checks if c.status == "failed" and c.blocking]
    status = "failed" if failed else "passed"
    summary = _summary(report, plan, failed)
    artifacts = [str(path) for key, path in sorted(paths.items())]
    return StepResult("profile", status, summary, outputs, checks, artifacts)


def _outputs(report: ProfileReport, plan: Any, paths: dict[str, Path]) -> dict[str, str]:
    rec = report.recommendation
    out = {
        "cpu-request": "",
        "cpu-limit": "",
        "memory-request": "",
        "memory-limit": "",
        "replicas": "",
        "throughput-rps": "",
        "p50-ms": "",
        "p99-ms": "",
        "server": plan.server,
        "report": str(paths["markdown"]),
    }
    if report.model.get("name"):
        out["model-name"] = str(report.model["name"])
    if report.model.get("version"):
        out["model-version"] = str(report.model["version"])
    if rec is not None:
        out.update(
            {
                "cpu-request": rec.cpu_request or "",
                "cpu-limit": rec.cpu_limit or "",
                "memory-request": rec.memory_request or "",
                "memory-limit": rec.memory_limit or "",
                "replicas": str(rec.replicas),
                "throughput-rps": _number(rec.throughput_rps),
                "p50-ms": _number(rec.p50_ms),
                "p99-ms": _number(rec.p99_ms),
                "throughput-per-core": _number(rec.throughput_per_core),
                "slo-met": "true" if rec.slo_met else "false",
            }
        )
    if report.objective.target_rps is not None:
        out["target-rps"] = _number(report.objective.target_rps)
    if report.objective.slo_p99_ms is not None:
        out["slo-p99-ms"] = _number(report.objective.slo_p99_ms)
    sweep = report.sweep
    if sweep is not None:
        out["load-generator"] = sweep.generator
        if sweep.ceiling is not None:
            out["generator-ceiling-rps"] = _number(sweep.ceiling.rps)
    one_row = [p for p in report.inprocess if p.batch_size == 1]
    if one_row:
        first = min(one_row, key=lambda p: p.threads)
        out["inprocess-p50-ms"] = _number(first.latency.p50_ms)
        out["inprocess-p99-ms"] = _number(first.latency.p99_ms)
    if report.comparison is not None:
        out["latency-ratio"] = f"{report.comparison.result.statistic:.3f}"
    if report.champion and report.champion.get("version"):
        out["champion-version"] = str(report.champion["version"])
    return out


def _objective_checks(report: ProfileReport) -> list[Check]:
    rec = report.recommendation
    objective = report.objective
    if rec is None:
        return [
            Check(
                "latency-objective",
                "skipped",
                message="no end-to-end measurement (--server none): nothing recommended",
                blocking=False,
                details={"kind": "resources"},
            )
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
        checks = [
            Check(
                "latency-objective",
                "passed",
                value=rec.p99_ms,
                threshold=slo,
                message=message,
                details=details,
            )
        ]
    else:
        checks = [
            Check(
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
            checks.append(
                Check(
                    "target-throughput",
                    "skipped",
                    message="not sized: no configuration met the latency objective",
                    blocking=False,
                    details={"kind": "resources"},
                )
            )
        else:
            text = next((p for p in rec.problems if "replicas" in p), None)
            checks.append(
                Check(
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
    return checks


def _memory_checks(report: ProfileReport, plan: Any) -> list[Check]:
    sweep = report.sweep
    if sweep is None:
        return []
    if plan.server != "container":
        return [
            Check(
                "memory-limit",
                "skipped",
                message="no OOM search: memory limits need a container engine; the limit is sized from the peak "
                "resident memory",
                blocking=False,
                details={"kind": "resources"},
            )
        ]
    if not sweep.memory_probes:
        return [
            Check(
                "memory-limit",
                "skipped",
                message="no OOM search (memory-search off, or nothing was measured)",
                blocking=False,
                details={"kind": "resources"},
            )
        ]
    smallest = sweep.smallest_memory_bytes
    largest = max(p.limit_bytes for p in sweep.memory_probes)
    failed = [p for p in sweep.memory_probes if not p.passed]
    if smallest is None:
        return [
            Check(
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
        Check(
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


def _ceiling_checks(report: ProfileReport) -> list[Check]:
    sweep = report.sweep
    share = report.ceiling_share
    if sweep is None or sweep.ceiling is None or share is None:
        return []
    ceiling = sweep.ceiling.rps
    if share >= CEILING_SHARE:
        return [
            Check(
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
        Check(
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


def latency_check(report: ProfileReport, policy: str) -> Check:
    """The champion comparison as a check: a slower candidate fails it (``block``, a
    blocking check) or only warns (``warn``); not compared: skipped with the reason."""
    blocking = policy == "block"
    comparison = report.comparison
    if comparison is None:
        return Check(
            LATENCY_CHECK,
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
    return Check(
        LATENCY_CHECK,
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


def _summary(report: ProfileReport, plan: Any, failed: list[str]) -> str:
    model = report.model
    label = str(model.get("name") or "model") + (f" v{model['version']}" if model.get("version") else "")
    parts = []
    rec = report.recommendation
    objective = report.objective
    if rec is not None and rec.slo_met:
        where = (
            "no CPU limit"
            if rec.operating_point is None or rec.operating_point.cpus is None
            else (f"{rec.operating_point.cpus:g} CPU")
        )
        parts.append(
            f"{rec.throughput_rps:,.0f} req/s per replica at p99 {rec.p99_ms:.2f} ms ({where}, {plan.server})"
        )
        goal = f" for {objective.target_rps:,.0f} req/s" if objective.target_rps is not None else ""
        slo = f" at p99 <= {objective.slo_p99_ms:g} ms" if objective.slo_p99_ms is not None else ""
        parts.append(
            f"recommend CPU {rec.cpu_request}/{rec.cpu_limit}, memory {rec.memory_request}/{rec.memory_limit}, "
            f"{rec.replicas} replica(s){goal}{slo}"
        )
    elif rec is not None:
        parts.append(rec.problems[0] if rec.problems else "the latency objective cannot be met")
    elif report.inprocess:
        first = min(report.inprocess, key=lambda p: (p.batch_size, p.threads))
        parts.append(
            f"in-process only: p50 {first.latency.p50_ms:.3f} ms for {first.batch_size} row(s); nothing recommended"
        )
    if report.comparison is not None:
        r = report.comparison.result
        champion = (report.champion or {}).get("version")
        parts.append(
            f"p95 ×{r.statistic:.2f} vs champion{' v' + champion if champion else ''} "
            f"[{r.confidence_interval.low:.2f}, {r.confidence_interval.high:.2f}]"
            + (" - slower" if r.slower else "")
        )
    text = f"{label}: " + "; ".join(parts)
    if failed:
        text = f"{', '.join(failed)} failed; " + text
    return text


def _number(value: float | None) -> str:
    if value is None:
        return ""
    if float(value).is_integer() or abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    if abs(value) >= 1:
        return f"{value:.2f}"
    return f"{value:.3g}"
