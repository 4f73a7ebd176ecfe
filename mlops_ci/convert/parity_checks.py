"""Whether native and ONNX predictions agree closely enough: a ParityReport judged against
the Tolerances, one ParityJudgement per question, and the parity report in markdown."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from mlops_ci.convert.parity import ParityReport, Tolerances


@dataclass(frozen=True)
class ParityJudgement:
    """One parity question answered (labels, differences, one metric). ``status``: passed,
    failed or skipped; a skipped question decides nothing."""

    name: str
    status: str
    message: str
    value: float | None = None
    baseline: float | None = None
    threshold: float | None = None
    details: Mapping[str, Any] = field(default_factory=dict)

    @property
    def failed(self) -> bool:
        return self.status == "failed"


def judge_parity(report: ParityReport, tolerances: Tolerances) -> tuple[ParityJudgement, ...]:
    found: list[ParityJudgement] = []
    base = {"kind": "parity", "n": report.rows, "source": report.source}
    min_agreement = tolerances.min_label_agreement
    if report.label_agreement is not None:
        found.append(
            ParityJudgement(
                "parity-labels",
                _status(report.label_agreement >= min_agreement),
                value=report.label_agreement,
                threshold=min_agreement,
                message=f"native and ONNX predict the same class on {report.label_agreement:.2%} of "
                f"{report.rows} {report.source} rows ({report.disagreeing_rows} differ; at least "
                f"{min_agreement:.2%} required)",
                details={
                    **base,
                    "metric": "label_agreement",
                    "rule": ">= threshold",
                    "disagreeing_rows": report.disagreeing_rows,
                    "worst_rows": list(report.worst_rows),
                },
            )
        )
    within_max = report.diff_max <= tolerances.max_abs_diff
    within_p99 = report.diff_p99 <= tolerances.p99_abs_diff
    what = "probabilities" if report.diff_kind == "probability" else "values"
    found.append(
        ParityJudgement(
            f"parity-{what}",
            _status(within_max and within_p99),
            value=report.diff_p99,
            threshold=tolerances.p99_abs_diff,
            message=f"absolute differences of the {what}: max {report.diff_max:.2g} (limit "
            f"{tolerances.max_abs_diff:g}), p99 {report.diff_p99:.2g} (limit {tolerances.p99_abs_diff:g}), "
            f"mean {report.diff_mean:.2g}; worst rows {', '.join(str(r['row']) for r in report.worst_rows)}",
            details={
                **base,
                "metric": f"abs_diff_{what}",
                "max": report.diff_max,
                "p99": report.diff_p99,
                "p999": report.diff_p999,
                "mean": report.diff_mean,
                "max_threshold": tolerances.max_abs_diff,
                "worst_rows": list(report.worst_rows),
            },
        )
    )
    if not report.metrics:
        found.append(
            ParityJudgement(
                "parity-metrics",
                "skipped",
                message=f"no target on the {report.source}: metrics not compared (set holdout and target)",
                details=dict(base),
            )
        )
    for metric in report.metrics:
        found.append(
            ParityJudgement(
                f"parity-{metric.name.replace('_', '-')}",
                _status(metric.scaled_difference <= tolerances.metric),
                value=metric.onnx,
                baseline=metric.native,
                threshold=tolerances.metric,
                message=f"{metric.name} from ONNX predictions {metric.onnx:.5f} vs native {metric.native:.5f} "
                f"(difference {metric.difference:+.2g}; tolerance {tolerances.metric:g})",
                details={
                    **base,
                    "metric": metric.name,
                    "difference": metric.difference,
                    "higher_is_better": metric.name not in ("log_loss", "rmse", "mae"),
                },
            )
        )
    return tuple(found)


def parity_markdown(report: ParityReport, judgements: Sequence[ParityJudgement], *, conversion: str) -> str:
    """The parity report: ``conversion`` (how the model was converted) and each judgement,
    then the worst rows."""
    lines = [
        f"# ONNX parity ({report.rows} {report.source} rows)",
        "",
        "| check | status | detail |",
        "|---|---|---|",
        f"| onnx-conversion | passed | {_cell(conversion)} |",
    ]
    lines += [f"| {j.name} | {j.status} | {_cell(j.message)} |" for j in judgements]
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


def _status(ok: bool) -> str:
    return "passed" if ok else "failed"


def _cell(text: str) -> str:
    return text.replace("|", "/")
