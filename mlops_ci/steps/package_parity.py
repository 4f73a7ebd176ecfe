"""The package step's parity checks and report, from a ParityReport and the options."""

from __future__ import annotations

from typing import Any

from mlops_ci.result import Check


def parity_checks(report: Any, opts: Any) -> list[Check]:
    checks: list[Check] = []
    base = {"kind": "parity", "n": report.rows, "source": report.source}
    if report.label_agreement is not None:
        ok = report.label_agreement >= opts.parity_min_label_agreement
        checks.append(
            Check(
                "parity-labels",
                "passed" if ok else "failed",
                value=report.label_agreement,
                threshold=opts.parity_min_label_agreement,
                message=f"native and ONNX predict the same class on {report.label_agreement:.2%} of "
                f"{report.rows} {report.source} rows ({report.disagreeing_rows} differ; at least "
                f"{opts.parity_min_label_agreement:.2%} required)",
                details={
                    **base,
                    "metric": "label_agreement",
                    "rule": ">= threshold",
                    "disagreeing_rows": report.disagreeing_rows,
                    "worst_rows": list(report.worst_rows),
                },
            )
        )
    within_max = report.diff_max <= opts.parity_max_abs_diff
    within_p99 = report.diff_p99 <= opts.parity_p99_abs_diff
    what = "probabilities" if report.diff_kind == "probability" else "values"
    checks.append(
        Check(
            f"parity-{what}",
            "passed" if within_max and within_p99 else "failed",
            value=report.diff_p99,
            threshold=opts.parity_p99_abs_diff,
            message=f"absolute differences of the {what}: max {report.diff_max:.2g} (limit "
            f"{opts.parity_max_abs_diff:g}), p99 {report.diff_p99:.2g} (limit {opts.parity_p99_abs_diff:g}), "
            f"mean {report.diff_mean:.2g}; worst rows {', '.join(str(r['row']) for r in report.worst_rows)}",
            details={
                **base,
                "metric": f"abs_diff_{what}",
                "max": report.diff_max,
                "p99": report.diff_p99,
                "p999": report.diff_p999,
                "mean": report.diff_mean,
                "max_threshold": opts.parity_max_abs_diff,
                "worst_rows": list(report.worst_rows),
            },
        )
    )
    if not report.metrics:
        checks.append(
            Check(
                "parity-metrics",
                "skipped",
                blocking=False,
                message=f"no target on the {report.source}: metrics not compared (set holdout and target)",
                details=dict(base),
            )
        )
    for metric in report.metrics:
        ok = metric.scaled_difference <= opts.parity_metric_tolerance
        checks.append(
            Check(
                f"parity-{metric.name.replace('_', '-')}",
                "passed" if ok else "failed",
                value=metric.onnx,
                baseline=metric.native,
                threshold=opts.parity_metric_tolerance,
                message=f"{metric.name} from ONNX predictions {metric.onnx:.5f} vs native {metric.native:.5f} "
                f"(difference {metric.difference:+.2g}; tolerance {opts.parity_metric_tolerance:g})",
                details={
                    **base,
                    "metric": metric.name,
                    "difference": metric.difference,
                    "higher_is_better": metric.name not in ("log_loss", "rmse", "mae"),
                },
            )
        )
    return checks


def parity_markdown(report: Any, checks: list[Check]) -> str:
    lines = [
        f"# ONNX parity ({report.rows} {report.source} rows)",
        "",
        "| check | status | detail |",
        "|---|---|---|",
    ]
    for check in checks:
        if check.details.get("kind") == "parity":
            lines.append(f"| {check.name} | {check.status} | {check.message.replace('|', '/')} |")
    lines += [
        "",
        "## Worst rows",
        "",
        "| row (0-based, data order) | native | ONNX | abs diff |",
        "|---|---|---|---|",
    ]
    for row in report.worst_rows:
        native = row.get("native_probabilities", row.get("native", row.get("native_label")))
        onnx = row.get("onnx_probabilities", row.get("onnx", row.get("onnx_label")))
        label = f" ({row['native_label']} / {row.get('onnx_label')})" if "native_label" in row else ""
        lines.append(f"| {row['row']}{label} | {native} | {onnx} | {row['abs_diff']:.3g} |")
    return "\n".join(lines) + "\n"
