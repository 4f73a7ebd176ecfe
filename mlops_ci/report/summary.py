"""The markdown summary of one step result (``$GITHUB_STEP_SUMMARY``, logs)."""

from __future__ import annotations

from mlops_ci.result import Check, StepResult

STATUS_ICONS = {"passed": "✅", "failed": "❌", "skipped": "⏭️", "error": "⚠️", "warning": "⚠️"}


def step_summary_markdown(result: StepResult) -> str:
    icon = STATUS_ICONS.get(result.status, "")
    lines = [f"### {icon} mlops-ci {result.step}: {result.status}", "", escape(result.summary), ""]
    if result.outputs:
        lines += ["| output | value |", "|---|---|"]
        lines += [f"| `{key}` | {cell(value)} |" for key, value in result.outputs.items()]
        lines.append("")
    if result.checks:
        lines += [
            "| check | status | value | baseline | interval | p-value | message |",
            "|---|---|---|---|---|---|---|",
        ]
        lines += [_check_row(check) for check in result.checks]
        lines.append("")
    return "\n".join(lines)


def _check_row(check: Check) -> str:
    interval = f"[{number(check.interval[0])}, {number(check.interval[1])}]" if check.interval else ""
    status = f"{STATUS_ICONS.get(check.status, '')} {check.status}"
    return (
        f"| {escape(check.name)} | {status} | {number(check.value)} | {number(check.baseline)} | "
        f"{interval} | {number(check.p_value)} | {escape(check.message)} |"
    )


def number(value: float | None) -> str:
    return "" if value is None else f"{value:.4g}"


def escape(text: str) -> str:
    """Keep table cells and headings intact: pipes and newlines would break them."""
    return text.replace("|", "\\|").replace("\r", " ").replace("\n", " ")


def cell(value: str) -> str:
    return f"`{escape(value)}`" if value and "`" not in value else escape(value)
