"""Candidate vs champion latency, measured so that a noisy shared machine does not decide.

Both models are measured now, on this machine, in alternating short blocks (round ``r``:
candidate then champion, or champion then candidate on odd rounds, so neither always
goes first). Each block starts with one unrecorded call (switching models evicts the
caches for both alike). The decision is the paired-block bootstrap interval on the ratio
of p95s (``mlops_ci.profiling.stats``): flagged only when its lower bound exceeds the
threshold (1.2 by default: at least 20% slower, with 97.5% confidence).

Two ways to take samples:
- ``in-process`` (default): ONNX Runtime calls in this process, one session per model with
  the server's session settings. No HTTP, no JSON: the model's own cost, and the least
  noise. A model that is slower only because its requests are bigger to decode is not
  seen here.
- ``end-to-end``: sequential requests over one keep-alive connection to two servers
  (`mlops-ci serve` processes); includes decoding and the HTTP stack, and their noise.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from mlops_ci.profiling.stats import LatencySummary, QuantileRatioResult, quantile_ratio_test, summarize

COMPARE_MODES = ("in-process", "end-to-end")
MAX_BLOCK_CALLS = 250
MIN_BLOCK_CALLS = 5

# Returns ``count`` latencies in seconds, measured back to back.
Sampler = Callable[[int], np.ndarray]


@dataclass(frozen=True)
class Comparison:
    mode: str
    result: QuantileRatioResult
    candidate: LatencySummary
    champion: LatencySummary
    block_calls: int
    elapsed_s: float
    setup: str  # e.g. "batch 1, 1 intra-op thread"

    def to_dict(self) -> dict[str, Any]:
        r = self.result
        return {
            "mode": self.mode,
            "setup": self.setup,
            "ratio_p95": r.statistic,
            "interval": [r.confidence_interval.low, r.confidence_interval.high],
            "confidence_level": r.confidence_level,
            "pvalue": r.pvalue,
            "threshold": r.threshold,
            "slower": r.slower,
            "faster": r.faster,
            "rounds": r.rounds,
            "block_calls": self.block_calls,
            "n_resamples": r.n_resamples,
            "elapsed_s": round(self.elapsed_s, 3),
            "candidate": self.candidate.to_dict(),
            "champion": self.champion.to_dict(),
        }


def interleaved_blocks(
    candidate: Sampler,
    champion: Sampler,
    *,
    rounds: int,
    duration_s: float,
) -> tuple[list[np.ndarray], list[np.ndarray], int]:
    """``rounds`` blocks of each, alternating, sized so the whole takes about
    ``duration_s``; returns the blocks and the calls per block."""
    if rounds < 2:
        raise ValueError(f"`rounds` must be at least 2, got {rounds}")
    if not duration_s > 0:
        raise ValueError(f"`duration_s` must be positive, got {duration_s}")
    # Calibrate: the cost of one call of each, after a warm-up.
    cost = float(np.median(candidate(5)[1:])) + float(np.median(champion(5)[1:]))
    per_round = duration_s / rounds
    calls = int(min(MAX_BLOCK_CALLS, max(MIN_BLOCK_CALLS, per_round / max(cost, 1e-7))))
    cand_blocks: list[np.ndarray] = []
    champ_blocks: list[np.ndarray] = []
    for index in range(rounds):
        order = (
            ((candidate, cand_blocks), (champion, champ_blocks))
            if index % 2 == 0
            else ((champion, champ_blocks), (candidate, cand_blocks))
        )
        for sampler, blocks in order:
            # The first call of a block pays for the switch; it is not recorded.
            blocks.append(sampler(calls + 1)[1:])
    return cand_blocks, champ_blocks, calls


def compare_latency(
    candidate: Sampler,
    champion: Sampler,
    *,
    mode: str,
    setup: str,
    rounds: int,
    duration_s: float,
    threshold: float,
    confidence_level: float,
    n_resamples: int,
    seed: int,
) -> Comparison:
    started = time.perf_counter()
    cand_blocks, champ_blocks, calls = interleaved_blocks(
        candidate, champion, rounds=rounds, duration_s=duration_s
    )
    elapsed = time.perf_counter() - started
    result = quantile_ratio_test(
        cand_blocks,
        champ_blocks,
        quantile=0.95,
        threshold=threshold,
        confidence_level=confidence_level,
        n_resamples=n_resamples,
        random_state=seed,
    )
    return Comparison(
        mode=mode,
        result=result,
        candidate=summarize(np.concatenate(cand_blocks)),
        champion=summarize(np.concatenate(champ_blocks)),
        block_calls=calls,
        elapsed_s=elapsed,
        setup=setup,
    )


def inprocess_sampler(model: Any, feeds: dict[str, np.ndarray]) -> Sampler:
    """``count`` back-to-back ONNX Runtime calls of ``model`` (an OnnxModel)."""
    run = model.run
    clock = time.perf_counter_ns

    def sample(count: int) -> np.ndarray:
        out = np.empty(count)
        for i in range(count):
            started = clock()
            run(feeds)
            out[i] = clock() - started
        return out / 1e9

    return sample


def http_sampler(base_url: str, request: Any) -> Sampler:
    """``count`` sequential requests on one keep-alive connection."""
    from mlops_ci.profiling.loadgen import AsyncioGenerator

    generator = AsyncioGenerator()

    def sample(count: int) -> np.ndarray:
        result = generator.sequence(base_url, request, count=count)
        if result.errors or result.samples_s is None or result.samples_s.size != count:
            kinds = ", ".join(f"{k}: {v}" for k, v in result.error_kinds.items()) or "no answer"
            raise RuntimeError(f"requests to {base_url} failed during the comparison ({kinds})")
        return result.samples_s

    return sample
