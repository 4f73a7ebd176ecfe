"""The profile's report: ``report.json`` (every measurement), ``profile.md`` (the tables a
person reads: the job summary and the MLflow artifact) and ``latency.png`` (latency vs
throughput per CPU limit, and the in-process sweep)."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlops_ci.profiling.compare import Comparison
from mlops_ci.profiling.inprocess import InProcessPoint
from mlops_ci.profiling.recommend import Objective, Recommendation
from mlops_ci.profiling.sweep import Sweep
from mlops_ci.result import write_text_atomic

REPORT_SCHEMA = "mlops-ci/profile/v1"
# The best point reaching this share of the generator's ceiling is "within reach" of it.
CEILING_SHARE = 0.8


@dataclass
class ProfileReport:
    model: dict[str, Any]
    objective: Objective
    inprocess: list[InProcessPoint] = field(default_factory=list)
    sweep: Sweep | None = None
    target: dict[str, Any] = field(default_factory=dict)
    recommendation: Recommendation | None = None
    comparison: Comparison | None = None
    champion: dict[str, Any] | None = None
    comparison_note: str | None = None
    machine: dict[str, Any] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def ceiling_share(self) -> float | None:
        """Best end-to-end throughput as a share of the generator's ceiling."""
        if self.sweep is None or self.sweep.ceiling is None or not self.sweep.points:
            return None
        ceiling = self.sweep.ceiling.rps
        best = max(p.rps for p in self.sweep.points)
        return best / ceiling if ceiling > 0 else None

    def to_dict(self) -> dict[str, Any]:
        o = self.objective
        return {
            "schema": REPORT_SCHEMA,
            "model": self.model,
            "objective": {
                "slo_p99_ms": o.slo_p99_ms,
                "target_rps": o.target_rps,
                "max_error_rate": o.max_error_rate,
                "utilization": o.utilization,
                "min_replicas": o.min_replicas,
                "max_replicas": o.max_replicas,
                "memory_headroom": o.memory_headroom,
            },
            "target": self.target,
            "inprocess": [p.to_dict() for p in self.inprocess],
            "end_to_end": self.sweep.to_dict() if self.sweep else None,
            "ceiling_share": self.ceiling_share,
            "recommendation": self.recommendation.to_dict() if self.recommendation else None,
            "champion": self.champion,
            "comparison": self.comparison.to_dict() if self.comparison else None,
            "comparison_note": self.comparison_note,
            "machine": self.machine,
            "settings": self.settings,
        }


def write_report(report: ProfileReport, folder: Path) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = {
        "json": folder / "report.json",
        "markdown": folder / "profile.md",
    }
    write_text_atomic(paths["json"], json.dumps(_finite(report.to_dict()), indent=2, allow_nan=False) + "\n")
    write_text_atomic(paths["markdown"], markdown(report))
    plot = latency_plot(report, folder / "latency.png")
    if plot is not None:
        paths["plot"] = plot
    return paths


# -- markdown -----------------------------------------------------------------------------


def markdown(report: ProfileReport) -> str:
    lines: list[str] = []
    model = report.model
    title = model.get("name") or "model"
    if model.get("version"):
        title += f" v{model['version']}"
    lines += [f"### Profile: {title}", ""]
    rec = report.recommendation
    if rec is not None:
        lines += _recommendation_lines(report, rec)
    if report.comparison is not None or report.comparison_note:
        lines += _comparison_lines(report)
    if report.sweep is not None and report.sweep.points:
        lines += _sweep_lines(report)
    if report.sweep is not None and report.sweep.memory_probes:
        lines += _memory_lines(report.sweep)
    if report.inprocess:
        lines += _inprocess_lines(report.inprocess)
    machine = report.machine
    if machine:
        load = machine.get("load_before"), machine.get("load_after")
        parts = [f"{machine.get('cpus', '?')} CPUs"]
        if all(v is not None for v in load):
            parts.append(f"load average {load[0]:.2f} before, {load[1]:.2f} after")
        if machine.get("onnxruntime"):
            parts.append(f"ONNX Runtime {machine['onnxruntime']}")
        lines += [f"<sub>Measured on {', '.join(parts)}.</sub>", ""]
    return "\n".join(lines).rstrip("\n") + "\n"


def _recommendation_lines(report: ProfileReport, rec: Recommendation) -> list[str]:
    o = report.objective
    goal = []
    if o.target_rps is not None:
        goal.append(f"{o.target_rps:,.0f} req/s")
    if o.slo_p99_ms is not None:
        goal.append(f"p99 ≤ {o.slo_p99_ms:g} ms")
    lines = ["**Recommendation** (per replica" + (f"; for {' at '.join(goal)}" if goal else "") + ")", ""]
    lines += [
        "| CPU request | CPU limit | memory request | memory limit | replicas | req/s per replica | p50 ms | p99 ms |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
        f"| {rec.cpu_request or '–'} | {rec.cpu_limit or '–'} | {rec.memory_request or '–'} | "
        f"{rec.memory_limit or '–'} | {rec.replicas} | {_n(rec.throughput_rps)} | {_ms(rec.p50_ms)} | {_ms(rec.p99_ms)} |",
        "",
    ]
    for problem in rec.problems:
        lines.append(f"- ❌ {problem}")
    for reason in rec.reasons:
        lines.append(f"- {reason}")
    lines.append("")
    return lines


