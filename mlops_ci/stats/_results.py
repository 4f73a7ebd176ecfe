"""Frozen result objects, in the style of ``scipy.stats``: ``statistic``, ``pvalue``,
``confidence_interval`` (a ``(low, high)`` named tuple), what was decided and why."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np


class ConfidenceInterval(NamedTuple):
    low: float
    high: float


@dataclass(frozen=True)
class TestResult:
    """A classical paired test (McNemar, DeLong, Wilcoxon signed-rank, paired t).

    ``statistic`` is the test statistic, ``estimate`` the estimated effect (candidate minus
    baseline) and ``confidence_interval`` an interval for that effect. ``decision`` is
    ``"reject"`` or ``"retain"`` (of the null hypothesis at ``alpha``) or ``"skip"`` when the
    data cannot answer the question (``reason`` says why; the numbers are then NaN).
    """

    test: str
    statistic: float
    pvalue: float
    estimate: float
    confidence_interval: ConfidenceInterval
    decision: str
    reason: str
    alternative: str
    alpha: float
    n: int
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def skipped(self) -> bool:
        return self.decision == "skip"


@dataclass(frozen=True)
class HolmResult:
    """Holm–Bonferroni step-down over a family of p-values, in the input order.

    ``reject[i]`` says whether hypothesis i is rejected with family-wise error ``alpha``;
    ``pvalues_adjusted[i]`` is its Holm-adjusted p-value (reject exactly when it is at most
    ``alpha``); ``alphas[i]`` is the level hypothesis i was compared with (``alpha / (m - rank)``).
    """

    pvalues: tuple[float, ...]
    pvalues_adjusted: tuple[float, ...]
    alphas: tuple[float, ...]
    reject: tuple[bool, ...]
    alpha: float


def skipped_interval() -> ConfidenceInterval:
    return ConfidenceInterval(float("nan"), float("nan"))


def as_float(value: Any) -> float:
    return float(np.asarray(value, dtype=np.float64))
