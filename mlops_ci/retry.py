"""Bounded retries with exponential backoff, shared by every client of an external service."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")


class RetryableError(Exception):
    """Raised by an attempt that may succeed later; ``wait_s`` overrides the backoff
    (a server's Retry-After or rate-limit reset)."""

    def __init__(self, message: str, *, wait_s: float | None = None) -> None:
        super().__init__(message)
        self.wait_s = wait_s


@dataclass(frozen=True)
class RetryPolicy:
    budget_s: float = 60.0
    first_delay_s: float = 0.5
    max_delay_s: float = 10.0
    factor: float = 2.0

    def __post_init__(self) -> None:
        if self.budget_s < 0:
            raise ValueError(f"`budget_s` must be non-negative, got {self.budget_s}")


class RetriesExhausted(Exception):
    def __init__(self, last: RetryableError, attempts: int, elapsed_s: float) -> None:
        super().__init__(str(last))
        self.last = last
        self.attempts = attempts
        self.elapsed_s = elapsed_s


def call_with_retries(
    attempt: Callable[[], T],
    policy: RetryPolicy,
    *,
    what: str,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> T:
    """Call ``attempt`` until it returns, retrying on RetryableError within the time budget.

    Any other exception propagates at once. When the budget is spent, RetriesExhausted
    carries the last error so the caller can word one actionable message.
    """
    start = clock()
    delay = policy.first_delay_s
    attempts = 0
    while True:
        attempts += 1
        try:
            return attempt()
        except RetryableError as error:
            elapsed = clock() - start
            wait = error.wait_s if error.wait_s is not None else delay
            if elapsed + wait > policy.budget_s:
                raise RetriesExhausted(error, attempts, elapsed) from error
            log.info("%s failed (%s); retrying in %.1f s", what, error, wait)
            sleep(wait)
            delay = min(delay * policy.factor, policy.max_delay_s)