def _comparison_lines(report: ProfileReport) -> list[str]:
    champion = report.champion or {}
    label = f"champion v{champion['version']}" if champion.get("version") else "the champion"
    if report.comparison is None:
        return [f"**Latency vs {label}**: {report.comparison_note}", ""]
    c = report.comparison
    r = c.result
    verdict = (
        f"❌ slower: the interval's lower bound is above ×{r.threshold:g}"
        if r.slower
        else (
            "✅ faster"
            if r.faster
            else f"✅ not slower by more than ×{r.threshold:g} (the interval's lower bound is at or below it)"
        )
    )
    lines = [
        f"**Latency vs {label}** ({c.mode}, {c.setup}; {r.rounds} interleaved rounds of {c.block_calls} calls each)",
        "",
        "| | champion | candidate |",
        "|---|---:|---:|",
        f"| p50 ms | {_ms(c.champion.p50_ms)} | {_ms(c.candidate.p50_ms)} |",
        f"| p95 ms | {_ms(c.champion.p95_ms)} | {_ms(c.candidate.p95_ms)} |",
        f"| p99 ms | {_ms(c.champion.p99_ms)} | {_ms(c.candidate.p99_ms)} |",
        "",
        f"p95 ratio ×{r.statistic:.2f}, {r.confidence_level:.0%} interval [{r.confidence_interval.low:.2f}, "
        f"{r.confidence_interval.high:.2f}] (paired-block bootstrap, {r.n_resamples} resamples), "
        f"p = {r.pvalue:.3g} for ratio ≤ {r.threshold:g} → {verdict}",
        "",
    ]
    if report.comparison_note:
        lines += [report.comparison_note, ""]
    return lines


