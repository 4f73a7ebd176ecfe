"""Is the canary worse than the stable version? A statistical comparison of the two over one
analysis window, read from each version's own Prometheus ``/metrics``.

What is compared (only the inference endpoints, ``v2_infer`` and ``invocations``: health
checks and the analysis's own scrapes would dilute the numbers; plus the 5xx answers the
server files under ``other``, its label for a request that failed before it was routed to
an endpoint, such as an internal error on a V2 path):

- **Errors**: the share of responses with a 5xx status. 4xx answers are the client's
  problem and reach both versions alike (they are routed at random), so they carry no
  signal about the version. Test: Fisher's exact test on the 2x2 table (version x error),
  one-sided (the canary's error rate is greater). Exact at any sample size, including the
  usual case of zero errors on one side.
- **Latency**: the server's ``request_duration_seconds`` histogram. Individual latencies
  are not available, only bucket counts, so the test is a quantile test (Mood's median
  test generalised to the ``quantile``, 0.95 by default): the threshold ``t`` is the
  histogram bound whose share of slower requests in the *pooled* sample of both versions
  is nearest to ``1 - quantile`` (the server's buckets are coarse: the bound just above
  the pooled quantile may have nearly nothing beyond it), and Fisher's exact test
  asks whether the canary has more requests slower than ``t`` than the stable version.
  Choosing ``t`` from the pooled sample keeps the test exact: if both versions have the
  same latency distribution every split of the pooled requests into the two versions is
  equally likely, ``t`` does not depend on the split, and conditional on the margins the
  count of slow canary requests is hypergeometric. (Choosing ``t`` from the stable sample
  alone would make the stable's tail share small by construction and abort equal canaries
  too often.)

Decision per window: **hold** while either version has fewer than ``min_requests``
inference requests (the caller waits another window, a bounded number of times); **abort**
when a test rejects at ``alpha / 2`` (Bonferroni over the two tests, so an equal canary
is aborted in at most ``alpha`` of the windows) *and* the difference matters in practice
(error rate higher by more than ``max_error_increase``; estimated latency quantile ratio
canary / stable of at least ``max_latency_ratio``); else **promote**. A promotion means
"no evidence that the canary is worse": ``min_requests`` is what gives the tests power.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

PREFIX = "mlops_ci_serving_"
INFERENCE_ENDPOINTS = frozenset({"v2_infer", "invocations"})
UNROUTED_ENDPOINT = "other"  # 5xx answers there are counted: internal errors before routing
PROMOTE, HOLD, ABORT = "promote", "hold", "abort"

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


class MetricsFormatError(ValueError):
    """The text is not the serving container's Prometheus metrics."""


@dataclass(frozen=True)
class VersionMetrics:
    """The counters of one version (cumulative since its start, or over a window).

    ``requests``: inference requests by status code. ``latency``: cumulative histogram
    counts of the inference endpoints, as ``(upper bound, count <= bound)`` pairs in
    ascending order, the last bound ``inf``."""

    requests: Mapping[int, int] = field(default_factory=dict)
    latency: tuple[tuple[float, int], ...] = ()

    @property
    def total(self) -> int:
        return sum(self.requests.values())

    @property
    def errors(self) -> int:
        return sum(count for code, count in self.requests.items() if code >= 500)

    def since(self, earlier: VersionMetrics) -> VersionMetrics:
        """The window between ``earlier`` and this snapshot. A counter that went down means
        the server restarted in between: the window is then everything since the restart."""
        codes = set(self.requests) | set(earlier.requests)
        diff = {code: self.requests.get(code, 0) - earlier.requests.get(code, 0) for code in codes}
        before = dict(earlier.latency)
        latency = tuple((bound, count - before.get(bound, 0)) for bound, count in self.latency)
        if any(v < 0 for v in diff.values()) or any(c < 0 for _, c in latency):
            return self
        return VersionMetrics({c: v for c, v in diff.items() if v}, latency)


