"""The interface every CI platform implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class RunContext:
    """Where a step runs: recorded in every step result and as lineage on runs and versions."""

    platform: str
    commit: str | None = None
    branch: str | None = None
    pr: str | None = None
    pipeline_url: str | None = None
    actor: str | None = None
    repository: str | None = None
    event: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Platform(ABC):
    """Base class: a platform reads its context and publishes a step's outputs and summary."""

    name = "local"

    def __init__(self, env: Mapping[str, str], *, cwd: Path, out_dir: Path) -> None:
        self.env = env
        self.cwd = cwd
        self.out_dir = out_dir

    @abstractmethod
    def context(self) -> RunContext:
        """Commit, branch, PR/MR, pipeline URL and actor of the current run."""

    @abstractmethod
    def write_outputs(self, step: str, outputs: Mapping[str, str]) -> None:
        """Publish a step's outputs where the next job or step can read them."""

    @abstractmethod
    def write_summary(self, markdown: str) -> None:
        """Show a step's markdown summary where the platform shows such things."""
