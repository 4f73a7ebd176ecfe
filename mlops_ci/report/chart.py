"""A forest plot of difference intervals as monospaced text: a chart that renders in any
PR/MR comment without an image host."""

from __future__ import annotations

from dataclasses import dataclass

from mlops_ci.report.format import signed

WIDTH = 41
LABEL_WIDTH = 28


@dataclass(frozen=True)
class IntervalRow:
    label: str
    low: float
    high: float
    estimate: float | None = None
    # The difference beyond which the challenger counts as worse (-margin for a metric where
    # higher is better, +margin where lower is better); None without a margin.
    harm: float | None = None


def forest_plot(rows: list[IntervalRow], *, width: int = WIDTH) -> str:
    """One line per interval on a shared axis centred on zero::

    accuracy no-regression    .......:....[===o|=]........
    """
    if not rows:
        return ""
    values = [abs(v) for row in rows for v in (row.low, row.high, row.estimate, row.harm) if v is not None]
    span = max(values) * 1.1 if values and max(values) > 0 else 1.0

    def column(x: float) -> int:
        return max(0, min(width - 1, round((x + span) / (2 * span) * (width - 1))))

    zero = column(0.0)
    left, right = signed(-span), signed(span)
    axis = [" "] * width
    for start, label in ((0, left), (zero, "0"), (width - len(right), right)):
        axis[start : start + len(label)] = list(label)
    lines = [" " * LABEL_WIDTH + "".join(axis).rstrip()]
    for row in rows:
        low, high = column(min(row.low, row.high)), column(max(row.low, row.high))
        cells = ["."] * width
        for i in range(low, high + 1):
            cells[i] = "="
        # Zero and the margin stay visible inside the interval; the brackets and the
        # estimate are drawn over them.
        cells[zero] = "|"
        if row.harm is not None:
            cells[column(row.harm)] = ":"
        cells[low], cells[high] = "[", "]"
        if row.estimate is not None:
            cells[column(row.estimate)] = "o"
        label = row.label if len(row.label) < LABEL_WIDTH else row.label[: LABEL_WIDTH - 2] + "…"
        lines.append(label.ljust(LABEL_WIDTH) + "".join(cells))
    lines.append("")
    lines.append("o estimate   [===] interval of challenger - champion   | no difference   : margin")
    return "\n".join(lines)
