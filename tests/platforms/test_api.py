"""The pieces under the platform adapters: rate-limit headers, the shared retry budget,
secret masking, workflow commands, comment markers."""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from email.utils import format_datetime

import pytest

from mlops_ci.errors import ExternalServiceError, UsageError
from mlops_ci.platforms import comments
from mlops_ci.platforms.api import ApiSession, PermissionDenied, wait_from_headers
from mlops_ci.platforms.github import escape_data, escape_property
from mlops_ci.platforms.masking import RedactingFilter, clear_secrets, redact, register_secret
from mlops_ci.retry import RetryableError, RetryPolicy

NOW = 1_800_000_000.0


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Retry-After": "7"}, 7.0),
        ({"retry-after": "0"}, 0.0),
        ({"Retry-After": format_datetime(datetime.fromtimestamp(NOW + 30, timezone.utc), usegmt=True)}, 30.0),
        ({"x-ratelimit-reset": str(int(NOW) + 5)}, 6.0),  # + 1 s: the reset is within that second
        ({"RateLimit-Reset": str(int(NOW) + 5)}, 6.0),  # GitLab: a Unix time
        ({"RateLimit-Reset": "12"}, 12.0),  # IETF draft: seconds
        ({"x-ratelimit-reset": str(int(NOW) - 100)}, 1.0),  # already past
        ({"Retry-After": "3", "x-ratelimit-reset": str(int(NOW) + 50)}, 3.0),  # Retry-After wins
        ({"Retry-After": "soon"}, None),
        ({}, None),
    ],
)
def test_wait_from_headers(headers, expected):
    assert wait_from_headers(headers, now=NOW) == expected


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def sleep(self, seconds):
        self.now += seconds

    def __call__(self):
        return self.now


def test_one_budget_bounds_all_calls_of_a_publication():
    clock = FakeClock()
    session = ApiSession(
        service="Forge",
        policy=RetryPolicy(budget_s=10),
        classify=lambda e: None,
        sleep=clock.sleep,
        clock=clock,
    )
    attempts = {"n": 0}

    def flaky():
        attempts["n"] += 1
        if attempts["n"] <= 3:
            raise RetryableError("HTTP 502", wait_s=2)
        return "ok"

    assert session.call("first", flaky) == "ok" and clock.now == 6
    with pytest.raises(ExternalServiceError, match=r"Forge failed to second after 3 tries .*HTTP 503"):
        session.call("second", lambda: (_ for _ in ()).throw(RetryableError("HTTP 503", wait_s=2)))
    assert clock.now == 10  # 4 s were left for the second call, not a fresh 10 s


def test_a_wait_beyond_the_budget_fails_at_once_naming_it():
    clock = FakeClock()
    session = ApiSession(
        service="Forge",
        policy=RetryPolicy(budget_s=60),
        classify=lambda e: None,
        sleep=clock.sleep,
        clock=clock,
    )
    with pytest.raises(
        ExternalServiceError, match=r"asked to wait 3600 s \(until .*UTC\), longer than the 60 s retry budget"
    ):
        session.call(
            "list", lambda: (_ for _ in ()).throw(RetryableError("HTTP 403 rate limited", wait_s=3600))
        )
    assert clock.now == 0


def test_permission_errors_are_not_retried_and_unknown_errors_propagate():
    calls = {"n": 0}

    def refused():
        calls["n"] += 1
        raise KeyError("boom")

    session = ApiSession(
        service="Forge",
        policy=RetryPolicy(budget_s=60),
        classify=lambda e: PermissionDenied(403, "nope") if isinstance(e, KeyError) else None,
    )
    with pytest.raises(PermissionDenied):
        session.call("write", refused)
    assert calls["n"] == 1
    bare = ApiSession(service="Forge", policy=RetryPolicy(budget_s=60), classify=lambda e: None)
    with pytest.raises(ZeroDivisionError):
        bare.call("divide", lambda: 1 / 0)


def test_secrets_are_masked_in_text_and_log_records():
    register_secret("s3cr3t-token-value")
    register_secret("abc")  # too short to mask without mangling ordinary text
    try:
        assert redact("Authorization: token s3cr3t-token-value; abc") == "Authorization: token ***; abc"
        record = logging.LogRecord(
            "mlops_ci", logging.INFO, __file__, 1, "token %s", ("s3cr3t-token-value",), None
        )
        assert RedactingFilter().filter(record) and record.getMessage() == "token ***"
        try:
            raise RuntimeError("failed with s3cr3t-token-value")
        except RuntimeError:
            import sys

            record = logging.LogRecord("mlops_ci", logging.ERROR, __file__, 1, "oops", (), sys.exc_info())
        RedactingFilter().filter(record)
        assert "s3cr3t" not in logging.Formatter().format(record) and "***" in record.exc_text
    finally:
        clear_secrets()


def test_workflow_command_escaping():
    assert escape_data("50% done\r\nnext") == "50%25 done%0D%0Anext"
    assert escape_property("a:b,c") == "a%3Ab%2Cc"


def test_comment_keys_and_markers():
    assert comments.marker("census/v2") == "<!-- mlops-ci:census/v2 -->"
    for bad in ("", "two words", "x-->", "-start", "a" * 65):
        with pytest.raises(UsageError):
            comments.check_key(bad)
    body = comments.marker("k") + "\n" + comments.meta_line(pipeline=12, commit="abc") + "\ntext"
    assert comments.owns(body, "k") and not comments.owns(body, "other")
    assert not comments.owns("quoted: " + body, "k")
    assert comments.pipeline_of(body) == 12 and comments.pipeline_of("no meta") is None
