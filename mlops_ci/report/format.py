"""Formatting numbers and untrusted text for markdown that GitHub and GitLab both render."""

from __future__ import annotations

import math
import re

DASH = "–"  # shown for a missing number
ICONS = {
    "pass": "✅",
    "passed": "✅",
    "warn": "⚠️",
    "warning": "⚠️",
    "block": "❌",
    "failed": "❌",
    "error": "💥",
    "skipped": "⏭️",
    "ignored": "➖",
}
MAX_TEXT = 600


def num(value: float | None) -> str:
    """A measurement with about four significant digits, never in exponent form for the
    magnitudes metrics have."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return DASH
    value = float(value)
    magnitude = abs(value)
    if magnitude == 0:
        return "0"
    if magnitude >= 1000:
        return f"{value:,.0f}"
    if magnitude >= 100:
        return f"{value:.1f}"
    if magnitude >= 10:
        return f"{value:.2f}"
    if magnitude >= 1:
        return f"{value:.3f}"
    if magnitude >= 0.0001:
        return f"{value:.4f}"
    return f"{value:.2e}"


def plain(value: float | None) -> str:
    """A configured number (margin, floor, tolerance) as short as it is: 0.005, 0.999, 1e-04."""
    if value is None:
        return DASH
    return f"{float(value):.4g}"


def signed(value: float | None) -> str:
    text = num(value)
    if value is not None and text != DASH and value > 0:
        return "+" + text
    return text


def interval(bounds: tuple[float | None, float | None] | None, *, sign: bool = True) -> str:
    if not bounds:
        return ""
    fmt = signed if sign else num
    return f"[{fmt(bounds[0])}, {fmt(bounds[1])}]"


def p_value(value: float | None) -> str:
    if value is None:
        return DASH
    if value < 0.001:
        return "<0.001"
    return f"{value:.3f}"


def size(n_bytes: str | float | None) -> str:
    """``187.3 MB`` (decimal units, like container registries show)."""
    try:
        value = float(n_bytes)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return str(n_bytes or DASH)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} GB"  # pragma: no cover - loop always returns


def text(value: object, *, limit: int = MAX_TEXT) -> str:
    """Untrusted text (step summaries, messages, names) made safe for a table cell or a
    list item: one line, no raw HTML, no table breaks, no @-mentions, bounded length."""
    cleaned = str(value if value is not None else "")
    cleaned = re.sub(r"\s*[\r\n]+\s*", " ", cleaned).strip()
    if len(cleaned) > limit:
        cleaned = cleaned[: limit - 1].rstrip() + "…"
    cleaned = cleaned.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    cleaned = cleaned.replace("|", "\\|").replace("`", "\\`")
    # A zero-width joiner keeps "@user" from notifying anyone.
    return re.sub(r"@(?=[A-Za-z0-9])", "@\u200d", cleaned)


def code(value: object) -> str:
    """Inline code for identifiers (image references, URIs); falls back to text if it
    contains backticks."""
    raw = re.sub(r"[\r\n]+", " ", str(value or "")).strip()
    if not raw:
        return DASH
    if "`" in raw:
        return text(raw)
    return f"`{raw.replace('|', '¦')}`"


def link(label: str, url: str | None) -> str:
    """A markdown link for http(s) URLs only (a ``javascript:`` URL from a tampered result
    is shown as text)."""
    if url and re.match(r"^https?://[^\s()<>]+$", url):
        return f"[{text(label)}]({url})"
    return text(label)


def short_sha(commit: str | None) -> str:
    return (commit or "")[:7]
