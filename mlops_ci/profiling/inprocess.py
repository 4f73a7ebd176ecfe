"""ONNX Runtime in this process: latency and rows per second across intra-op thread
counts and batch sizes, with the session configured exactly as the server configures it
(``mlops_ci.serving.model.OnnxModel``: sequential execution, no spinning threads)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mlops_ci.profiling.stats import LatencySummary, summarize


@dataclass(frozen=True)
class InProcessPoint:
    threads: int
    batch_size: int
    calls: int
    latency: LatencySummary
    rows_per_s: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "threads": self.threads,
            "batch_size": self.batch_size,
            "calls": self.calls,
            "rows_per_s": self.rows_per_s,
            **self.latency.to_dict(),
        }


def load_model(model_dir: Path, *, threads: int = 1) -> Any:
    """The server's own model wrapper (ONNX Runtime session + input decoder)."""
    from mlops_ci.serving.model import OnnxModel
    from mlops_ci.serving.settings import load_settings

    return OnnxModel(load_settings(model_dir), model_dir, intra_op_threads=threads, max_rows=1_000_000)


def time_calls(
    call: Callable[[], Any],
    *,
    duration_s: float,
    min_calls: int = 5,
    max_calls: int = 1_000_000,
    warmup_calls: int = 2,
) -> np.ndarray:
    """Seconds per call of ``call``, run back to back for about ``duration_s`` (at least
    ``min_calls`` times, at most ``max_calls``), after ``warmup_calls`` unrecorded ones."""
    for _ in range(warmup_calls):
        call()
    samples: list[int] = []
    clock = time.perf_counter_ns
    deadline = clock() + int(duration_s * 1e9)
    while len(samples) < max_calls:
        started = clock()
        call()
        ended = clock()
        samples.append(ended - started)
        if ended >= deadline and len(samples) >= min_calls:
            break
    return np.asarray(samples, dtype=np.float64) / 1e9


def inprocess_sweep(
    model_dir: Path,
    *,
    threads: Sequence[int],
    batch_sizes: Sequence[int],
    duration_s: float,
    progress: Callable[[str], None] | None = None,
) -> list[InProcessPoint]:
    from mlops_ci.profiling.payload import onnx_feeds

    points = []
    for count in threads:
        model = load_model(model_dir, threads=count)
        for batch in batch_sizes:
            feeds = onnx_feeds(model.settings, batch, decoder=model.decoder)
            started = time.perf_counter()
            samples = time_calls(lambda feeds=feeds, model=model: model.run(feeds), duration_s=duration_s)
            elapsed = time.perf_counter() - started
            summary = summarize(samples)
            # Rows per second while calling back to back (the warm-up calls excluded).
            rows_per_s = batch * summary.n / float(samples.sum()) if samples.sum() > 0 else 0.0
            points.append(InProcessPoint(count, batch, summary.n, summary, rows_per_s))
            if progress is not None:
                progress(
                    f"in-process threads={count} batch={batch}: p50 {summary.p50_ms:.3f} ms, "
                    f"p99 {summary.p99_ms:.3f} ms, {rows_per_s:,.0f} rows/s ({elapsed:.1f} s)"
                )
        del model
    return points
