"""Measurements for the profiling tests: latency-like sample blocks and end-to-end points."""

from __future__ import annotations

import numpy as np

from mlops_ci.profiling.loadgen import LoadResult
from mlops_ci.profiling.sweep import E2EPoint

MIB = 2**20


def lognormal_blocks(rng, rounds, size, scale=1.0, shared=None):
    """Latency-like samples (~0.1 ms, right-skewed); ``shared`` multiplies round r of
    every side alike (a noisy neighbour that slows both models during that round)."""
    blocks = []
    for r in range(rounds):
        factor = shared[r] if shared is not None else 1.0
        blocks.append(rng.lognormal(np.log(1e-4), 0.35, size) * scale * factor)
    return blocks


def point(cpus, concurrency, rps, p99, *, errors=0.0, cores=None, rss=80 * MIB):
    requests = int(rps * 5)
    failed = int(requests * errors)
    load = LoadResult(
        "wrk", concurrency, 5.0, requests, failed, {"http non-2xx": failed} if failed else {},
        rps, p99 / 4, p99 / 3, p99 / 2, p99 / 1.5, p99, p99 * 2,
    )  # fmt: skip
    return E2EPoint(cpus, concurrency, load, cores if cores is not None else (cpus or 1.0) * 0.9, rss)
