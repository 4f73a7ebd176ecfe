"""What the metrics, the input preparation and the resampling engine share: the label
encoding, the prepared inputs, and what the engine needs to know of a metric.

It sits below all three so that none of them imports another in a circle: the metric
classes (``metrics``) call the engine for their point value, and the engine tells the
metrics apart by their ``kind`` instead of by their classes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

# How the engine computes a metric (``MetricSpec.kind``); see ``_engine``.
LINEAR, RANK, AGGREGATE = "linear", "rank", "aggregate"


@dataclass(frozen=True)
class Encoding:
    """What a metric needs to know about the labels: the class list (sorted), and the
    index of the positive class for binary metrics."""

    classes: np.ndarray | None = None
    pos: int | None = None

    @property
    def n_classes(self) -> int:
        return 0 if self.classes is None else len(self.classes)


class MetricSpec(Protocol):
    """A metric as the engine and the input preparation see it. ``kind`` is ``linear``
    (``features`` and ``finish``), ``rank`` (ROC AUC) or ``aggregate`` (``function``)."""

    name: str
    input: str
    task: str
    binary_only: bool
    params: Mapping[str, Any]
    kind: str


@dataclass
class Prepared:
    """Validated, encoded inputs: ``y`` is (n, S) class codes or floats."""

    y: np.ndarray
    enc: Encoding
    batched: bool

    @property
    def n(self) -> int:
        return self.y.shape[0]

    @property
    def S(self) -> int:
        return self.y.shape[1]
