"""What the validation decided, check by check, in its own terms: the step turns each
``Finding`` into a ``Check`` of its result."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mlops_ci.result import CHECK_STATUSES


@dataclass(frozen=True)
class Finding:
    """One decision, with the numbers behind it (the fields of a step result's check)."""

    name: str
    status: str
    value: float | None = None
    baseline: float | None = None
    interval: tuple[float | None, float | None] | None = None
    p_value: float | None = None
    threshold: float | None = None
    message: str = ""
    blocking: bool = True
    details: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.status not in CHECK_STATUSES:
            raise ValueError(f"finding status must be one of {CHECK_STATUSES}, got {self.status!r}")
