"""Benchmark: paired bootstrap of five metrics on a 1,000,000-row holdout, 2,000 resamples.

Ours (``mlops_ci.stats.bootstrap_models``: label metrics resample cell counts exactly,
score metrics get Poisson(1) row weights in blocks and one matrix product per block, ROC AUC
through its linear projection) against the naive way — a Python loop over resamples that
indexes the rows and calls ``sklearn.metrics`` for each metric and each model. The naive
loop would take far too long in full, so by default it runs ``--naive-resamples`` resamples
and its time is extrapolated linearly to ``--resamples`` (said in the output).

    .venv/bin/python benchmarks/validate_benchmark.py [--rows 1000000] [--resamples 2000]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

METRICS = ("accuracy", "f1", "roc-auc", "log-loss", "brier")


def make_holdout(rows: int, seed: int) -> dict[str, np.ndarray]:
    """Two correlated probabilistic classifiers of similar quality on a 24 %-positive target."""
    rng = np.random.default_rng(seed)
    y = (rng.random(rows) < 0.24).astype(np.int64)
    signal = rng.normal(0, 1, rows) + 1.6 * y
    logit_a = signal + rng.normal(0, 0.6, rows) - 1.0
    logit_b = signal + rng.normal(0, 0.6, rows) - 1.0
    p_a, p_b = 1 / (1 + np.exp(-logit_a)), 1 / (1 + np.exp(-logit_b))
    return {
        "y": y,
        "p_a": p_a,
        "p_b": p_b,
        "l_a": (p_a > 0.5).astype(np.int64),
        "l_b": (p_b > 0.5).astype(np.int64),
    }


def ours(data: dict[str, np.ndarray], resamples: int) -> tuple[float, dict[str, tuple[float, float]]]:
    from mlops_ci import stats

    started = time.perf_counter()
    boot = stats.bootstrap_models(
        data["y"],
        {
            "candidate": {"labels": data["l_a"], "scores": data["p_a"]},
            "baseline": {"labels": data["l_b"], "scores": data["p_b"]},
        },
        [stats.get_metric(m, pos_label=1) for m in METRICS],
        n_resamples=resamples,
        random_state=0,
    )
    out = {}
    for metric in METRICS:
        result = boot.compare(metric, method="bca")
        out[metric] = (result.statistic, result.standard_error)
    return time.perf_counter() - started, out


def naive(data: dict[str, np.ndarray], resamples: int) -> tuple[float, dict[str, float]]:
    from sklearn import metrics as skm

    y, p_a, p_b, l_a, l_b = data["y"], data["p_a"], data["p_b"], data["l_a"], data["l_b"]
    rng = np.random.default_rng(0)
    functions = {
        "accuracy": lambda t, lab, p: skm.accuracy_score(t, lab),
        "f1": lambda t, lab, p: skm.f1_score(t, lab),
        "roc-auc": lambda t, lab, p: skm.roc_auc_score(t, p),
        "log-loss": lambda t, lab, p: skm.log_loss(t, p, labels=[0, 1]),
        "brier": lambda t, lab, p: skm.brier_score_loss(t, p),
    }
    diffs: dict[str, list[float]] = {m: [] for m in METRICS}
    started = time.perf_counter()
    for _ in range(resamples):
        idx = rng.integers(0, len(y), len(y))
        t = y[idx]
        for metric, f in functions.items():
            diffs[metric].append(f(t, l_a[idx], p_a[idx]) - f(t, l_b[idx], p_b[idx]))
    elapsed = time.perf_counter() - started
    return elapsed, {m: float(np.std(v, ddof=1)) if len(v) > 1 else float("nan") for m, v in diffs.items()}


def analytic_standard_errors(data: dict[str, np.ndarray]) -> dict[str, float]:
    """Large-sample standard errors of the five differences, to check ours against."""
    from mlops_ci import stats

    y, n = data["y"], len(data["y"])
    out = {}
    for metric in ("accuracy", "log-loss", "brier"):
        m = stats.get_metric(metric, pos_label=1)
        a = stats.per_row_losses(y, data["l_a"] if metric == "accuracy" else data["p_a"], m)
        b = stats.per_row_losses(y, data["l_b"] if metric == "accuracy" else data["p_b"], m)
        out[metric] = float(np.std(a - b, ddof=1) / np.sqrt(n))
    out["roc-auc"] = float(np.sqrt(stats.delong(y, data["p_a"], data["p_b"]).details["variance"]))
    # F1 = 2 tp / (pp + P): influence function of the ratio, per row, for each model.
    f1_rows = []
    for labels in (data["l_a"], data["l_b"]):
        tp = ((labels == 1) & (y == 1)).astype(float)
        pp, pos = (labels == 1).astype(float), (y == 1).astype(float)
        num, den = 2 * tp.mean(), pp.mean() + pos.mean()
        f1_rows.append((2 * tp - (num / den) * (pp + pos)) / den)
    out["f1"] = float(np.std(f1_rows[0] - f1_rows[1], ddof=1) / np.sqrt(n))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--resamples", type=int, default=2000)
    parser.add_argument(
        "--naive-resamples",
        type=int,
        default=20,
        help="resamples the naive loop actually runs (its time is extrapolated); 0 = all",
    )
    args = parser.parse_args()
    load = os.getloadavg()[0]
    print(
        f"holdout: {args.rows:,} rows, metrics: {', '.join(METRICS)}, {args.resamples:,} resamples, 2 models"
    )
    print(f"machine: {os.cpu_count()} cores, load average {load:.2f} at start")
    data = make_holdout(args.rows, seed=1)

    ours_s, ours_out = ours(data, args.resamples)
    print(f"ours : {ours_s:8.1f} s for {args.resamples:,} resamples (all five metrics, BCa intervals)")

    naive_n = args.resamples if args.naive_resamples <= 0 else min(args.naive_resamples, args.resamples)
    naive_s, naive_se = naive(data, naive_n)
    naive_total = naive_s * args.resamples / naive_n
    if naive_n < args.resamples:
        print(
            f"naive: {naive_total:8.1f} s for {args.resamples:,} resamples — EXTRAPOLATED from {naive_n} "
            f"resamples measured in {naive_s:.1f} s ({naive_s / naive_n:.2f} s per resample)"
        )
    else:
        print(f"naive: {naive_total:8.1f} s for {args.resamples:,} resamples (measured)")
    print(f"ratio: ours is {naive_total / ours_s:,.0f}x faster")
    print(f"load average at end: {os.getloadavg()[0]:.2f}")
    reference = analytic_standard_errors(data)
    print(
        "standard error of candidate - baseline: ours (bootstrap), a closed form (per-row delta for the\n"
        f"means, DeLong for ROC AUC, delta method for F1), and the naive loop's own {naive_n} resamples (noisy):"
    )
    for metric in METRICS:
        diff, se = ours_out[metric]
        print(
            f"  {metric:9s} difference {diff:+.5f}  SE ours {se:.6f}  closed form {reference[metric]:.6f}  "
            f"naive {naive_se[metric]:.6f}"
        )


if __name__ == "__main__":
    main()
