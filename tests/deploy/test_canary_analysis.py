"""The canary analysis (mlops_ci/deploy/canary_analysis.py): both sides of each decision in
simulation (an equal canary passes at the stated alpha; 5 % errors against none, or twice
the latency, is aborted with high power; below the minimum it holds), and the metrics read
from the text the serving container itself renders."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mlops_ci.deploy.canary_analysis import (
    ABORT,
    HOLD,
    PROMOTE,
    AnalysisConfig,
    MetricsFormatError,
    VersionMetrics,
    analyse,
    parse_metrics,
    quantile_from_histogram,
)
from mlops_ci.serving.metrics import Metrics

SIMULATIONS = 300
# No practical tolerance: the statistical tests alone decide, so their level is what is measured.
STRICT = AnalysisConfig(alpha=0.05, min_requests=100, max_error_increase=0.0, max_latency_ratio=1.0)


def simulated(rng, n: int, *, error_rate: float, latency_scale: float) -> VersionMetrics:
    """What the serving container's /metrics would count for ``n`` requests: errors at
    ``error_rate``, log-normal latencies around ``latency_scale`` seconds, bucketed like the
    server does."""
    metrics = Metrics("m", "1")
    errors = rng.random(n) < error_rate
    latencies = latency_scale * rng.lognormal(0.0, 0.35, n)
    for failed, seconds in zip(errors, latencies, strict=True):
        metrics.record("v2_infer", 500 if failed else 200, float(seconds))
    return parse_metrics(metrics.render())


def abort_rate(*, canary_errors: float, canary_latency: float, config: AnalysisConfig, seed: int) -> float:
    rng = np.random.default_rng(seed)
    aborted = 0
    for _ in range(SIMULATIONS):
        stable = simulated(rng, 900, error_rate=0.0 if canary_errors > 0.01 else 0.01, latency_scale=0.004)
        canary = simulated(rng, 300, error_rate=canary_errors, latency_scale=canary_latency)
        aborted += analyse(canary, stable, config).action == ABORT
    return aborted / SIMULATIONS


def test_an_equal_canary_is_promoted_at_the_stated_alpha():
    rate = abort_rate(canary_errors=0.01, canary_latency=0.004, config=STRICT, seed=1)
    # The level is 0.05; three standard errors of the simulation above it would be a failure.
    assert rate <= 0.05 + 3 * math.sqrt(0.05 * 0.95 / SIMULATIONS), rate


def test_five_percent_errors_against_none_are_aborted():
    assert abort_rate(canary_errors=0.05, canary_latency=0.004, config=AnalysisConfig(), seed=2) >= 0.95


def test_twice_the_latency_is_aborted():
    assert abort_rate(canary_errors=0.01, canary_latency=0.008, config=AnalysisConfig(), seed=3) >= 0.95


def test_a_small_difference_within_the_tolerance_is_promoted():
    """Significant but harmless: 0.3 % more errors with a tolerance of 0.5 % promotes."""
    stable = VersionMetrics({200: 100_000}, ((0.01, 100_000), (math.inf, 100_000)))
    canary = VersionMetrics({200: 99_700, 500: 300}, ((0.01, 100_000), (math.inf, 100_000)))
    decision = analyse(canary, stable, AnalysisConfig(max_error_increase=0.005))
    assert decision.errors.pvalue < 1e-6
    assert decision.action == PROMOTE
    assert analyse(canary, stable, AnalysisConfig(max_error_increase=0.001)).action == ABORT


def test_below_the_minimum_it_holds_and_at_the_minimum_it_decides():
    stable = VersionMetrics({200: 500}, ((0.01, 500), (math.inf, 500)))
    few = VersionMetrics({200: 99}, ((0.01, 99), (math.inf, 99)))
    decision = analyse(few, stable, AnalysisConfig(min_requests=100))
    assert decision.action == HOLD and decision.errors is None
    assert "canary 99, stable 500, at least 100 each" in decision.reason
    enough = VersionMetrics({200: 100}, ((0.01, 100), (math.inf, 100)))
    assert analyse(enough, stable, AnalysisConfig(min_requests=100)).action == PROMOTE
    # Even a canary that fails every request waits for the minimum.
    broken = VersionMetrics({500: 99}, ((0.01, 99), (math.inf, 99)))
    assert analyse(broken, stable, AnalysisConfig(min_requests=100)).action == HOLD


def test_the_metrics_the_server_renders_are_read_and_windowed():
    metrics = Metrics("census", "3")
    metrics.record("v2_infer", 200, 0.002)
    metrics.record("v2_infer", 500, 0.02)
    metrics.record("invocations", 200, 0.0007)
    metrics.record("metrics", 200, 0.0001)  # scrapes and health checks are not inference
    metrics.record("v2_ready", 200, 0.0001)
    metrics.record("other", 404, 0.0001)  # an unknown path: not counted
    metrics.record("other", 500, 0.0001)  # an internal error before routing: counted
    before = parse_metrics(metrics.render())
    assert (before.total, before.errors) == (4, 2)
    assert dict(before.latency)[0.0025] == 2 and dict(before.latency)[math.inf] == 3
    metrics.record("v2_infer", 200, 0.003)
    window = parse_metrics(metrics.render()).since(before)
    assert window.requests == {200: 1}
    assert dict(window.latency)[0.0025] == 0 and dict(window.latency)[0.005] == 1
    # A restart in between (counters went down): the window is what the new process counted.
    restarted = Metrics("census", "3")
    restarted.record("v2_infer", 200, 0.002)
    assert parse_metrics(restarted.render()).since(before).total == 1


def test_text_that_is_not_the_servers_metrics_is_refused():
    with pytest.raises(MetricsFormatError, match="no mlops_ci_serving_"):
        parse_metrics("up 1\n")


def test_quantile_from_histogram():
    latency = ((0.001, 0), (0.002, 50), (0.004, 100), (math.inf, 100))
    assert quantile_from_histogram(latency, 0.5) == pytest.approx(0.002)
    assert quantile_from_histogram(latency, 0.75) == pytest.approx(0.003)
    assert quantile_from_histogram(((0.001, 0), (math.inf, 5)), 0.95) == 0.001
    assert math.isnan(quantile_from_histogram((), 0.95))


@pytest.mark.parametrize(
    ("field", "value"), [("alpha", 0.0), ("min_requests", 0), ("quantile", 1.0), ("max_latency_ratio", 0.9)]
)
def test_bad_settings_name_the_parameter(field, value):
    with pytest.raises(ValueError, match=f"`{field}` must"):
        AnalysisConfig(**{field: value})
