"""Prometheus metrics, kept in plain Python counters: recording a request costs about a
microsecond. Only the event-loop thread records, so no locks are needed."""

from __future__ import annotations

import os
import time
from bisect import bisect_left
from collections import defaultdict

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
ROWS_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096, 16384, 65536)
PREFIX = "mlops_ci_serving_"


class Histogram:
    __slots__ = ("buckets", "counts", "sum")

    def __init__(self, buckets: tuple[float, ...]) -> None:
        self.buckets = buckets
        self.counts = [0] * (len(buckets) + 1)
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.buckets, value)] += 1
        self.sum += value

    def lines(self, name: str, labels: str) -> list[str]:
        sep = "," if labels else ""
        out = []
        total = 0
        for bound, count in zip(self.buckets, self.counts, strict=False):
            total += count
            out.append(f'{name}_bucket{{{labels}{sep}le="{bound:g}"}} {total}')
        total += self.counts[-1]
        out.append(f'{name}_bucket{{{labels}{sep}le="+Inf"}} {total}')
        braces = f"{{{labels}}}" if labels else ""
        out.append(f"{name}_sum{braces} {self.sum:.6f}")
        out.append(f"{name}_count{braces} {total}")
        return out


class Metrics:
    def __init__(self, model: str, version: str) -> None:
        self.model = _escape(model)
        self.version = _escape(version)
        self.requests: dict[tuple[str, int], int] = defaultdict(int)
        self.errors: dict[tuple[str, str], int] = defaultdict(int)
        self.latency: dict[str, Histogram] = {}
        self.inference = Histogram(LATENCY_BUCKETS)
        self.rows = Histogram(ROWS_BUCKETS)
        self.in_flight = 0
        self.ready = False
        self.request_log_written = 0
        self.request_log_dropped = 0
        self.started = time.time()

    def record(self, endpoint: str, status: int, seconds: float) -> None:
        self.requests[(endpoint, status)] += 1
        histogram = self.latency.get(endpoint)
        if histogram is None:
            histogram = self.latency[endpoint] = Histogram(LATENCY_BUCKETS)
        histogram.observe(seconds)

    def record_response(
        self, endpoint: str, status: int, seconds: float, reason: str | None, rows: int, inference_s: float
    ) -> None:
        """``record``, ``record_error`` (with a reason) and ``record_inference`` (with rows)
        of one response, in one call."""
        self.requests[(endpoint, status)] += 1
        histogram = self.latency.get(endpoint)
        if histogram is None:
            histogram = self.latency[endpoint] = Histogram(LATENCY_BUCKETS)
        histogram.counts[bisect_left(LATENCY_BUCKETS, seconds)] += 1
        histogram.sum += seconds
        if reason is not None:
            self.errors[(endpoint, reason)] += 1
        if rows:
            self.rows.observe(rows)
            self.inference.observe(inference_s)

    def record_error(self, endpoint: str, reason: str) -> None:
        self.errors[(endpoint, reason)] += 1

    def record_inference(self, rows: int, seconds: float) -> None:
        self.rows.observe(rows)
        self.inference.observe(seconds)

    def render(self) -> str:
        p = PREFIX
        lines = [
            f"# HELP {p}model_info The model this server serves.",
            f"# TYPE {p}model_info gauge",
            f'{p}model_info{{model="{self.model}",version="{self.version}"}} 1',
            f"# HELP {p}ready 1 once the model is loaded and warmed up, 0 while starting or stopping.",
            f"# TYPE {p}ready gauge",
            f"{p}ready {1 if self.ready else 0}",
            f"# HELP {p}requests_total HTTP requests by endpoint and status code.",
            f"# TYPE {p}requests_total counter",
        ]
        for (endpoint, status), count in sorted(self.requests.items()):
            lines.append(f'{p}requests_total{{endpoint="{endpoint}",code="{status}"}} {count}')
        lines += [
            f"# HELP {p}errors_total Requests answered with an error, by endpoint and reason.",
            f"# TYPE {p}errors_total counter",
        ]
        for (endpoint, reason), count in sorted(self.errors.items()):
            lines.append(f'{p}errors_total{{endpoint="{endpoint}",reason="{reason}"}} {count}')
        lines += [
            f"# HELP {p}request_duration_seconds Time from a complete request to its response, by endpoint.",
            f"# TYPE {p}request_duration_seconds histogram",
        ]
        for endpoint, histogram in sorted(self.latency.items()):
            lines += histogram.lines(f"{p}request_duration_seconds", f'endpoint="{endpoint}"')
        lines += [
            f"# HELP {p}inference_duration_seconds Time spent in ONNX Runtime per request.",
            f"# TYPE {p}inference_duration_seconds histogram",
            *self.inference.lines(f"{p}inference_duration_seconds", ""),
            f"# HELP {p}batch_rows Rows per inference request.",
            f"# TYPE {p}batch_rows histogram",
            *self.rows.lines(f"{p}batch_rows", ""),
            f"# HELP {p}in_flight_requests Requests being processed.",
            f"# TYPE {p}in_flight_requests gauge",
            f"{p}in_flight_requests {self.in_flight}",
            f"# HELP {p}request_log_records_total Records written to the request log.",
            f"# TYPE {p}request_log_records_total counter",
            f"{p}request_log_records_total {self.request_log_written}",
            f"# HELP {p}request_log_dropped_total Records dropped because the request log fell behind.",
            f"# TYPE {p}request_log_dropped_total counter",
            f"{p}request_log_dropped_total {self.request_log_dropped}",
        ]
        lines += _process_lines(self.started)
        return "\n".join(lines) + "\n"


def _process_lines(started: float) -> list[str]:
    lines = [
        "# HELP process_start_time_seconds Start time of the process since the Unix epoch.",
        "# TYPE process_start_time_seconds gauge",
        f"process_start_time_seconds {started:.3f}",
    ]
    times = os.times()
    lines += [
        "# HELP process_cpu_seconds_total User and system CPU time spent.",
        "# TYPE process_cpu_seconds_total counter",
        f"process_cpu_seconds_total {times.user + times.system:.3f}",
    ]
    rss = resident_memory_bytes()
    if rss is not None:
        lines += [
            "# HELP process_resident_memory_bytes Resident memory size in bytes.",
            "# TYPE process_resident_memory_bytes gauge",
            f"process_resident_memory_bytes {rss}",
        ]
    peak = max_resident_memory_bytes()
    if peak is not None:
        lines += [
            "# HELP process_resident_memory_max_bytes Largest resident memory size since the start, in bytes.",
            "# TYPE process_resident_memory_max_bytes gauge",
            f"process_resident_memory_max_bytes {peak}",
        ]
    return lines


def resident_memory_bytes() -> int | None:
    try:
        with open("/proc/self/statm", encoding="ascii") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def max_resident_memory_bytes() -> int | None:
    """Peak resident memory of this process image: what the profile step sizes memory
    requests by. Linux: VmHWM (ru_maxrss would count the parent's memory at fork time,
    which exec does not reset); elsewhere ru_maxrss (bytes on macOS)."""
    try:
        with open("/proc/self/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        import resource
        import sys

        peak = int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
        return peak if sys.platform == "darwin" else peak * 1024
    except (ImportError, OSError, ValueError):
        return None


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
