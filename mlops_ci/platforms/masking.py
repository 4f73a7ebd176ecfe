"""Keeping secrets out of what this process writes.

Every token the tool is given is registered here; ``redact`` replaces it in any text, and
``RedactingFilter`` (installed on the CLI's log handler) does the same for every log record,
so a token that reaches an exception message or a debug line is never printed. GitHub's
``::add-mask::`` also covers the runner's own log; GitLab has no runtime masking, so this
is the only guard there.
"""

from __future__ import annotations

import logging
import threading

MASK = "***"
# Shorter values would mask ordinary words and digits.
MIN_SECRET_LENGTH = 6

_secrets: set[str] = set()
_lock = threading.Lock()


def register_secret(secret: str | None) -> None:
    if secret and len(secret) >= MIN_SECRET_LENGTH:
        with _lock:
            _secrets.add(secret)


def redact(text: str) -> str:
    """``text`` with every registered secret replaced by ``***`` (longest first, so a secret
    that contains another is replaced whole)."""
    with _lock:
        secrets = sorted(_secrets, key=len, reverse=True)
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def clear_secrets() -> None:
    """Forget every registered secret (for tests that run several commands in one process)."""
    with _lock:
        _secrets.clear()


class RedactingFilter(logging.Filter):
    """Rewrites a record's message with secrets masked (the formatted message, so secrets
    in ``args`` are caught too)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not _secrets:
            return True
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and record.exc_info[1] is not None:
            # The formatter would print the exception text unmasked; keep its masked form only.
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True
