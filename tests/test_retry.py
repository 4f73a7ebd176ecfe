import pytest

from mlops_ci.retry import RetriesExhausted, RetryableError, RetryPolicy, call_with_retries


class FakeClock:
    def __init__(self):
        self.now = 0.0
        self.sleeps = []

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds

    def __call__(self):
        return self.now


def flaky(failures, wait_s=None):
    calls = {"n": 0}

    def attempt():
        calls["n"] += 1
        if calls["n"] <= failures:
            raise RetryableError("HTTP 502", wait_s=wait_s)
        return "ok"

    return attempt, calls


def test_retries_with_exponential_backoff_until_success():
    clock = FakeClock()
    attempt, calls = flaky(3)
    assert (
        call_with_retries(attempt, RetryPolicy(budget_s=60), what="x", sleep=clock.sleep, clock=clock) == "ok"
    )
    assert calls["n"] == 4 and clock.sleeps == [0.5, 1.0, 2.0]


def test_server_wait_overrides_backoff():
    clock = FakeClock()
    attempt, _ = flaky(1, wait_s=7)
    call_with_retries(attempt, RetryPolicy(budget_s=60), what="x", sleep=clock.sleep, clock=clock)
    assert clock.sleeps == [7]


def test_budget_bounds_the_total_wait():
    clock = FakeClock()
    attempt, calls = flaky(1000)
    with pytest.raises(RetriesExhausted) as info:
        call_with_retries(attempt, RetryPolicy(budget_s=10), what="x", sleep=clock.sleep, clock=clock)
    assert clock.now <= 10 and info.value.attempts == calls["n"]
    assert str(info.value.last) == "HTTP 502"


def test_other_errors_are_not_retried():
    def attempt():
        raise KeyError("bug")

    with pytest.raises(KeyError):
        call_with_retries(attempt, RetryPolicy(), what="x")
