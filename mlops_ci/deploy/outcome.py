"""What a deployment reports back, whatever the target: a typed, frozen outcome that the
deploy step turns into its result."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class CheckRecord:
    """One decision a deployment made (the rollout, the compare-and-set, the manifests)."""

    name: str
    passed: bool
    message: str
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StepDecision:
    """One analysis window of a progressive rollout: at ``percent`` of the traffic to the
    candidate (0: a shadow), the ``window``-th window decided ``action`` (promote, hold,
    abort) because of ``reason``; ``details`` holds the counts and tests."""

    percent: int
    window: int
    action: str
    reason: str
    details: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"percent": self.percent, "window": self.window, **self.details}


@dataclass(frozen=True)
class DeployOutcome:
    """What a deployment did.

    ``action``: promoted, unchanged, rolled-back, refused, deployed, rendered or failed;
    ``ok`` is False when it was refused or failed (the previous version keeps serving).
    The optional fields are None when the deployment has nothing to report there, and ''
    when it reports that there is no value (no previous version, an unnamed model).
    """

    target: str
    action: str
    ok: bool
    message: str
    checks: tuple[CheckRecord, ...] = ()
    reason: str | None = None  # why a promotion was refused (champion-changed, not-validated, ...)
    model: str | None = None
    version: str | None = None
    previous_version: str | None = None
    model_uri: str | None = None
    image: str | None = None
    endpoint: str | None = None
    manifests: Path | None = None
    deployment_id: str | None = None
    deployment_log: Path | None = None
    artifacts: tuple[Path, ...] = ()
    strategy: str | None = None  # replace, canary or shadow (None: a registry promotion)
    decisions: tuple[StepDecision, ...] = ()  # every analysis window of a progressive rollout
    proxy_endpoint: str | None = None  # the canary proxy, the service's stable entry point
