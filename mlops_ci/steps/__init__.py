"""One module per step; each exports ``STEP``. Step modules import only cheap modules at
the top, so listing them (``mlops-ci --help``) stays fast."""

from __future__ import annotations

import importlib

from mlops_ci.steps.base import GLOBAL_OPTIONS, SHARED_OPTIONS, Output, Step, StepContext

__all__ = [
    "GLOBAL_OPTIONS",
    "SHARED_OPTIONS",
    "STEP_NAMES",
    "Output",
    "Step",
    "StepContext",
    "all_steps",
    "get_step",
]

# In pipeline order.
STEP_NAMES: tuple[str, ...] = (
    "train",
    "register",
    "validate",
    "package",
    "profile",
    "deploy",
    "score",
    "drift",
    "quality",
    "gate",
)


def get_step(name: str) -> Step:
    return importlib.import_module(f"mlops_ci.steps.{name}").STEP


def all_steps() -> dict[str, Step]:
    return {name: get_step(name) for name in STEP_NAMES}