def parse_metrics(text: str) -> VersionMetrics:
    """The inference counters in the Prometheus text of ``mlops_ci.serving``'s ``/metrics``."""
    requests: dict[int, int] = {}
    buckets: dict[float, int] = {}
    seen = False
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        match = _SAMPLE.match(line)
        if match is None:
            continue
        name, labels_text, value = match.group(1), match.group(3) or "", match.group(4)
        if not name.startswith(PREFIX):
            continue
        seen = True
        labels = dict(_LABEL.findall(labels_text))
        endpoint = labels.get("endpoint")
        if endpoint not in INFERENCE_ENDPOINTS and endpoint != UNROUTED_ENDPOINT:
            continue
        try:
            number = int(float(value))
            if name == PREFIX + "requests_total":
                code = int(labels["code"])
                if endpoint == UNROUTED_ENDPOINT and code < 500:
                    continue  # unknown paths and the like: the client's problem
                requests[code] = requests.get(code, 0) + number
            elif endpoint == UNROUTED_ENDPOINT:
                continue
            elif name == PREFIX + "request_duration_seconds_bucket":
                bound = math.inf if labels["le"] == "+Inf" else float(labels["le"])
                buckets[bound] = buckets.get(bound, 0) + number
        except (KeyError, ValueError):
            raise MetricsFormatError(f"unreadable sample: {line[:200]}") from None
    if not seen:
        raise MetricsFormatError(f"no {PREFIX}* metrics: is this an mlops-ci serving container?")
    return VersionMetrics(requests, tuple(sorted(buckets.items())))


@dataclass(frozen=True)
class AnalysisConfig:
    alpha: float = 0.05
    min_requests: int = 200  # inference requests of each version in the window
    max_error_increase: float = 0.005  # error-rate difference that is tolerated in practice
    quantile: float = 0.95
    max_latency_ratio: float = 1.25  # canary / stable latency quantile tolerated in practice

    def __post_init__(self) -> None:
        if not 0 < self.alpha < 1:
            raise ValueError(f"`alpha` must be in (0, 1), got {self.alpha}")
        if self.min_requests < 1:
            raise ValueError(f"`min_requests` must be a positive integer, got {self.min_requests}")
        if not 0 <= self.max_error_increase < 1:
            raise ValueError(f"`max_error_increase` must be in [0, 1), got {self.max_error_increase}")
        if not 0 < self.quantile < 1:
            raise ValueError(f"`quantile` must be in (0, 1), got {self.quantile}")
        if self.max_latency_ratio < 1:
            raise ValueError(f"`max_latency_ratio` must be at least 1, got {self.max_latency_ratio}")


@dataclass(frozen=True)
class TestResult:
    """One one-sided test: ``canary`` and ``stable`` are the rates compared (error rate, or
    the share slower than ``threshold``), ``effect`` the practical measure (rate
    difference, or latency quantile ratio), ``worse`` whether it counts against the canary."""

    name: str
    pvalue: float
    canary: float
    stable: float
    effect: float
    worse: bool
    threshold: float | None = None


@dataclass(frozen=True)
class Decision:
    action: str  # promote | hold | abort
    reason: str
    stable_requests: int
    canary_requests: int
    errors: TestResult | None = None
    latency: TestResult | None = None

    def to_dict(self) -> dict[str, object]:
        def test(result: TestResult | None) -> dict[str, object] | None:
            if result is None:
                return None
            return {k: _finite(v) for k, v in result.__dict__.items()}

        return {
            "action": self.action,
            "reason": self.reason,
            "stable_requests": self.stable_requests,
            "canary_requests": self.canary_requests,
            "errors": test(self.errors),
            "latency": test(self.latency),
        }


def _finite(value: object) -> object:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _fisher_greater(canary_hits: int, canary_n: int, stable_hits: int, stable_n: int) -> float:
    """One-sided p-value that the canary's hit rate is greater (Fisher's exact test)."""
    from scipy.stats import fisher_exact

    table = [[canary_hits, canary_n - canary_hits], [stable_hits, stable_n - stable_hits]]
    return float(fisher_exact(table, alternative="greater").pvalue)


