"""The profile in a few numbers and one line: the recommendation deploy reads, the
in-process and comparison figures (as text, the way they are published and stored with
the model version), and the summary a person reads first."""

from __future__ import annotations

from mlops_ci.profiling.report import ProfileReport

# Always present (empty when nothing was recommended): deploy reads these.
RECOMMENDATION_KEYS = (
    "cpu_request",
    "cpu_limit",
    "memory_request",
    "memory_limit",
    "replicas",
    "throughput_rps",
    "p50_ms",
    "p99_ms",
)


def figures(report: ProfileReport, server: str) -> dict[str, str]:
    """The headline numbers by name (snake_case), formatted for publishing."""
    rec = report.recommendation
    out = dict.fromkeys(RECOMMENDATION_KEYS, "")
    out["server"] = server
    if report.model.get("name"):
        out["model_name"] = str(report.model["name"])
    if report.model.get("version"):
        out["model_version"] = str(report.model["version"])
    if rec is not None:
        out.update(
            {
                "cpu_request": rec.cpu_request or "",
                "cpu_limit": rec.cpu_limit or "",
                "memory_request": rec.memory_request or "",
                "memory_limit": rec.memory_limit or "",
                "replicas": str(rec.replicas),
                "throughput_rps": number(rec.throughput_rps),
                "p50_ms": number(rec.p50_ms),
                "p99_ms": number(rec.p99_ms),
                "throughput_per_core": number(rec.throughput_per_core),
                "slo_met": "true" if rec.slo_met else "false",
            }
        )
    if report.objective.target_rps is not None:
        out["target_rps"] = number(report.objective.target_rps)
    if report.objective.slo_p99_ms is not None:
        out["slo_p99_ms"] = number(report.objective.slo_p99_ms)
    sweep = report.sweep
    if sweep is not None:
        out["load_generator"] = sweep.generator
        if sweep.ceiling is not None:
            out["generator_ceiling_rps"] = number(sweep.ceiling.rps)
    one_row = [p for p in report.inprocess if p.batch_size == 1]
    if one_row:
        first = min(one_row, key=lambda p: p.threads)
        out["inprocess_p50_ms"] = number(first.latency.p50_ms)
        out["inprocess_p99_ms"] = number(first.latency.p99_ms)
    if report.comparison is not None:
        out["latency_ratio"] = f"{report.comparison.result.statistic:.3f}"
    if report.champion and report.champion.get("version"):
        out["champion_version"] = str(report.champion["version"])
    return out


def summary_line(report: ProfileReport, server: str, failed: list[str]) -> str:
    """One line: what one replica serves and what is recommended, the comparison, and
    first the names of the ``failed`` decisions."""
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
            f"{rec.throughput_rps:,.0f} req/s per replica at p99 {rec.p99_ms:.2f} ms ({where}, {server})"
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


def number(value: float | None) -> str:
    """A measurement as text, with the digits that matter."""
    if value is None:
        return ""
    if float(value).is_integer() or abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    if abs(value) >= 1:
        return f"{value:.2f}"
    return f"{value:.3g}"
