"""The resampling engine: bootstrap distributions of several metric "terms" (a metric
applied to one model's predictions) on shared resamples, fully vectorised.

Three paths, chosen per term:

* **cells** — metrics of predicted labels (accuracy, precision, recall, F1, balanced
  accuracy) depend on a row only through its cell (true class, each model's predicted
  class). Resampling rows is then exactly resampling cell counts from a multinomial over at
  most ``K**(models+1)`` cells: the cost no longer depends on the number of rows.
* **rows** — everything else gets row weights: a batch of resamples is a ``(b, n)`` matrix
  of how often each row was drawn, and a linear metric of a batch is one matrix product.
  Up to ``POISSON_MIN_ROWS`` rows the weights are exact multinomial counts (rows drawn with
  replacement). Above it each row's weight is drawn independently (a "Poisson bootstrap",
  a case of the generalised bootstrap of Mason & Newton 1992, valid for independent weights
  of mean 1 and variance 1): from 0..5 with probabilities (94, 95, 46, 16, 4, 1)/256, which
  has exactly the mean and variance of Poisson(1) and its third moment to 2 %, so 8 random
  bits make a weight. Independent weights let the rows be processed in blocks.
* ROC AUC is a rank statistic: with multinomial weights it is computed exactly per
  resample (a cumulative sum over the rows sorted by score); with independent weights (large
  holdouts) through its linear (Hájek) projection, whose error is O(1/sqrt(n)) of the
  statistic's standard error — under 1 % above ``POISSON_MIN_ROWS`` rows.

Terms that share a path share resamples, so the two terms of a comparison are paired.
Each batch of resamples has its own seed (spawned from one SeedSequence), so results do not
depend on the number of threads.
"""

from __future__ import annotations

import inspect
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mlops_ci.stats._core import AGGREGATE, LINEAR, RANK, Encoding, MetricSpec, Prepared

POISSON_MIN_ROWS = 20_000
CELL_LIMIT = 4096
TARGET_ELEMENTS = 1 << 21
MAX_WORKERS = 4
JACKKNIFE_GROUPS = 50
# Weight k has probability WEIGHT_COUNTS[k] / 256: mean 1, variance 1, like Poisson(1).
WEIGHT_COUNTS = (94, 95, 46, 16, 4, 1)

ProgressCallback = Callable[[int, int], None]


@dataclass
class Term:
    """One metric on one model's (encoded) predictions."""

    metric: MetricSpec
    pred: np.ndarray


@dataclass
class TermOutput:
    """Point estimates (S,), bootstrap values (B, S) and jackknife values (m, S) with their
    multiplicities (m, S) — cells or groups stand for several rows."""

    point: np.ndarray
    boot: np.ndarray
    jack: np.ndarray
    jack_weight: np.ndarray
    path: str


@dataclass
class _Plan:
    cells: list[int] = field(default_factory=list)
    linear: list[int] = field(default_factory=list)
    rank: list[int] = field(default_factory=list)
    aggregate: list[int] = field(default_factory=list)


def weight_thresholds() -> np.ndarray:
    """A uniform byte u gives the weight ``sum(u >= thresholds)``."""
    return np.cumsum(WEIGHT_COUNTS)[:-1].astype(np.uint8)


