"""The markdown report of a validation: the verdict, a table per kind of check, and what
the rules mean."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from mlops_ci.report.summary import STATUS_ICONS, escape, number
from mlops_ci.validation.findings import Finding

EXPLANATION = """\
**How to read this.** Every comparison is a paired bootstrap interval of *candidate -
champion* on the same holdout rows, at the level shown. *no-regression* blocks only when the
whole interval is worse than the margin (evidence of harm); *non-inferiority* passes only
when the whole interval is better than minus the margin (the candidate must prove it); the
*MDE* (minimum detectable difference) is the smallest change this holdout can resolve —
when it is larger than a non-inferiority margin the holdout is too small to tell, which is
not evidence that the model is worse. Blocking no-regression checks share one family-wise
alpha (Holm–Bonferroni)."""


def _interval(check: Finding) -> str:
    if not check.interval:
        return ""
    return f"[{number(check.interval[0])}, {number(check.interval[1])}]"


def _signed(value: float | None) -> str:
    return "" if value is None else f"{value:+.4g}"


def _status(check: Finding) -> str:
    blocking = "" if check.blocking or check.status in ("passed", "skipped") else " (non-blocking)"
    return f"{STATUS_ICONS.get(check.status, '')} {check.status}{blocking}"


def _level(check: Finding) -> str:
    alpha = check.details.get("alpha_adjusted")
    if alpha is None:
        return ""
    return f"{100 * (1 - alpha):.2f}".rstrip("0").rstrip(".") + "%"


def comparison_table(checks: Sequence[Finding]) -> list[str]:
    lines = [
        "| check | result | candidate | champion | change | interval | level | p | MDE | margin/threshold |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for c in checks:
        change = _signed(c.details.get("difference")) if c.details.get("kind") != "absolute" else ""
        lines.append(
            f"| {escape(c.name)} | {_status(c)} | {number(c.value)} | {number(c.baseline)} | {change} | "
            f"{_interval(c)} | {_level(c)} | {number(c.p_value)} | {number(c.details.get('mde'))} | {number(c.threshold)} |"
        )
    return lines


def simple_table(checks: Sequence[Finding]) -> list[str]:
    lines = ["| check | result | message |", "|---|---|---|"]
    lines += [f"| {escape(c.name)} | {_status(c)} | {escape(c.message)} |" for c in checks]
    return lines


def markdown_report(
    *,
    verdict: str,
    headline: str,
    summary: str,
    checks: Sequence[Finding],
    notes: Sequence[str],
    plots: Sequence[Path],
) -> str:
    by_kind: dict[str, list[Finding]] = {}
    for c in checks:
        by_kind.setdefault(c.details.get("kind", "other"), []).append(c)
    lines = [f"# mlops-ci validate: {verdict}", "", headline, "", f"**{escape(summary)}**", ""]
    for note in notes:
        lines.append(f"> {escape(note)}")
    if notes:
        lines.append("")
    main = by_kind.get("comparison", []) + by_kind.get("absolute", [])
    if main:
        lines += ["## Checks", "", *comparison_table(main), ""]
        lines += [f"- **{escape(c.name)}**: {escape(c.message)}" for c in main]
        for c in main:
            for warning in c.details.get("warnings", []):
                lines.append(f"  - ⚠️ {escape(warning)}")
            for name, test in (c.details.get("tests") or {}).items():
                if isinstance(test, dict):
                    lines.append(
                        f"  - {name}: p = {number(test.get('pvalue'))}; {escape(str(test.get('reason', '')))}"
                    )
        lines.append("")
    if by_kind.get("slice"):
        lines += ["## Slices", "", *comparison_table(by_kind["slice"]), ""]
        skipped = [c for c in by_kind["slice"] if c.status == "skipped"]
        lines += [f"- {escape(c.name)}: {escape(c.message)}" for c in skipped]
        if skipped:
            lines.append("")
    for kind, title in (("data", "Data"), ("robustness", "Robustness (malformed batches)")):
        if by_kind.get(kind):
            lines += [f"## {title}", "", *simple_table(by_kind[kind]), ""]
    if plots:
        lines += ["## Plots", ""]
        lines += [f"![{p.stem}]({p.name})" for p in plots]
        lines.append("")
    lines += [EXPLANATION, ""]
    return "\n".join(lines)
