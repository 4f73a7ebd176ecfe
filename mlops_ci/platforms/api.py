"""Calling a code host's REST API with one bounded retry budget.

PyGithub and python-gitlab each have retry logic of their own (urllib3's Retry with up to
10 attempts and rate-limit sleeps of up to an hour; python-gitlab's 10 retries on 429).
Both are switched off by the adapters, and every call goes through ``ApiSession.call``
instead: 5xx answers, connection errors and rate limits are retried with exponential
backoff or the server's ``Retry-After`` / ``x-ratelimit-reset`` / ``RateLimit-Reset``, and
the total waiting across all calls of one publication never exceeds the retry budget
(``--retry-timeout``). A rate limit that resets after the budget ends fails at once, with
the reset time in the message, instead of sleeping past it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import TypeVar

from mlops_ci.errors import ExternalServiceError
from mlops_ci.platforms.masking import redact
from mlops_ci.retry import RetriesExhausted, RetryableError, RetryPolicy, call_with_retries

log = logging.getLogger(__name__)
T = TypeVar("T")

# A value below this is a number of seconds, above it a Unix time (RateLimit-Reset is a
# delta in the IETF draft but a Unix time on GitLab).
_EPOCH_THRESHOLD = 1_000_000_000
# GitHub asks to wait at least a minute after a secondary rate limit without headers.
SECONDARY_RATE_LIMIT_WAIT_S = 60.0


class PermissionDenied(Exception):
    """The host refused the request for lack of permission (401, 403 that is not a rate
    limit, 404 on a resource the token cannot see). Not retried: the gate degrades."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status
        self.message = message


class ApiRequestError(Exception):
    """Any other 4xx: the request itself was wrong (a bug or an unexpected server)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status


def header(headers: Mapping[str, str] | None, name: str) -> str | None:
    if not headers:
        return None
    lowered = name.lower()
    for key, value in headers.items():
        if key.lower() == lowered:
            return str(value)
    return None


def wait_from_headers(headers: Mapping[str, str] | None, *, now: float | None = None) -> float | None:
    """Seconds the server asked us to wait, from ``Retry-After`` (seconds or an HTTP date),
    else ``x-ratelimit-reset`` / ``RateLimit-Reset`` (a Unix time, or seconds); None if
    the server said nothing."""
    now = time.time() if now is None else now
    retry_after = header(headers, "Retry-After")
    if retry_after:
        retry_after = retry_after.strip()
        try:
            return max(0.0, float(retry_after))
        except ValueError:
            try:
                when = parsedate_to_datetime(retry_after)
            except (TypeError, ValueError):
                when = None
            if when is not None:
                if when.tzinfo is None:
                    when = when.replace(tzinfo=timezone.utc)
                return max(0.0, when.timestamp() - now)
    for name in ("x-ratelimit-reset", "RateLimit-Reset"):
        value = header(headers, name)
        if not value:
            continue
        try:
            number = float(value.strip())
        except ValueError:
            continue
        if number >= _EPOCH_THRESHOLD:
            # Whole seconds: the reset happens somewhere within that second.
            return max(0.0, number - now) + 1.0
        return max(0.0, number)
    return None


def describe_wait(seconds: float) -> str:
    until = datetime.fromtimestamp(time.time() + seconds, timezone.utc).strftime("%H:%M:%S UTC")
    return f"{seconds:.0f} s (until {until})"


class ApiSession:
    """One publication's worth of API calls sharing one deadline.

    ``classify`` turns a client library's exception into RetryableError (retry),
    PermissionDenied or ApiRequestError (raise), or returns None (not an API error: let it
    propagate as a bug).
    """

    def __init__(
        self,
        *,
        service: str,
        policy: RetryPolicy,
        classify: Callable[[BaseException], Exception | None],
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.service = service
        self.policy = policy
        self.classify = classify
        self.sleep = sleep
        self.clock = clock
        self.deadline = clock() + policy.budget_s

    def call(self, what: str, attempt: Callable[[], T]) -> T:
        def translated() -> T:
            try:
                return attempt()
            except (RetryableError, PermissionDenied, ApiRequestError):
                raise
            except Exception as exc:  # classified below; re-raised when not an API error
                mapped = self.classify(exc)
                if mapped is None:
                    raise
                raise mapped from None

        remaining = max(0.0, self.deadline - self.clock())
        policy = RetryPolicy(
            budget_s=remaining,
            first_delay_s=self.policy.first_delay_s,
            max_delay_s=self.policy.max_delay_s,
            factor=self.policy.factor,
        )
        try:
            return call_with_retries(
                translated, policy, what=f"{self.service}: {what}", sleep=self.sleep, clock=self.clock
            )
        except RetriesExhausted as exc:
            wait = exc.last.wait_s
            if wait is not None and wait > remaining:
                hint = (
                    f"the server asked to wait {describe_wait(wait)}, longer than the "
                    f"{self.policy.budget_s:.0f} s retry budget; raise retry-timeout or rerun later"
                )
            else:
                hint = f"is {self.service} up? rerun the job, or raise retry-timeout"
            raise ExternalServiceError(
                redact(
                    f"{self.service} failed to {what} after {exc.attempts} tries in "
                    f"{exc.elapsed_s:.0f} s ({exc.last}); {hint}"
                )
            ) from None