def independent_weights(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """Independent row weights (see the module docstring), as float64."""
    size = shape[0] * shape[1]
    raw = rng.bit_generator.random_raw((size + 7) // 8).view(np.uint8)[:size].reshape(shape)
    thresholds = weight_thresholds()
    weights = (raw >= thresholds[0]).view(np.uint8).copy()
    for t in thresholds[1:]:
        weights += (raw >= t).view(np.uint8)
    return weights.astype(np.float64)


def default_workers() -> int:
    return max(1, min(MAX_WORKERS, os.cpu_count() or 1))


def resample_terms(
    prep: Prepared,
    terms: Sequence[Term],
    *,
    n_resamples: int,
    seed: np.random.SeedSequence,
    progress: ProgressCallback | None = None,
    workers: int | None = None,
    scheme: str = "auto",
) -> list[TermOutput]:
    n = prep.n
    if scheme == "auto":
        scheme = "poisson" if n > POISSON_MIN_ROWS else "multinomial"
    plan = _plan(prep, terms, scheme)
    outputs: list[TermOutput | None] = [None] * len(terms)
    cells_seed, rows_seed = seed.spawn(2)
    total = n_resamples * (bool(plan.cells) + bool(plan.linear or plan.rank or plan.aggregate))
    reporter = _Progress(progress, total)
    if plan.cells:
        for i, out in zip(
            plan.cells,
            _cells_path(prep, [terms[i] for i in plan.cells], n_resamples, cells_seed, reporter),
            strict=True,
        ):
            outputs[i] = out
    row_terms = plan.linear + plan.rank + plan.aggregate
    if row_terms:
        results = _rows_path(
            prep,
            terms,
            plan,
            n_resamples,
            rows_seed,
            reporter,
            workers or default_workers(),
            scheme,
        )
        for i, out in results.items():
            outputs[i] = out
    return [o for o in outputs if o is not None]


class _Progress:
    def __init__(self, callback: ProgressCallback | None, total: int) -> None:
        self.callback, self.total, self.done = callback, total, 0
        self.lock = threading.Lock()

    def add(self, count: int) -> None:
        with self.lock:
            self.done += count
            done = min(self.done, self.total)
        if self.callback is not None:
            self.callback(done, self.total)


def _plan(prep: Prepared, terms: Sequence[Term], scheme: str) -> _Plan:
    plan = _Plan()
    label_terms = [i for i, t in enumerate(terms) if t.metric.kind == LINEAR and t.metric.input == "labels"]
    distinct = {id(terms[i].pred) for i in label_terms}
    k = max(prep.enc.n_classes, 1)
    use_cells = bool(label_terms) and k ** (len(distinct) + 1) <= CELL_LIMIT
    for i, term in enumerate(terms):
        metric = term.metric
        if i in label_terms and use_cells:
            plan.cells.append(i)
        elif metric.kind == LINEAR:
            plan.linear.append(i)
        elif metric.kind == RANK:
            plan.rank.append(i)
        elif metric.kind == AGGREGATE:
            plan.aggregate.append(i)
        else:
            raise TypeError(f"`metric` {metric.name!r} has an unknown kind {metric.kind!r}")
    return plan


# --- cells -------------------------------------------------------------------------------


def _cells_path(
    prep: Prepared, terms: list[Term], n_resamples: int, seed: np.random.SeedSequence, reporter: _Progress
) -> list[TermOutput]:
    n, S, enc = prep.n, prep.S, prep.enc
    k = max(enc.n_classes, 1)
    preds: list[np.ndarray] = []
    which: list[int] = []
    for term in terms:
        for j, p in enumerate(preds):
            if p is term.pred:
                which.append(j)
                break
        else:
            preds.append(term.pred)
            which.append(len(preds) - 1)
    U = k ** (len(preds) + 1)
    code = prep.y.astype(np.int64)
    factor = k
    for p in preds:
        code = code + factor * p.astype(np.int64)
        factor *= k
    offsets = (np.arange(S, dtype=np.int64) * U)[None, :]
    counts = np.bincount((code + offsets).ravel(), minlength=S * U).reshape(S, U).astype(np.float64)
    cell = np.arange(U)
    y_rep = (cell % k)[:, None]
    reps = [((cell // k ** (j + 1)) % k)[:, None] for j in range(len(preds))]
    features = [
        t.metric.features(y_rep, reps[w], enc)[:, 0, :] for t, w in zip(terms, which, strict=True)
    ]  # (U, k_t)
    widths = [f.shape[1] for f in features]
    F = np.concatenate(features, axis=1)
    bounds = np.cumsum([0, *widths])

    # Only cells that occur in some problem can be drawn.
    active = np.flatnonzero(counts.sum(axis=0) > 0)
    counts, F = counts[:, active], F[active]
    U = len(active)
    boot = [np.empty((n_resamples, S)) for _ in terms]
    pvals = counts / n
    batch = max(1, min(n_resamples, TARGET_ELEMENTS // max(1, S * U)))
    children = seed.spawn((n_resamples + batch - 1) // batch)
    for b_index, start in enumerate(range(0, n_resamples, batch)):
        stop = min(n_resamples, start + batch)
        rng = np.random.Generator(np.random.PCG64(children[b_index]))
        draws = _multinomial(rng, n, pvals, stop - start)  # (b, S, U)
        sums = draws @ F
        for t, term in enumerate(terms):
            boot[t][start:stop] = term.metric.finish(sums[..., bounds[t] : bounds[t + 1]], float(n), enc)
        reporter.add(stop - start)

    totals = counts @ F  # (S, k_all)
    outputs = []
    for t, term in enumerate(terms):
        sl = slice(bounds[t], bounds[t + 1])
        point = term.metric.finish(totals[:, sl], float(n), enc)
        loo = totals[None, :, sl] - F[:, None, sl]  # (U, S, k_t)
        jack = term.metric.finish(loo, float(n - 1), enc) if n > 1 else np.full((U, S), np.nan)
        outputs.append(TermOutput(point, boot[t], jack, counts.T.copy(), "cells"))
    return outputs


def _multinomial(rng: np.random.Generator, n: int, pvals: np.ndarray, b: int) -> np.ndarray:
    """``b`` multinomial(n, pvals[s]) draws for every problem s, as (b, S, U) floats: one
    vectorised binomial per cell, conditional on the cells before it (exact)."""
    S, U = pvals.shape
    out = np.empty((b, S, U))
    remaining = np.full((b, S), n, dtype=np.int64)
    left = np.ones(S)
    for u in range(U - 1):
        with np.errstate(divide="ignore", invalid="ignore"):
            p = np.clip(np.where(left > 0, pvals[:, u] / left, 0.0), 0.0, 1.0)
        draw = rng.binomial(remaining, p)
        out[..., u] = draw
        remaining -= draw
        left = left - pvals[:, u]
    out[..., U - 1] = remaining
    return out


# --- rows --------------------------------------------------------------------------------


@dataclass
class _RankProblem:
    """One binary ranking problem (one class vs the rest) for one term and one column s."""

    order: np.ndarray
    ispos: np.ndarray
    isneg: np.ndarray
    mixed: np.ndarray
    mixed_prev: np.ndarray


def _rank_columns(prep: Prepared, term: Term) -> list[tuple[np.ndarray, np.ndarray]]:
    """(positive mask (n, S), scores (n, S)) for each class-vs-rest problem of a rank term."""
    y, scores, enc = prep.y, term.pred, prep.enc
    if scores.ndim == y.ndim:
        pos = enc.pos if enc.pos is not None else 1
        return [(y == pos, scores)]
    return [(y == k, scores[..., k]) for k in range(scores.shape[-1])]


def _placements(pos_mask: np.ndarray, score: np.ndarray) -> tuple[float, np.ndarray, int, int]:
    """AUC numerator (pairs ordered right, ties half) and each row's share of it: for a
    positive, the negatives scored below it (ties half); for a negative, the positives
    scored above it. One sort, then linear passes over the tie groups."""
    n = len(score)
    n1 = int(pos_mask.sum())
    n0 = n - n1
    share = np.zeros(n)
    if n1 == 0 or n0 == 0:
        return float("nan"), share, n1, n0
    order = np.argsort(score, kind="stable")
    s, pos = score[order], pos_mask[order]
    group = np.cumsum(np.r_[True, s[1:] != s[:-1]]) - 1
    groups = int(group[-1]) + 1
    neg_in = np.bincount(group, weights=~pos, minlength=groups)
    pos_in = np.bincount(group, weights=pos, minlength=groups)
    neg_below = np.cumsum(neg_in) - neg_in
    pos_above = n1 - np.cumsum(pos_in)
    share[order] = np.where(
        pos, neg_below[group] + 0.5 * neg_in[group], pos_above[group] + 0.5 * pos_in[group]
    )
    return float(share[pos_mask].sum()), share, n1, n0


def _rank_point_and_jack(prep: Prepared, term: Term) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """Exact AUC per problem, exact leave-one-out AUCs (n, S), and each class problem's
    (numerator, share) for the linear projection."""
    n, S = prep.n, prep.S
    problems = _rank_columns(prep, term)
    point = np.zeros(S)
    jack = np.zeros((n, S))
    shares: list[np.ndarray] = []
    for mask, score in problems:
        share_cols = np.zeros((n, S))
        for s in range(S):
            num, share, n1, n0 = _placements(mask[:, s], score[:, s])
            share_cols[:, s] = share
            if not np.isfinite(num):
                point[s] = np.nan
                jack[:, s] = np.nan
                continue
            point[s] += num / (n1 * n0)
            with np.errstate(divide="ignore", invalid="ignore"):
                loo = np.where(mask[:, s], (num - share) / ((n1 - 1) * n0), (num - share) / (n1 * (n0 - 1)))
            jack[:, s] += loo
        shares.append(share_cols)
    count = len(problems)
    return point / count, jack / count, shares


def _rank_problem(mask: np.ndarray, score: np.ndarray) -> _RankProblem:
    # Ascending score; within a tie, negatives first, so a positive's cumulative negative
    # weight counts every tied negative (half of them are taken back below).
    order = np.lexsort((mask, score))
    s_sorted, pos_sorted = score[order], mask[order]
    n = len(score)
    starts = np.flatnonzero(np.r_[True, s_sorted[1:] != s_sorted[:-1]])
    group = np.cumsum(np.r_[True, s_sorted[1:] != s_sorted[:-1]]) - 1
    neg_in_group = np.bincount(group, weights=~pos_sorted, minlength=len(starts))
    mixed = np.flatnonzero(pos_sorted & (neg_in_group[group] > 0))
    return _RankProblem(
        order=order if not np.array_equal(order, np.arange(n)) else np.arange(0),
        ispos=pos_sorted.astype(np.float64),
        isneg=(~pos_sorted).astype(np.float64),
        mixed=mixed,
        mixed_prev=starts[group[mixed]] - 1,
    )


def _rank_exact_batch(W: np.ndarray, problem: _RankProblem) -> np.ndarray:
    Wp = W[:, problem.order] if problem.order.size else W
    cum = np.cumsum(Wp * problem.isneg, axis=1)
    num = np.einsum("ij,ij->i", Wp * problem.ispos, cum)
    if problem.mixed.size:
        prev = np.where(problem.mixed_prev >= 0, cum[:, np.maximum(problem.mixed_prev, 0)], 0.0)
        num -= 0.5 * (Wp[:, problem.mixed] * (cum[:, problem.mixed] - prev)).sum(axis=1)
    w1 = Wp @ problem.ispos
    w0 = cum[:, -1]
    den = w1 * w0
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / den, np.nan)


def _linear_inputs(prep: Prepared, terms: Sequence[Term], plan: _Plan, scheme: str):
    """Per-row features of every linear term (and, with Poisson weights, of the linear
    projection of every rank term), stacked into one (n, S * width) matrix."""
    n, S, enc = prep.n, prep.S, prep.enc
    blocks: list[np.ndarray] = []
    finishers: dict[int, tuple[slice, Callable[[np.ndarray, np.ndarray], np.ndarray]]] = {}
    width = 0
    for i in plan.linear:
        metric = terms[i].metric
        f = np.asarray(metric.features(prep.y, terms[i].pred, enc), dtype=np.float64)
        blocks.append(f)
        sl = slice(width, width + f.shape[-1])
        finishers[i] = (sl, lambda s, w, m=metric: m.finish(s, w, enc))
        width += f.shape[-1]
    projections: dict[int, tuple[np.ndarray, np.ndarray, list[np.ndarray]]] = {}
    for i in plan.rank:
        point, jack, shares = _rank_point_and_jack(prep, terms[i])
        projections[i] = (point, jack, shares)
        if scheme != "poisson":
            continue
        problems = _rank_columns(prep, terms[i])
        cols = []
        nums = []
        for (mask, _), share in zip(problems, shares, strict=True):
            cols += [share, mask.astype(np.float64), (~mask).astype(np.float64)]
            nums.append(np.where(mask, share, 0.0).sum(axis=0))  # (S,)
        f = np.stack(cols, axis=-1)
        blocks.append(f)
        sl = slice(width, width + f.shape[-1])
        numerators = np.stack(nums, axis=-1)  # (S, K)

        count = len(problems)

        def finish(s, w, numerators=numerators, count=count):
            h, p, q = s[..., 0::3], s[..., 1::3], s[..., 2::3]
            with np.errstate(divide="ignore", invalid="ignore"):
                auc = np.where(p * q > 0, (h - numerators) / (p * q), np.nan)
            return auc.sum(-1) / count

        finishers[i] = (sl, finish)
        width += f.shape[-1]
    F = np.concatenate(blocks, axis=-1).reshape(n, S * width) if blocks else np.zeros((n, 0))
    return F, width, finishers, projections


def _rows_path(
    prep: Prepared,
    terms: Sequence[Term],
    plan: _Plan,
    n_resamples: int,
    seed: np.random.SeedSequence,
    reporter: _Progress,
    workers: int,
    scheme: str,
) -> dict[int, TermOutput]:
    n, S = prep.n, prep.S
    F, width, finishers, projections = _linear_inputs(prep, terms, plan, scheme)
    exact_rank = [] if scheme == "poisson" else plan.rank
    rank_problems = {
        i: [
            [_rank_problem(mask[:, s], score[:, s]) for s in range(S)]
            for mask, score in _rank_columns(prep, terms[i])
        ]
        for i in exact_rank
    }
    boot = {i: np.empty((n_resamples, S)) for i in (*plan.linear, *plan.rank, *plan.aggregate)}

    def consume(start: int, W: np.ndarray | None, sums: np.ndarray | None, totals: np.ndarray) -> None:
        stop = start + len(totals)
        if sums is not None:
            sums = sums.reshape(len(totals), S, width)
            for i, (sl, finish) in finishers.items():
                if i in rank_problems:
                    continue
                boot[i][start:stop] = finish(sums[..., sl], totals[:, None])
        for i, per_class in rank_problems.items():
            acc = np.zeros((stop - start, S))
            for problems in per_class:
                for s, problem in enumerate(problems):
                    acc[:, s] += _rank_exact_batch(W, problem)
            boot[i][start:stop] = acc / len(per_class)
        for i in plan.aggregate:
            boot[i][start:stop] = _aggregate_batch(prep, terms[i], W)

    if scheme == "poisson":
        _poisson_batches(n, n_resamples, F, seed, workers, consume, reporter, need_rows=bool(plan.aggregate))
    else:
        _multinomial_batches(n, n_resamples, F, seed, workers, consume, reporter)

    outputs: dict[int, TermOutput] = {}
    ones = np.ones((n, S))
    if plan.linear:
        totals_all = F.sum(axis=0).reshape(S, width)
    for i in plan.linear:
        sl, finish = finishers[i]
        point = finish(totals_all[:, sl], np.full(S, float(n)))
        block = F.reshape(n, S, width)[..., sl]
        jack = finish(totals_all[None, :, sl] - block, np.full((n, S), float(n - 1)))
        outputs[i] = TermOutput(point, boot[i], jack, ones, "rows")
    for i in plan.rank:
        point, jack, _ = projections[i]
        outputs[i] = TermOutput(point, boot[i], jack, ones, "rows")
    for i in plan.aggregate:
        point, jack, weight = _aggregate_point_and_jack(prep, terms[i])
        outputs[i] = TermOutput(point, boot[i], jack, weight, "groups")
    return outputs


def _run(tasks: list[Callable[[], None]], workers: int) -> None:
    if workers <= 1 or len(tasks) <= 1:
        for task in tasks:
            task()
        return
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for future in [pool.submit(task) for task in tasks]:
            future.result()


def _multinomial_batches(n, n_resamples, F, seed, workers, consume, reporter) -> None:
    batch = max(1, min(n_resamples, TARGET_ELEMENTS // n))
    starts = list(range(0, n_resamples, batch))
    children = seed.spawn(len(starts))

    def task(start: int, child: np.random.SeedSequence) -> Callable[[], None]:
        def run() -> None:
            b = min(batch, n_resamples - start)
            rng = np.random.Generator(np.random.PCG64(child))
            idx = rng.integers(0, n, size=(b, n), dtype=np.int64)
            idx += (np.arange(b, dtype=np.int64) * n)[:, None]
            W = np.bincount(idx.ravel(), minlength=b * n).reshape(b, n).astype(np.float64)
            sums = W @ F if F.shape[1] else None
            consume(start, W, sums, np.full(b, float(n)))
            reporter.add(b)

        return run

    _run([task(s, c) for s, c in zip(starts, children, strict=True)], workers)


def _poisson_batches(n, n_resamples, F, seed, workers, consume, reporter, *, need_rows: bool) -> None:
    """Independent row weights, generated and summed in blocks of rows so memory stays flat.
    A column of ones rides along in the product to give each resample's total weight."""
    batch = min(n_resamples, 256)
    rows = max(1024, TARGET_ELEMENTS // batch)
    starts = list(range(0, n_resamples, batch))
    children = seed.spawn(len(starts))
    width = F.shape[1]
    F1 = np.concatenate([F, np.ones((n, 1))], axis=1)

    def task(start: int, child: np.random.SeedSequence) -> Callable[[], None]:
        def run() -> None:
            b = min(batch, n_resamples - start)
            rng = np.random.Generator(np.random.PCG64(child))
            sums = np.zeros((b, width + 1))
            full = np.empty((b, n)) if need_rows else None
            for lo in range(0, n, rows):
                hi = min(n, lo + rows)
                W = independent_weights(rng, (b, hi - lo))
                sums += W @ F1[lo:hi]
                if full is not None:
                    full[:, lo:hi] = W
            consume(start, full, sums[:, :width] if width else None, sums[:, width])
            reporter.add(b)

        return run

    _run([task(s, c) for s, c in zip(starts, children, strict=True)], workers)


# --- custom aggregate metrics ------------------------------------------------------------


def _decode(values: np.ndarray, enc: Encoding, metric: MetricSpec, *, truth: bool) -> np.ndarray:
    if enc.classes is None or (not truth and metric.input != "labels"):
        return values
    return enc.classes[values]


def _call_aggregate(metric: MetricSpec, y: np.ndarray, p: np.ndarray, weight: np.ndarray | None) -> float:
    function = metric.function
    assert function is not None
    try:
        if weight is not None and _accepts_weight(function):
            value = function(y, p, sample_weight=weight)
        elif weight is not None:
            idx = np.repeat(np.arange(len(weight)), weight.astype(np.int64))
            value = function(y[idx], p[idx])
        else:
            value = function(y, p)
    except Exception as exc:
        raise ValueError(f"custom metric {metric.name!r} raised {type(exc).__name__}: {exc}") from exc
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(
            f"custom metric {metric.name!r} returned {type(value).__name__}, not a number; return one "
            "float per call, or declare it per-row"
        ) from None


def _accepts_weight(function: Callable[..., Any]) -> bool:
    try:
        return "sample_weight" in inspect.signature(function).parameters
    except (TypeError, ValueError):
        return False


def _aggregate_batch(prep: Prepared, term: Term, W: np.ndarray) -> np.ndarray:
    metric = term.metric
    out = np.empty((W.shape[0], prep.S))
    for s in range(prep.S):
        y = _decode(prep.y[:, s], prep.enc, metric, truth=True)
        p = _decode(term.pred[:, s], prep.enc, metric, truth=False)
        for r in range(W.shape[0]):
            out[r, s] = _call_aggregate(metric, y, p, W[r])
    return out


def _aggregate_point_and_jack(prep: Prepared, term: Term) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Point value, and a grouped (delete-a-group) jackknife for the BCa acceleration."""
    metric = term.metric
    n, S = prep.n, prep.S
    groups = min(n, JACKKNIFE_GROUPS)
    assignment = np.random.default_rng(0).permutation(n) % groups
    point = np.empty(S)
    jack = np.empty((groups, S))
    for s in range(S):
        y = _decode(prep.y[:, s], prep.enc, metric, truth=True)
        p = _decode(term.pred[:, s], prep.enc, metric, truth=False)
        point[s] = _call_aggregate(metric, y, p, None)
        for g in range(groups):
            keep = assignment != g
            jack[g, s] = _call_aggregate(metric, y[keep], p[keep], None)
    weight = np.ones((groups, S))
    return point, jack, weight
