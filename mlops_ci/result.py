"""The step-result contract: every step writes ``<out-dir>/<step>.json``.

The file is read by the gate, by `mlops-ci report` and by PR review bots, so its shape is
published as a JSON Schema (``mlops_ci/schemas/step-result.v1.json``) and versioned.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from mlops_ci.errors import UsageError

SCHEMA_NAME = "mlops-ci/step-result/v1"
STEP_STATUSES = ("passed", "failed", "skipped", "error")
CHECK_STATUSES = ("passed", "failed", "warning", "skipped", "error")


@dataclass(frozen=True)
class Finding:
    """One decision a domain made, with the numbers behind it: the fields of a check, in a
    frozen record that domain outcomes carry (validation's findings, profiling's decisions);
    the step turns each into a ``Check`` of its result (``Check.from_finding``)."""

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


@dataclass
class Check:
    """One decision a step made, with the numbers behind it."""

    name: str
    status: str
    value: float | None = None
    baseline: float | None = None
    interval: tuple[float, float] | None = None
    p_value: float | None = None
    threshold: float | None = None
    message: str = ""
    blocking: bool = True
    details: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.status not in CHECK_STATUSES:
            raise ValueError(f"check status must be one of {CHECK_STATUSES}, got {self.status!r}")

    @classmethod
    def from_finding(cls, finding: Finding) -> Check:
        return cls(
            finding.name,
            finding.status,
            value=finding.value,
            baseline=finding.baseline,
            interval=finding.interval,
            p_value=finding.p_value,
            threshold=finding.threshold,
            message=finding.message,
            blocking=finding.blocking,
            details=dict(finding.details),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status,
            "value": _finite(self.value),
            "baseline": _finite(self.baseline),
            "interval": [_finite(v) for v in self.interval] if self.interval else None,
            "p_value": _finite(self.p_value),
            "threshold": _finite(self.threshold),
            "message": self.message,
            "blocking": self.blocking,
            "details": self.details,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Check:
        interval = data.get("interval")
        return cls(
            name=data["name"],
            status=data["status"],
            value=data.get("value"),
            baseline=data.get("baseline"),
            interval=(interval[0], interval[1]) if interval else None,
            p_value=data.get("p_value"),
            threshold=data.get("threshold"),
            message=data.get("message", ""),
            blocking=data.get("blocking", True),
            details=dict(data.get("details") or {}),
        )


@dataclass
class StepResult:
    """What a step did. ``outputs`` are flat strings so every CI system can carry them."""

    step: str
    status: str
    summary: str
    outputs: dict[str, str] = field(default_factory=dict)
    checks: list[Check] = field(default_factory=list)
    artifacts: list[str] = field(default_factory=list)
    context: dict[str, Any] = field(default_factory=dict)
    started_at: str = field(default_factory=lambda: now_iso())
    duration_s: float = 0.0
    # Markdown for the CI job summary when the step renders its own (the gate shows its
    # comment); not part of the JSON file. None: the runner renders the generic summary.
    summary_markdown: str | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.status not in STEP_STATUSES:
            raise ValueError(f"step status must be one of {STEP_STATUSES}, got {self.status!r}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA_NAME,
            "step": self.step,
            "status": self.status,
            "summary": self.summary,
            "outputs": {key: str(value) for key, value in self.outputs.items()},
            "checks": [check.to_dict() for check in self.checks],
            "artifacts": [str(path) for path in self.artifacts],
            "context": self.context,
            "started_at": self.started_at,
            "duration_s": round(self.duration_s, 3),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StepResult:
        return cls(
            step=data["step"],
            status=data["status"],
            summary=data["summary"],
            outputs=dict(data.get("outputs") or {}),
            checks=[Check.from_dict(c) for c in data.get("checks") or []],
            artifacts=list(data.get("artifacts") or []),
            context=dict(data.get("context") or {}),
            started_at=data["started_at"],
            duration_s=data.get("duration_s", 0.0),
        )

    def write(self, out_dir: Path) -> Path:
        """Write ``<out_dir>/<step>.json`` atomically: a reader never sees half a file."""
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / f"{self.step}.json"
        write_text_atomic(path, json.dumps(self.to_dict(), indent=2, allow_nan=False) + "\n")
        return path


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _finite(value: float | None) -> float | None:
    """JSON has no NaN or infinity; a missing number is null."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def write_text_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def step_result_schema() -> dict[str, Any]:
    text = resources.files("mlops_ci.schemas").joinpath("step-result.v1.json").read_text("utf-8")
    return json.loads(text)


@lru_cache(maxsize=1)
def _validator():
    """Built once: ``jsonschema.validate`` checks the schema itself on every call (~0.1 s)."""
    import jsonschema

    return jsonschema.Draft202012Validator(step_result_schema())


def earlier_result(out_dir: Path, step: str) -> StepResult | None:
    """The result ``step`` wrote to ``out_dir``, or None when it has not run there; an
    unreadable or invalid file is a usage error naming it. Steps read it through
    ``StepContext.earlier``; the commands that are not steps call it directly."""
    path = out_dir / f"{step}.json"
    return read_step_result(path) if path.is_file() else None


def read_step_result(path: Path) -> StepResult:
    """Read and validate a step-result file; a missing or invalid file is a usage error."""
    import jsonschema

    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"step result {path} does not exist; run that step first") from None
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read step result {path}: {exc}") from None
    error = jsonschema.exceptions.best_match(_validator().iter_errors(data))
    if error is not None:
        where = "/".join(map(str, error.absolute_path)) or "top level"
        raise UsageError(f"{path} is not a valid step result ({where}: {error.message})") from None
    return StepResult.from_dict(data)