def _sweep_lines(report: ProfileReport) -> list[str]:
    sweep = report.sweep
    assert sweep is not None
    target = report.target
    where = {
        "container": f"container `{target.get('image', '')}`",
        "serve": "`mlops-ci serve` (no container: CPU and memory limits cannot be applied)",
        "endpoint": f"endpoint {target.get('url', '')}",
    }.get(sweep.target, sweep.target)
    lines = [
        f"**End to end** against {where}; load generator {target.get('generator', sweep.generator)}, "
        f"{target.get('request_rows', 1)}-row V2 requests",
        "",
        "| CPU limit | concurrent | req/s | p50 ms | p99 ms | errors | CPU used | req/s per core | RSS MiB |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    slo = report.objective.slo_p99_ms
    for p in sweep.points:
        cores = p.cpus if p.cpus is not None else p.cpu_cores
        per_core = p.rps / cores if cores else None
        p99 = _ms(p.p99_ms)
        if slo is not None and p.p99_ms > slo:
            p99 += " ⚠️"
        lines.append(
            f"| {_cpus(p.cpus)} | {p.concurrency} | {_n(p.rps)} | {_ms(p.p50_ms)} | {p99} | {p.error_rate:.2%} | "
            f"{_cores(p.cpu_cores)} | {_n(per_core)} | {_mib(p.rss_bytes)} |"
        )
    lines.append("")
    if sweep.ceiling is not None:
        share = report.ceiling_share
        ceiling = sweep.ceiling
        text = (
            f"Load generator ceiling: {_n(ceiling.rps)} req/s ({sweep.generator}, GET /v2/health/live, "
            f"{ceiling.concurrency} connections, same machine)."
        )
        if share is not None:
            if share >= CEILING_SHARE:
                text += (
                    f" ⚠️ The best point reached {share:.0%} of it: the results are within reach of what the "
                    "generator and this machine can measure, so the true capacity may be higher."
                )
            else:
                text += f" The best point reached {share:.0%} of it: the generator was not the bottleneck."
        lines += [text, ""]
    for note in sweep.notes:
        lines.append(f"- {note}")
    if sweep.notes:
        lines.append("")
    return lines


def _memory_lines(sweep: Sweep) -> list[str]:
    lines = [
        "**Memory limits** (the smallest the server survives under the heaviest load; binary search)",
        "",
        "| limit | result | peak RSS MiB |",
        "|---:|---|---:|",
    ]
    for probe in sweep.memory_probes:
        mark = "✅" if probe.passed else ("💥 OOM" if probe.oom_killed else "❌")
        lines.append(
            f"| {probe.limit_bytes / 2**20:.0f}Mi | {mark} {probe.message} | {_mib(probe.rss_max_bytes)} |"
        )
    lines.append("")
    return lines


def _inprocess_lines(points: list[InProcessPoint]) -> list[str]:
    lines = [
        "**In-process** (ONNX Runtime alone, the server's session settings)",
        "",
        "| intra-op threads | batch | p50 ms | p95 ms | p99 ms | rows/s |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for p in points:
        lines.append(
            f"| {p.threads} | {p.batch_size} | {_ms(p.latency.p50_ms)} | {_ms(p.latency.p95_ms)} | "
            f"{_ms(p.latency.p99_ms)} | {_n(p.rows_per_s)} |"
        )
    lines.append("")
    return lines


def _n(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "–"
    return f"{value:,.0f}" if value >= 100 else f"{value:.1f}"


def _ms(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "–"
    if value >= 100:
        return f"{value:.0f}"
    if value >= 10:
        return f"{value:.1f}"
    if value >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


def _cpus(value: float | None) -> str:
    return "none" if value is None else f"{value:g}"


def _cores(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


def _mib(value: int | None) -> str:
    return "–" if not value else f"{value / 2**20:.0f}"


def _finite(value: Any) -> Any:
    """JSON has no NaN: a missing measurement is null."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


# -- plot ---------------------------------------------------------------------------------


def latency_plot(report: ProfileReport, path: Path) -> Path | None:
    """Left: p50 and p99 vs throughput per CPU limit (one point per concurrency level),
    the latency objective and the generator's ceiling. Right: in-process latency vs rows
    per second per thread count (one point per batch size)."""
    has_e2e = report.sweep is not None and bool(report.sweep.points)
    if not has_e2e and not report.inprocess:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = int(has_e2e) + int(bool(report.inprocess))
    figure, axes = plt.subplots(1, panels, figsize=(6.4 * panels, 4.6), squeeze=False)
    column = 0
    if has_e2e:
        _plot_e2e(axes[0][column], report)
        column += 1
    if report.inprocess:
        _plot_inprocess(axes[0][column], report.inprocess)
    title = report.model.get("name") or "model"
    if report.model.get("version"):
        title += f" v{report.model['version']}"
    figure.suptitle(f"{title}: latency vs throughput")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def _plot_e2e(axis: Any, report: ProfileReport) -> None:
    sweep = report.sweep
    assert sweep is not None
    for index, (cpus, points) in enumerate(sorted(sweep.by_cpus().items(), key=lambda i: i[0] or 1e9)):
        color = f"C{index % 10}"
        label = "no CPU limit" if cpus is None else f"{cpus:g} CPU"
        xs = [p.rps for p in points]
        axis.plot(xs, [p.p99_ms for p in points], "o-", color=color, label=f"{label} p99")
        axis.plot(xs, [p.p50_ms for p in points], "s--", color=color, alpha=0.6, label=f"{label} p50")
        for p in points:
            axis.annotate(
                f"c={p.concurrency}", (p.rps, p.p99_ms), fontsize=7, xytext=(3, 3), textcoords="offset points"
            )
    if report.objective.slo_p99_ms is not None:
        axis.axhline(report.objective.slo_p99_ms, color="red", linestyle=":", label="p99 objective")
    if sweep.ceiling is not None and sweep.ceiling.rps > 0:
        best = max(p.rps for p in sweep.points)
        if sweep.ceiling.rps <= best * 3:
            axis.axvline(sweep.ceiling.rps, color="grey", linestyle="-.", label="generator ceiling")
        else:
            # Far to the right: a line there would squash the points into one corner.
            axis.text(
                0.98,
                0.02,
                f"generator ceiling {sweep.ceiling.rps:,.0f} req/s →",
                transform=axis.transAxes,
                ha="right",
                va="bottom",
                fontsize=8,
                color="grey",
            )
    axis.set_xlabel("throughput (req/s)")
    axis.set_ylabel("latency (ms)")
    axis.set_yscale("log")
    axis.set_title(f"end to end ({sweep.target}, {sweep.generator})", fontsize=10)
    axis.grid(True, which="both", alpha=0.3)
    axis.legend(fontsize=7)


def _plot_inprocess(axis: Any, points: list[InProcessPoint]) -> None:
    threads = sorted({p.threads for p in points})
    for index, count in enumerate(threads):
        chosen = [p for p in points if p.threads == count]
        color = f"C{index % 10}"
        xs = [p.rows_per_s for p in chosen]
        axis.plot(xs, [p.latency.p99_ms for p in chosen], "o-", color=color, label=f"{count} thread(s) p99")
        axis.plot(
            xs,
            [p.latency.p50_ms for p in chosen],
            "s--",
            color=color,
            alpha=0.6,
            label=f"{count} thread(s) p50",
        )
        for p in chosen:
            axis.annotate(
                f"b={p.batch_size}",
                (p.rows_per_s, p.latency.p99_ms),
                fontsize=7,
                xytext=(3, 3),
                textcoords="offset points",
            )
    axis.set_xlabel("rows per second")
    axis.set_ylabel("latency per call (ms)")
    axis.set_xscale("log")
    axis.set_yscale("log")
    axis.set_title("in-process ONNX Runtime (batch sizes)", fontsize=10)
    axis.grid(True, which="both", alpha=0.3)
    axis.legend(fontsize=7)
