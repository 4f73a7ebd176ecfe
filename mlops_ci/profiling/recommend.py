"""From measurements to Kubernetes resources: CPU and memory requests and limits, and the
replicas a target throughput needs at a p99 latency objective.

The rules, each stated in the recommendation's ``reasons``:

- A point *meets the objective* when its p99 is at or under ``slo_p99_ms`` and its error
  rate at or under ``max_error_rate``. A replica's capacity under a CPU limit is the
  highest throughput among such points.
- CPU limit: among the limits tried, the one with the best throughput per core; within
  10% of the best, the larger limit (fewer replicas, more room for bursts). Without a
  container engine nothing can be limited: the limit is the CPU the server used at its
  capacity point, rounded up.
- CPU request: the CPU the server used at that point (so a HorizontalPodAutoscaler
  targeting ``utilization`` of the request scales out before a replica saturates).
- Memory limit: the smallest limit the server survived under the heaviest load (an OOM
  search; container only), or the peak resident memory, plus ``memory_headroom``.
  Memory request: the peak resident memory under load.
- Replicas: ``ceil(target_rps / (capacity x utilization))``, at least ``min_replicas``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from mlops_ci.profiling.sweep import E2EPoint, Sweep

MIB = 2**20
# CPU quantities are rounded up to these steps (millicores).
CPU_REQUEST_STEP_M = 50
CPU_LIMIT_STEP_M = 100
MEMORY_STEP_MIB = 16
MIN_MEMORY_MIB = 32
# Limits whose throughput per core is within this share of the best count as equally good.
EFFICIENCY_TOLERANCE = 0.10


@dataclass(frozen=True)
class Objective:
    slo_p99_ms: float | None
    target_rps: float | None
    max_error_rate: float = 0.01
    utilization: float = 0.7
    min_replicas: int = 1
    max_replicas: int = 50
    memory_headroom: float = 0.25

    def __post_init__(self) -> None:
        if self.slo_p99_ms is not None and not self.slo_p99_ms > 0:
            raise ValueError(f"`slo_p99_ms` must be positive, got {self.slo_p99_ms}")
        if self.target_rps is not None and not self.target_rps > 0:
            raise ValueError(f"`target_rps` must be positive, got {self.target_rps}")
        if not 0 < self.utilization <= 1:
            raise ValueError(f"`utilization` must be in (0, 1], got {self.utilization}")
        if self.min_replicas < 1 or self.max_replicas < self.min_replicas:
            raise ValueError(
                f"`min_replicas` ({self.min_replicas}) must be at least 1 and at most `max_replicas` "
                f"({self.max_replicas})"
            )

    def meets(self, point: E2EPoint) -> bool:
        if point.error_rate > self.max_error_rate or point.rps <= 0:
            return False
        return self.slo_p99_ms is None or point.p99_ms <= self.slo_p99_ms


@dataclass(frozen=True)
class Recommendation:
    cpu_request: str | None
    cpu_limit: str | None
    memory_request: str | None
    memory_limit: str | None
    replicas: int
    # Per replica at the operating point (the capacity point under the chosen CPU limit).
    throughput_rps: float | None
    p50_ms: float | None
    p99_ms: float | None
    cpus: float | None
    throughput_per_core: float | None
    operating_point: E2EPoint | None
    slo_met: bool
    target_met: bool
    reasons: tuple[str, ...] = ()
    problems: tuple[str, ...] = ()
    capacity_by_cpus: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "cpu_request": self.cpu_request,
            "cpu_limit": self.cpu_limit,
            "memory_request": self.memory_request,
            "memory_limit": self.memory_limit,
            "replicas": self.replicas,
            "throughput_rps": self.throughput_rps,
            "p50_ms": self.p50_ms,
            "p99_ms": self.p99_ms,
            "cpus": self.cpus,
            "throughput_per_core": self.throughput_per_core,
            "operating_point": self.operating_point.to_dict() if self.operating_point else None,
            "slo_met": self.slo_met,
            "target_met": self.target_met,
            "reasons": list(self.reasons),
            "problems": list(self.problems),
            "capacity_by_cpus": dict(self.capacity_by_cpus),
        }


def recommend(sweep: Sweep, objective: Objective) -> Recommendation:
    reasons: list[str] = []
    problems: list[str] = []
    groups = sweep.by_cpus()
    capacity: dict[float | None, E2EPoint] = {}
    for cpus, points in groups.items():
        good = [p for p in points if objective.meets(p)]
        if good:
            capacity[cpus] = max(good, key=lambda p: p.rps)
    slo = (
        f"p99 <= {objective.slo_p99_ms:g} ms" if objective.slo_p99_ms is not None else "no latency objective"
    )

    slo_met = bool(capacity)
    if slo_met:
        cpus, point = _choose_limit(capacity)
        reasons.append(_limit_reason(cpus, point, capacity, slo))
    elif sweep.points:
        # Nothing met the objective: describe the best there was, and say so.
        point = min(sweep.points, key=lambda p: (p.error_rate > objective.max_error_rate, p.p99_ms))
        cpus = point.cpus
        problems.append(_unmet_message(sweep, objective, point))
    else:
        cpus, point = None, None
        problems.append("no end-to-end point was measured, so nothing can be recommended")

    cores = _cores(cpus, point)
    cpu_limit = cpu_request = None
    if cpus is not None:
        cpu_limit = cpu_quantity(cpus, step_m=1)
    elif point is not None and point.cpu_cores is not None:
        cpu_limit = cpu_quantity(max(point.cpu_cores, 0.1), step_m=CPU_LIMIT_STEP_M)
        reasons.append(
            f"CPU limit {cpu_limit} from the CPU the server used at that point ({point.cpu_cores:.2f} cores); "
            "not verified under a limit (that needs a container engine)"
        )
    if point is not None and point.cpu_cores is not None:
        used = point.cpu_cores if cpus is None else min(point.cpu_cores, cpus)
        cpu_request = cpu_quantity(max(used, 0.05), step_m=CPU_REQUEST_STEP_M)
        reasons.append(
            f"CPU request {cpu_request}: the CPU used at {point.rps:,.0f} req/s ({point.cpu_cores:.2f} cores)"
        )
    elif cpu_limit is not None:
        cpu_request = cpu_limit
        reasons.append("CPU request = limit: the server's CPU use is not exposed on /metrics")

    memory_request, memory_limit = _memory(sweep, objective, reasons)

    replicas = objective.min_replicas
    target_met = True
    rps = point.rps if point is not None and slo_met else None
    if objective.target_rps is not None:
        if rps:
            needed = math.ceil(objective.target_rps / (rps * objective.utilization))
            replicas = max(objective.min_replicas, needed)
            reasons.append(
                f"{replicas} replica(s) for {objective.target_rps:,.0f} req/s: each serves {rps:,.0f} req/s at "
                f"{slo}, planned at {objective.utilization:.0%} of that"
            )
            if needed > objective.max_replicas:
                target_met = False
                problems.append(
                    f"{objective.target_rps:,.0f} req/s at {slo} needs {needed} replicas, more than max-replicas "
                    f"{objective.max_replicas}; raise max-replicas or make the model faster"
                )
                replicas = objective.max_replicas
        else:
            target_met = False
    else:
        reasons.append(
            f"{replicas} replica(s): no target-rps is set (set profile.target-rps to size replicas)"
        )
    per_core = rps / cores if rps and cores else None
    return Recommendation(
        cpu_request=cpu_request,
        cpu_limit=cpu_limit,
        memory_request=memory_request,
        memory_limit=memory_limit,
        replicas=replicas,
        throughput_rps=rps,
        p50_ms=point.p50_ms if point is not None else None,
        p99_ms=point.p99_ms if point is not None else None,
        cpus=cpus if cpus is not None else cores,
        throughput_per_core=per_core,
        operating_point=point,
        slo_met=slo_met,
        target_met=target_met,
        reasons=tuple(reasons),
        problems=tuple(problems),
        capacity_by_cpus={_cpus_key(c): p.rps for c, p in capacity.items()},
    )


def _choose_limit(capacity: dict[float | None, E2EPoint]) -> tuple[float | None, E2EPoint]:
    if len(capacity) == 1:
        return next(iter(capacity.items()))
    efficiency = {cpus: point.rps / cpus for cpus, point in capacity.items() if cpus}
    if not efficiency:
        return next(iter(capacity.items()))
    best = max(efficiency.values())
    close = [cpus for cpus, value in efficiency.items() if value >= best * (1 - EFFICIENCY_TOLERANCE)]
    chosen = max(close)
    return chosen, capacity[chosen]


def _limit_reason(cpus: float | None, point: E2EPoint, capacity: dict, slo: str) -> str:
    if cpus is None:
        return f"capacity {point.rps:,.0f} req/s at {slo} ({point.concurrency} concurrent requests, no CPU limit)"
    others = ", ".join(
        f"{_cpus_key(c)} CPU: {p.rps / c:,.0f}"
        for c, p in sorted(capacity.items(), key=lambda i: i[0] or 0)
        if c
    )
    return (
        f"CPU limit {cpu_quantity(cpus, step_m=1)}: {point.rps:,.0f} req/s at {slo} ({point.concurrency} concurrent), "
        f"the best throughput per core within {EFFICIENCY_TOLERANCE:.0%} (req/s per core: {others})"
    )


def _unmet_message(sweep: Sweep, objective: Objective, point: E2EPoint) -> str:
    where = "no CPU limit" if point.cpus is None else f"{point.cpus:g} CPU"
    if point.error_rate > objective.max_error_rate:
        return (
            f"no configuration served requests within the error budget ({objective.max_error_rate:.1%}): at best "
            f"{point.error_rate:.1%} failed ({where}, {point.concurrency} concurrent); check the server's log"
        )
    return (
        f"the latency objective p99 <= {objective.slo_p99_ms:g} ms cannot be met: the lowest p99 measured was "
        f"{point.p99_ms:.2f} ms ({where}, {point.concurrency} concurrent request"
        f"{'' if point.concurrency == 1 else 's'}); more replicas do not lower a single request's latency - "
        "relax profile.slo-p99-ms, give each replica more CPU, or make the model faster"
    )


def _cores(cpus: float | None, point: E2EPoint | None) -> float | None:
    if cpus is not None:
        return cpus
    if point is not None and point.cpu_cores:
        return point.cpu_cores
    return None


def _memory(sweep: Sweep, objective: Objective, reasons: list[str]) -> tuple[str | None, str | None]:
    peaks = [p.rss_max_bytes for p in sweep.memory_probes if p.passed and p.rss_max_bytes]
    peak = max([sweep.peak_rss_bytes or 0, *peaks]) or None
    smallest = sweep.smallest_memory_bytes
    if peak is None and smallest is None:
        return None, None
    headroom = 1.0 + objective.memory_headroom
    request = memory_quantity(peak) if peak else None
    if smallest is not None:
        limit_bytes = max(smallest, peak or 0) * headroom
        reasons.append(
            f"memory limit {memory_quantity(limit_bytes)}: the smallest limit that survived the heaviest load without "
            f"OOM was {memory_quantity(smallest)}, plus {objective.memory_headroom:.0%}"
        )
    else:
        limit_bytes = (peak or 0) * headroom
        probes_failed = bool(sweep.memory_probes)
        why = (
            "every memory limit tried failed"
            if probes_failed
            else "not verified against an OOM kill (that needs a container engine)"
        )
        reasons.append(
            f"memory limit {memory_quantity(limit_bytes)}: peak resident memory plus {objective.memory_headroom:.0%}; {why}"
        )
    limit = memory_quantity(limit_bytes)
    if request is not None:
        reasons.append(
            f"memory request {request}: the peak resident memory under load ({(peak or 0) / MIB:.0f} MiB)"
        )
        if parse_memory(request) > parse_memory(limit):
            request = limit
    return request, limit


# -- Kubernetes quantities -----------------------------------------------------------------


def cpu_quantity(cores: float, *, step_m: int) -> str:
    """Cores as a Kubernetes CPU quantity rounded up to ``step_m`` millicores: 0.5 -> 500m, 2 -> 2."""
    millis = max(step_m, math.ceil(round(cores * 1000, 6) / step_m) * step_m)
    return str(millis // 1000) if millis % 1000 == 0 else f"{millis}m"


def memory_quantity(n_bytes: float) -> str:
    """Bytes as a Kubernetes memory quantity rounded up to 16Mi: 130 MiB -> 144Mi, 1 GiB -> 1Gi."""
    mib = max(MIN_MEMORY_MIB, math.ceil(n_bytes / MIB / MEMORY_STEP_MIB) * MEMORY_STEP_MIB)
    return f"{mib // 1024}Gi" if mib % 1024 == 0 else f"{mib}Mi"


_MEMORY_UNITS = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}


def parse_memory(text: str) -> int:
    """A memory quantity (``256Mi``, ``1Gi``, ``500M``, ``134217728``) in bytes."""
    raw = str(text).strip()
    for unit in sorted(_MEMORY_UNITS, key=len, reverse=True):
        if raw.endswith(unit):
            number = raw[: -len(unit)]
            try:
                value = float(number)
            except ValueError:
                break
            if value <= 0:
                break
            return int(value * _MEMORY_UNITS[unit])
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{text!r} is not a memory quantity such as 256Mi, 1Gi or 500M") from None
    if value <= 0:
        raise ValueError(f"{text!r} is not a positive memory quantity")
    return int(value)


def parse_cpus(text: str) -> float:
    """A CPU quantity (``500m``, ``0.5``, ``2``) in cores."""
    raw = str(text).strip()
    try:
        value = float(raw[:-1]) / 1000 if raw.endswith("m") else float(raw)
    except ValueError:
        raise ValueError(f"{text!r} is not a CPU quantity such as 500m, 0.5 or 2") from None
    if value <= 0:
        raise ValueError(f"{text!r} is not a positive CPU quantity")
    return value


def _cpus_key(cpus: float | None) -> str:
    return "unlimited" if cpus is None else f"{cpus:g}"


def best_points(points: Sequence[E2EPoint]) -> dict[str, E2EPoint]:
    """The highest-throughput point per CPU limit (for the report)."""
    best: dict[str, E2EPoint] = {}
    for point in points:
        key = _cpus_key(point.cpus)
        if key not in best or point.rps > best[key].rps:
            best[key] = point
    return best
