"""Recording a validation in MLflow: metrics and reports on the candidate's run, the verdict
and the champion it was compared against as tags on the candidate's registry version
(deploy's compare-and-set promotion reads them)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from mlops_ci.result import now_iso
from mlops_ci.tracking import validation_record
from mlops_ci.tracking.provenance import ProvenanceKey
from mlops_ci.tracking.store import TrackingStore, tracking_errors
from mlops_ci.tracking.validation_record import AT_TAG, CHAMPION_TAG, STATUS_TAG
from mlops_ci.validation.findings import Finding
from mlops_ci.validation.models import ModelRef

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

ARTIFACT_DIR = "mlops-ci/validate"
_UNSAFE = re.compile(r"[^A-Za-z0-9_\-. /]")


def metric_key(*parts: str) -> str:
    return "/".join(_UNSAFE.sub("_", p) for p in parts)


def metrics_of(checks: Sequence[Finding]) -> dict[str, float]:
    """validate/<metric>[/<slice>] (candidate), .../champion, .../diff, .../diff_low, .../diff_high."""
    out: dict[str, float] = {}
    for c in checks:
        kind = c.details.get("kind")
        if kind not in ("comparison", "absolute", "slice") or c.status == "skipped":
            continue
        parts = ["validate", str(c.details.get("metric"))]
        if kind == "slice":
            parts.append(str(c.details["slice"]))
        base = metric_key(*parts)
        if c.value is not None:
            out[base] = c.value
        if c.baseline is not None:
            out[f"{base}/champion"] = c.baseline
        if c.details.get("difference") is not None and c.interval:
            out[f"{base}/diff"] = c.details["difference"]
            if c.interval[0] is not None and c.interval[1] is not None:
                out[f"{base}/diff_low"], out[f"{base}/diff_high"] = c.interval
    return out


def log_to_run(
    client: MlflowClient, store: TrackingStore, run_id: str, checks: Sequence[Finding], folder: Path
) -> None:
    import time

    from mlflow.entities import Metric

    stamp = int(time.time() * 1000)
    metrics = [Metric(key, float(value), stamp, 0) for key, value in metrics_of(checks).items()]
    with tracking_errors(store):
        for start in range(0, len(metrics), 900):
            client.log_batch(run_id, metrics=metrics[start : start + 900])
        client.log_artifacts(run_id, str(folder), artifact_path=ARTIFACT_DIR)


def tag_version(
    client: MlflowClient,
    store: TrackingStore,
    candidate: ModelRef,
    *,
    passed: bool,
    baseline: ModelRef | None,
    signing_key: ProvenanceKey | None = None,
) -> dict[str, str]:
    """The validation record on the candidate's version; signed when a trusted job holding
    the provenance key wrote it (``signing_key``), which `deploy` can then verify."""
    tags = {
        STATUS_TAG: "passed" if passed else "failed",
        # The version compared against; a baseline outside the registry is named by its URI.
        CHAMPION_TAG: "none" if baseline is None else (baseline.version or baseline.uri),
        AT_TAG: now_iso(),
    }
    if signing_key is not None:
        tags = validation_record.signed(signing_key, candidate.name, str(candidate.version), tags)
    with tracking_errors(store):
        for key, value in tags.items():
            client.set_model_version_tag(candidate.name, candidate.version, key, value)
    return tags
