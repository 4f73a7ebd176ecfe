"""Latency statistics: summaries of samples, and a paired-block bootstrap interval on the
ratio of two quantiles (candidate p95 / champion p95).

Why paired blocks: on a shared CI machine the noise comes in bursts (another job starts,
the CPU is throttled). Candidate and champion are measured in alternating short blocks,
so block ``i`` of each saw nearly the same conditions. The bootstrap resamples *rounds*
(one block of each, taken together), which keeps that pairing and the burstiness: an
interval that treats every sample as independent would be far too narrow.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

# Bootstrap resamples are processed in chunks so memory stays bounded
# (chunk x rounds x samples-per-block float64 values).
_CHUNK_VALUES = 4_000_000


class ConfidenceInterval(NamedTuple):
    low: float
    high: float


@dataclass(frozen=True)
class LatencySummary:
    """Latency of ``n`` samples in milliseconds."""

    n: int
    mean_ms: float
    p50_ms: float
    p90_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float

    def to_dict(self) -> dict[str, float | int]:
        return {
            "n": self.n,
            "mean_ms": self.mean_ms,
            "p50_ms": self.p50_ms,
            "p90_ms": self.p90_ms,
            "p95_ms": self.p95_ms,
            "p99_ms": self.p99_ms,
            "max_ms": self.max_ms,
        }


def summarize(samples_s: Sequence[float] | np.ndarray) -> LatencySummary:
    """Summary of latencies given in seconds."""
    values = np.asarray(samples_s, dtype=np.float64)
    if values.ndim != 1 or values.size == 0:
        raise ValueError(f"`samples_s` must be a non-empty 1-D sequence, got shape {values.shape}")
    p50, p90, p95, p99 = np.quantile(values, [0.5, 0.9, 0.95, 0.99]) * 1e3
    return LatencySummary(
        n=int(values.size),
        mean_ms=float(values.mean() * 1e3),
        p50_ms=float(p50),
        p90_ms=float(p90),
        p95_ms=float(p95),
        p99_ms=float(p99),
        max_ms=float(values.max() * 1e3),
    )


@dataclass(frozen=True)
class QuantileRatioResult:
    """``statistic`` = quantile(candidate) / quantile(baseline) over all samples.

    ``confidence_interval``: two-sided percentile interval at ``confidence_level`` from the
    paired-block bootstrap. ``pvalue``: one-sided, for H0 "ratio <= threshold" against H1
    "ratio > threshold" (the share of bootstrap ratios at or below the threshold). The
    candidate is ``slower`` when the interval's lower bound exceeds ``threshold`` - a
    one-sided test at level (1 - confidence_level) / 2.
    """

    statistic: float
    confidence_interval: ConfidenceInterval
    pvalue: float
    threshold: float
    quantile: float
    candidate_ms: float
    baseline_ms: float
    rounds: int
    n_candidate: int
    n_baseline: int
    n_resamples: int
    confidence_level: float

    @property
    def slower(self) -> bool:
        return self.confidence_interval.low > self.threshold

    @property
    def faster(self) -> bool:
        """The upper bound is below 1 / threshold: clearly faster."""
        return self.confidence_interval.high < 1.0 / self.threshold


def quantile_ratio_test(
    candidate_blocks: Sequence[Sequence[float]],
    baseline_blocks: Sequence[Sequence[float]],
    *,
    quantile: float = 0.95,
    threshold: float = 1.2,
    confidence_level: float = 0.95,
    n_resamples: int = 2000,
    random_state: int | np.random.Generator | None = 0,
) -> QuantileRatioResult:
    """Compare latency samples measured in paired rounds (block ``i`` of each side was
    measured back to back). Blocks of one side are cut to their shortest length so the
    resampling is a plain array gather; measure blocks of equal length to lose nothing."""
    candidate = _blocks(candidate_blocks, "candidate_blocks")
    baseline = _blocks(baseline_blocks, "baseline_blocks")
    if candidate.shape[0] != baseline.shape[0]:
        raise ValueError(
            f"`candidate_blocks` and `baseline_blocks` must have the same number of rounds, got "
            f"{candidate.shape[0]} and {baseline.shape[0]}"
        )
    if not 0.0 < quantile < 1.0:
        raise ValueError(f"`quantile` must be between 0 and 1, got {quantile}")
    if not threshold > 0:
        raise ValueError(f"`threshold` must be positive, got {threshold}")
    if not 0.0 < confidence_level < 1.0:
        raise ValueError(f"`confidence_level` must be between 0 and 1, got {confidence_level}")
    if int(n_resamples) != n_resamples or n_resamples < 100:
        raise ValueError(f"`n_resamples` must be an integer of at least 100, got {n_resamples}")
    rounds = candidate.shape[0]
    if rounds < 2:
        raise ValueError(f"at least 2 rounds are needed for a bootstrap, got {rounds}")
    rng = np.random.default_rng(random_state)

    cand_q = float(np.quantile(candidate, quantile))
    base_q = float(np.quantile(baseline, quantile))
    ratios = np.empty(n_resamples)
    per_resample = rounds * max(candidate.shape[1], baseline.shape[1])
    chunk = max(1, _CHUNK_VALUES // per_resample)
    for start in range(0, n_resamples, chunk):
        stop = min(n_resamples, start + chunk)
        picks = rng.integers(0, rounds, size=(stop - start, rounds))
        # The same rounds for both sides: the pairing is what cancels shared noise.
        cand = np.quantile(candidate[picks].reshape(stop - start, -1), quantile, axis=1)
        base = np.quantile(baseline[picks].reshape(stop - start, -1), quantile, axis=1)
        ratios[start:stop] = cand / base
    tail = (1.0 - confidence_level) / 2.0
    low, high = np.quantile(ratios, [tail, 1.0 - tail])
    pvalue = float((1 + np.count_nonzero(ratios <= threshold)) / (n_resamples + 1))
    return QuantileRatioResult(
        statistic=cand_q / base_q,
        confidence_interval=ConfidenceInterval(float(low), float(high)),
        pvalue=pvalue,
        threshold=float(threshold),
        quantile=float(quantile),
        candidate_ms=cand_q * 1e3,
        baseline_ms=base_q * 1e3,
        rounds=rounds,
        n_candidate=int(candidate.size),
        n_baseline=int(baseline.size),
        n_resamples=int(n_resamples),
        confidence_level=float(confidence_level),
    )


def _blocks(blocks: Sequence[Sequence[float]], name: str) -> np.ndarray:
    if len(blocks) == 0:
        raise ValueError(f"`{name}` is empty")
    length = min(len(block) for block in blocks)
    if length < 1:
        raise ValueError(f"`{name}` has an empty block")
    array = np.asarray([np.asarray(block, dtype=np.float64)[:length] for block in blocks])
    if not np.all(np.isfinite(array)) or np.any(array <= 0):
        raise ValueError(f"`{name}` must hold positive, finite latencies")
    return array
