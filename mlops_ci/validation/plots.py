"""PNG plots (matplotlib, Agg backend, no display needed): a forest plot of the
difference intervals, and ROC and calibration curves of both models."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mlops_ci.validation.policy import Outcome
from mlops_ci.validation.problem import Problem

COLOURS = {"passed": "#2e7d32", "failed": "#c62828", "warning": "#ef6c00", "skipped": "#9e9e9e"}
CALIBRATION_BINS = 10


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def forest_plot(outcomes: Sequence[Outcome], path: Path) -> Path | None:
    """One panel per metric (their units differ), one row per check and segment: the
    interval of candidate - baseline, zero, and the margin on the harmful side."""
    rows = [o for o in outcomes if o.spec.comparison and o.result is not None and o.result.decision != "skip"]
    if not rows:
        return None
    plt = _pyplot()
    metrics = list(dict.fromkeys(o.spec.metric for o in rows))
    heights = [max(1.2, 0.38 * sum(o.spec.metric == m for o in rows) + 0.9) for m in metrics]
    fig, axes = plt.subplots(
        len(metrics), 1, figsize=(8, sum(heights)), squeeze=False, gridspec_kw={"height_ratios": heights}
    )
    for ax, metric in zip(axes[:, 0], metrics, strict=True):
        mine = [o for o in rows if o.spec.metric == metric]
        for i, o in enumerate(reversed(mine)):
            r = o.result
            low, high = r.confidence_interval
            colour = COLOURS.get(o.finding.status if o.finding else "passed", "#333333")
            ax.plot([low, high], [i, i], color=colour, linewidth=2.5, solid_capstyle="butt")
            ax.plot([r.statistic], [i], "o", color=colour)
            if o.spec.margin:
                harm = -o.spec.margin if r.higher_is_better else o.spec.margin
                ax.plot([harm], [i], "|", color="#555555", markersize=14)
        ax.axvline(0, color="#333333", linewidth=0.8)
        ax.set_yticks(range(len(mine)), [_label(o) for o in reversed(mine)], fontsize=8)
        direction = "higher is better" if mine[0].result.higher_is_better else "lower is better"
        ax.set_title(f"{metric}: candidate - champion ({direction}; | = margin)", fontsize=9)
        ax.tick_params(axis="x", labelsize=8)
        ax.set_ylim(-0.7, len(mine) - 0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _label(outcome: Outcome) -> str:
    alpha = outcome.result.alpha
    base = outcome.spec.rule if outcome.segment is None else outcome.segment.name
    return f"{base} ({1 - alpha:.1%})" if alpha != 0.05 else base


def _binary_scores(problem: Problem) -> dict[str, np.ndarray]:
    out = {}
    for role, pred in (("candidate", problem.candidate), ("champion", problem.baseline)):
        if pred is not None and pred.scores is not None:
            out[role] = problem.inputs(pred)["scores"]
    return out


def roc_plot(problem: Problem, path: Path) -> Path | None:
    if not problem.binary:
        return None
    scores = _binary_scores(problem)
    if not scores:
        return None
    from sklearn.metrics import roc_auc_score, roc_curve

    truth = problem.y == problem.pos_label
    if truth.all() or not truth.any():
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 5))
    for role, s in scores.items():
        fpr, tpr, _ = roc_curve(truth, s)
        ax.plot(fpr, tpr, label=f"{role} (AUC {roc_auc_score(truth, s):.4f})")
    ax.plot([0, 1], [0, 1], ":", color="#999999")
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title(f"ROC, positive class {problem.pos_label}", fontsize=10)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def calibration_plot(problem: Problem, path: Path) -> Path | None:
    """Reliability diagram: mean predicted probability vs observed frequency, in deciles."""
    if not problem.binary:
        return None
    scores = _binary_scores(problem)
    if not scores:
        return None
    truth = (problem.y == problem.pos_label).astype(float)
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 5))
    for role, s in scores.items():
        edges = np.unique(np.quantile(s, np.linspace(0, 1, CALIBRATION_BINS + 1)))
        which = np.clip(np.searchsorted(edges, s, side="right") - 1, 0, max(len(edges) - 2, 0))
        counts = np.bincount(which, minlength=len(edges) - 1)
        keep = counts > 0
        predicted = np.bincount(which, weights=s, minlength=len(edges) - 1)[keep] / counts[keep]
        observed = np.bincount(which, weights=truth, minlength=len(edges) - 1)[keep] / counts[keep]
        ax.plot(predicted, observed, "o-", label=role, markersize=4)
    ax.plot([0, 1], [0, 1], ":", color="#999999")
    ax.set_xlabel("mean predicted probability")
    ax.set_ylabel("observed frequency")
    ax.set_title(f"calibration (deciles), positive class {problem.pos_label}", fontsize=10)
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def all_plots(outcomes: Sequence[Outcome], problem: Problem, folder: Path) -> list[Any]:
    folder.mkdir(parents=True, exist_ok=True)
    made = [
        forest_plot(outcomes, folder / "forest.png"),
        roc_plot(problem, folder / "roc.png"),
        calibration_plot(problem, folder / "calibration.png"),
    ]
    return [p for p in made if p is not None]
