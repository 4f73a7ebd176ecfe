"""End-to-end sweeps against a running server: concurrency levels under each CPU limit,
and the smallest memory limit under which the server survives the heaviest load.

Each point: a short warm-up at the point's concurrency (the asyncio client: it opens the
connections and fills the caches), then the measured run with the chosen generator, with
the server's CPU seconds and resident memory read from ``/metrics`` before and after.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from mlops_ci.profiling.loadgen import AsyncioGenerator, LoadGenerator, LoadResult
from mlops_ci.profiling.payload import Request
from mlops_ci.profiling.targets import Target, TargetStartError

log = logging.getLogger(__name__)

# A point that gains less than this over the previous concurrency while breaking the
# latency objective means the server is saturated: higher concurrency only adds queueing.
SATURATION_GAIN = 1.05
# Under a memory limit the server must keep this share of the throughput it reaches under
# the largest limit tried: surviving by thrashing is not running.
MEMORY_THROUGHPUT_SHARE = 0.8

StartTarget = Callable[[float | None, int | None], Target]
Progress = Callable[[str], None]


@dataclass(frozen=True)
class E2EPoint:
    cpus: float | None  # the CPU limit; None: not limited
    concurrency: int
    load: LoadResult
    cpu_cores: float | None  # cores the server used during the run (from /metrics)
    rss_bytes: int | None

    @property
    def rps(self) -> float:
        return self.load.rps

    @property
    def p50_ms(self) -> float:
        return self.load.p50_ms

    @property
    def p99_ms(self) -> float:
        return self.load.p99_ms

    @property
    def error_rate(self) -> float:
        return self.load.error_rate

    def to_dict(self) -> dict[str, Any]:
        return {
            "cpus": self.cpus,
            "concurrency": self.concurrency,
            "cpu_cores": self.cpu_cores,
            "rss_bytes": self.rss_bytes,
            **self.load.to_dict(),
        }


@dataclass(frozen=True)
class MemoryProbe:
    limit_bytes: int
    passed: bool
    oom_killed: bool
    message: str
    rss_max_bytes: int | None = None
    load: LoadResult | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "limit_bytes": self.limit_bytes,
            "passed": self.passed,
            "oom_killed": self.oom_killed,
            "message": self.message,
            "rss_max_bytes": self.rss_max_bytes,
            "load": self.load.to_dict() if self.load else None,
        }


@dataclass
class Sweep:
    target: str  # container | serve | endpoint
    generator: str
    points: list[E2EPoint] = field(default_factory=list)
    ceiling: LoadResult | None = None
    memory_probes: list[MemoryProbe] = field(default_factory=list)
    peak_rss_bytes: int | None = None
    notes: list[str] = field(default_factory=list)

    def by_cpus(self) -> dict[float | None, list[E2EPoint]]:
        groups: dict[float | None, list[E2EPoint]] = {}
        for point in self.points:
            groups.setdefault(point.cpus, []).append(point)
        return groups

    @property
    def smallest_memory_bytes(self) -> int | None:
        passed = [p.limit_bytes for p in self.memory_probes if p.passed]
        return min(passed) if passed else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "generator": self.generator,
            "ceiling": self.ceiling.to_dict() if self.ceiling else None,
            "points": [p.to_dict() for p in self.points],
            "memory_probes": [p.to_dict() for p in self.memory_probes],
            "smallest_memory_bytes": self.smallest_memory_bytes,
            "peak_rss_bytes": self.peak_rss_bytes,
            "notes": list(self.notes),
        }


def e2e_sweep(
    start: StartTarget,
    generator: LoadGenerator,
    request: Request,
    *,
    target_kind: str,
    cpus_levels: Sequence[float | None],
    concurrency: Sequence[int],
    duration_s: float,
    warmup_s: float,
    slo_p99_ms: float | None,
    progress: Progress | None = None,
) -> Sweep:
    """Every concurrency level under every CPU limit (largest limit first: the generator's
    ceiling is measured there, where the server is least in the way)."""
    say = progress or (lambda _: None)
    sweep = Sweep(target=target_kind, generator=generator.name)
    levels = sorted(cpus_levels, key=lambda c: float("inf") if c is None else c, reverse=True)
    for cpus in levels:
        where = "no CPU limit" if cpus is None else f"{cpus:g} CPU"
        try:
            target = start(cpus, None)
        except TargetStartError as exc:
            sweep.notes.append(f"{where}: the server did not start ({exc}); no points measured")
            say(f"{where}: the server did not start: {exc}")
            continue
        with target:
            if sweep.ceiling is None:
                sweep.ceiling = generator.ceiling(
                    target.url, concurrency=max(concurrency), duration_s=duration_s
                )
                say(
                    f"load generator ceiling ({generator.name}, GET /v2/health/live, "
                    f"{max(concurrency)} connections): {sweep.ceiling.rps:,.0f} req/s"
                )
            previous: E2EPoint | None = None
            for level in sorted(concurrency):
                point = _measure(target, generator, request, cpus, level, duration_s, warmup_s)
                sweep.points.append(point)
                _note_peak(sweep, point.rss_bytes)
                say(
                    f"{where}, {level} concurrent: {point.rps:,.0f} req/s, p50 {point.p50_ms:.2f} ms, "
                    f"p99 {point.p99_ms:.2f} ms, errors {point.error_rate:.2%}"
                    + (f", {point.cpu_cores:.2f} cores" if point.cpu_cores is not None else "")
                )
                state = target.state()
                if not state.running:
                    why = "ran out of memory" if state.oom_killed else f"exited ({state.exit_code})"
                    sweep.notes.append(f"{where}: the server {why} at {level} concurrent requests")
                    break
                if point.error_rate > 0.5:
                    sweep.notes.append(
                        f"{where}: {point.error_rate:.0%} of requests failed at {level} concurrent; higher levels skipped"
                    )
                    break
                if (
                    previous is not None
                    and slo_p99_ms is not None
                    and point.p99_ms > slo_p99_ms
                    and point.rps < previous.rps * SATURATION_GAIN
                ):
                    higher = [c for c in concurrency if c > level]
                    if higher:
                        sweep.notes.append(
                            f"{where}: saturated at {level} concurrent (throughput flat, p99 above the objective); "
                            f"{', '.join(map(str, higher))} skipped"
                        )
                    break
                previous = point
            usage = target.usage()
            if usage is not None:
                _note_peak(sweep, usage.rss_max_bytes)
    return sweep


def _measure(
    target: Target,
    generator: LoadGenerator,
    request: Request,
    cpus: float | None,
    concurrency: int,
    duration_s: float,
    warmup_s: float,
) -> E2EPoint:
    if warmup_s > 0:
        AsyncioGenerator().run(target.url, request, concurrency=concurrency, duration_s=warmup_s)
    before = target.usage()
    load = generator.run(target.url, request, concurrency=concurrency, duration_s=duration_s)
    after = target.usage()
    cores = None
    rss = None
    if before is not None and after is not None:
        if before.cpu_seconds is not None and after.cpu_seconds is not None and load.duration_s > 0:
            cores = max(0.0, (after.cpu_seconds - before.cpu_seconds) / load.duration_s)
        rss = after.rss_bytes
    return E2EPoint(cpus, concurrency, load, cores, rss)


def _note_peak(sweep: Sweep, value: int | None) -> None:
    if value is not None and (sweep.peak_rss_bytes is None or value > sweep.peak_rss_bytes):
        sweep.peak_rss_bytes = value


def memory_search(
    start: StartTarget,
    generator: LoadGenerator,
    request: Request,
    *,
    ladder: Sequence[int],
    cpus: float | None,
    concurrency: int,
    duration_s: float,
    max_error_rate: float,
    progress: Progress | None = None,
) -> list[MemoryProbe]:
    """The smallest limit of ``ladder`` under which the server starts and serves
    ``request`` at ``concurrency`` for ``duration_s``: not OOM-killed, within the error
    budget, and at least ``MEMORY_THROUGHPUT_SHARE`` of the throughput it reaches under the
    largest limit (a server short of memory can survive by evicting its own code pages,
    and crawl). The largest limit is run first as that baseline; the rest is a binary
    search (passing is monotone in the limit): 8 limits cost 4 or 5 container runs."""
    say = progress or (lambda _: None)
    limits = sorted(set(ladder))
    probes: dict[int, MemoryProbe] = {}

    def run(limit: int, baseline: float | None) -> MemoryProbe:
        probe = _probe(
            start, generator, request, limit, cpus, concurrency, duration_s, max_error_rate, baseline
        )
        probes[limit] = probe
        say(f"memory limit {limit / 2**20:.0f}Mi: {'ok' if probe.passed else probe.message}")
        return probe

    largest = run(limits[-1], None)
    if not largest.passed or largest.load is None:
        return [largest]
    baseline = largest.load.rps
    low, high = 0, len(limits) - 2
    while low <= high:
        middle = (low + high) // 2
        if run(limits[middle], baseline).passed:
            high = middle - 1
        else:
            low = middle + 1
    return [probes[limit] for limit in sorted(probes)]


def _probe(
    start: StartTarget,
    generator: LoadGenerator,
    request: Request,
    limit: int,
    cpus: float | None,
    concurrency: int,
    duration_s: float,
    max_error_rate: float,
    baseline_rps: float | None,
) -> MemoryProbe:
    try:
        target = start(cpus, limit)
    except TargetStartError as exc:
        message = "out of memory while starting" if exc.oom_killed else f"did not start: {exc}"
        return MemoryProbe(limit, False, exc.oom_killed, message)
    with target:
        load = generator.run(target.url, request, concurrency=concurrency, duration_s=duration_s)
        state = target.state()
        usage = target.usage() if state.running else None
    peak = usage.rss_max_bytes if usage is not None else None
    if state.oom_killed or not state.running:
        why = "OOM-killed under load" if state.oom_killed else f"exited under load ({state.exit_code})"
        return MemoryProbe(limit, False, state.oom_killed, why, peak, load)
    if load.error_rate > max_error_rate:
        return MemoryProbe(
            limit, False, False, f"{load.error_rate:.1%} of requests failed under load", peak, load
        )
    if baseline_rps and load.rps < baseline_rps * MEMORY_THROUGHPUT_SHARE:
        return MemoryProbe(
            limit,
            False,
            False,
            f"no OOM, but throughput fell to {load.rps / baseline_rps:.0%} of the largest limit's (memory pressure)",
            peak,
            load,
        )
    return MemoryProbe(limit, True, False, f"served the load ({load.rps:,.0f} req/s)", peak, load)