def quantile_from_histogram(latency: Iterable[tuple[float, int]], q: float) -> float:
    """The ``q`` quantile by linear interpolation inside its bucket (Prometheus's
    histogram_quantile); the last finite bound when it falls in the +Inf bucket; NaN without data."""
    pairs = list(latency)
    if not pairs or pairs[-1][1] <= 0:
        return math.nan
    rank = q * pairs[-1][1]
    lower_bound, lower_count = 0.0, 0
    for bound, count in pairs:
        if count >= rank:
            if math.isinf(bound):
                return lower_bound
            if count == lower_count:
                return bound
            return lower_bound + (bound - lower_bound) * (rank - lower_count) / (count - lower_count)
        lower_bound, lower_count = bound, count
    return pairs[-1][0]


def error_test(canary: VersionMetrics, stable: VersionMetrics, config: AnalysisConfig) -> TestResult:
    c_rate = canary.errors / canary.total
    s_rate = stable.errors / stable.total
    pvalue = _fisher_greater(canary.errors, canary.total, stable.errors, stable.total)
    difference = c_rate - s_rate
    worse = pvalue < config.alpha / 2 and difference > config.max_error_increase
    return TestResult("error rate", pvalue, c_rate, s_rate, difference, worse)


def latency_test(canary: VersionMetrics, stable: VersionMetrics, config: AnalysisConfig) -> TestResult | None:
    """None when either version has no latency histogram in the window."""
    c_counts, s_counts = dict(canary.latency), dict(stable.latency)
    bounds = sorted(set(c_counts) | set(s_counts))
    if not bounds:
        return None
    c_total, s_total = c_counts.get(math.inf, 0), s_counts.get(math.inf, 0)
    if c_total == 0 or s_total == 0:
        return None
    pooled_total = c_total + s_total
    tail = 1 - config.quantile
    finite = [b for b in bounds if not math.isinf(b)]
    if not finite:
        return None
    # The bound whose pooled share of slower requests is nearest to 1 - quantile.
    threshold = min(
        finite,
        key=lambda b: (
            abs((pooled_total - c_counts.get(b, 0) - s_counts.get(b, 0)) / pooled_total - tail),
            -b,
        ),
    )
    c_slow = c_total - c_counts.get(threshold, 0)
    s_slow = s_total - s_counts.get(threshold, 0)
    pvalue = _fisher_greater(c_slow, c_total, s_slow, s_total)
    c_q = quantile_from_histogram(canary.latency, config.quantile)
    s_q = quantile_from_histogram(stable.latency, config.quantile)
    ratio = c_q / s_q if s_q > 0 else (math.inf if c_q > 0 else 1.0)
    worse = pvalue < config.alpha / 2 and ratio >= config.max_latency_ratio
    return TestResult(
        f"latency p{config.quantile * 100:g}",
        pvalue,
        c_slow / c_total,
        s_slow / s_total,
        ratio,
        worse,
        threshold=threshold,
    )


def analyse(canary: VersionMetrics, stable: VersionMetrics, config: AnalysisConfig) -> Decision:
    """Promote, hold or abort, from one window of both versions' counters."""
    n_c, n_s = canary.total, stable.total
    if n_c < config.min_requests or n_s < config.min_requests:
        return Decision(
            HOLD,
            f"not enough requests to decide: canary {n_c}, stable {n_s}, at least "
            f"{config.min_requests} each needed",
            n_s,
            n_c,
        )
    errors = error_test(canary, stable, config)
    latency = latency_test(canary, stable, config)
    found = []
    if errors.worse:
        found.append(
            f"canary errors {errors.canary:.2%} vs stable {errors.stable:.2%} (p={errors.pvalue:.2g})"
        )
    if latency is not None and latency.worse:
        found.append(
            f"canary latency p{config.quantile * 100:g} {latency.effect:.2f}x the stable's, "
            f"{latency.canary:.1%} vs {latency.stable:.1%} slower than {latency.threshold:g} s "
            f"(p={latency.pvalue:.2g})"
        )
    if found:
        return Decision(ABORT, "; ".join(found), n_s, n_c, errors, latency)
    summary = f"errors {errors.canary:.2%} vs {errors.stable:.2%} (p={errors.pvalue:.2g})"
    if latency is not None:
        summary += f", latency ratio {latency.effect:.2f} (p={latency.pvalue:.2g})"
    return Decision(PROMOTE, f"no evidence the canary is worse: {summary}", n_s, n_c, errors, latency)
