"""The audit trail of deployments: tags on the model version, and an append-only log.

Every deployment (promotion, rollback, a Docker or Kubernetes rollout, failed or not)
becomes one JSON line. Each line carries the sha256 of the line before it, so an edited or
deleted line breaks the chain and ``verify_chain`` says where. The log lives in two places:
``<out-dir>/deployments.jsonl`` (this job's records, kept as a CI artifact) and, with a
registry, the artifact ``deployments.jsonl`` of one MLflow run per model (tagged
``mlops_ci.deployment_log``), appended to under the model's deployment lock so two jobs
never lose each other's lines.
"""

from __future__ import annotations

import hashlib
import json
import logging
import tempfile
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops_ci.result import now_iso
from mlops_ci.tracking.store import TrackingStore, tracking_errors

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

    from mlops_ci.platforms.base import RunContext

log = logging.getLogger(__name__)

RECORD_SCHEMA = "mlops-ci/deployment/v1"
LOG_FILE = "deployments.jsonl"
LOG_RUN_TAG = "mlops_ci.deployment_log"
TAG_PREFIX = "mlops_ci.deploy"
MAX_TAG_VALUE = 5000


@dataclass
class DeploymentRecord:
    """One deployment, as logged. ``status``: succeeded, failed, rolled-back or refused; for
    an analysis window of a canary or shadow (action ``canary-analysis``): promote, hold or
    abort."""

    target: str
    action: str
    status: str
    model: str | None = None
    version: str | None = None
    previous_version: str | None = None
    image: str | None = None
    image_digest: str | None = None
    endpoint: str | None = None
    message: str = ""
    context: Mapping[str, Any] = field(default_factory=dict)
    details: Mapping[str, Any] = field(default_factory=dict)
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    at: str = field(default_factory=now_iso)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": RECORD_SCHEMA,
            "id": self.id,
            "at": self.at,
            "target": self.target,
            "action": self.action,
            "status": self.status,
            "model": self.model,
            "version": self.version,
            "previous_version": self.previous_version,
            "image": self.image,
            "image_digest": self.image_digest,
            "endpoint": self.endpoint,
            "message": self.message,
            "commit": self.context.get("commit"),
            "actor": self.context.get("actor"),
            "pipeline_url": self.context.get("pipeline_url"),
            "platform": self.context.get("platform"),
            "details": dict(self.details),
        }


def context_of(run_context: RunContext) -> dict[str, Any]:
    return run_context.to_dict()


def line_hash(line: str) -> str:
    return hashlib.sha256(line.rstrip("\n").encode("utf-8")).hexdigest()


def chain_line(record: DeploymentRecord, previous_line: str | None) -> str:
    """The JSON line of ``record``, chained to the line before it (None: the first)."""
    data = record.to_dict()
    data["prev_sha256"] = line_hash(previous_line) if previous_line else None
    return json.dumps(data, sort_keys=True, separators=(",", ":"))


def verify_chain(text: str) -> str | None:
    """None when every line points at the one before it; else where the chain breaks."""
    previous: str | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except ValueError:
            return f"line {number} is not JSON"
        expected = line_hash(previous) if previous is not None else None
        if data.get("prev_sha256") != expected:
            return f"line {number} does not follow line {number - 1} (edited or removed lines)"
        previous = line
    return None


def append_local(path: Path, record: DeploymentRecord) -> str:
    """Append ``record`` to the local log at ``path``; returns the line written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    last = _last_line(path.read_text(encoding="utf-8")) if path.is_file() else None
    line = chain_line(record, last)
    with path.open("a", encoding="utf-8") as handle:
        handle.write(line + "\n")
    return line


def _last_line(text: str) -> str | None:
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else None


def version_tags(record: DeploymentRecord) -> dict[str, str]:
    """``mlops_ci.deploy.<target>.{at,status,commit,actor,image_digest,...}`` for the version."""
    data = record.to_dict()
    prefix = f"{TAG_PREFIX}.{record.target}"
    tags = {
        f"{prefix}.at": data["at"],
        f"{prefix}.status": data["status"],
        f"{prefix}.action": data["action"],
        f"{prefix}.id": data["id"],
    }
    for key in ("commit", "actor", "pipeline_url", "image", "image_digest", "endpoint"):
        if data.get(key):
            tags[f"{prefix}.{key}"] = str(data[key])[:MAX_TAG_VALUE]
    return tags


def tag_version(
    client: MlflowClient, store: TrackingStore, name: str, version: str, record: DeploymentRecord
) -> None:
    with tracking_errors(store):
        for key, value in version_tags(record).items():
            client.set_model_version_tag(name, version, key, value)


def log_run_id(client: MlflowClient, store: TrackingStore, *, model: str, experiment_id: str) -> str:
    """The run that holds ``model``'s deployment log, created on first use. Call it while
    holding the model's lock, so two jobs never create two."""
    with tracking_errors(store):
        runs = client.search_runs(
            [experiment_id],
            filter_string=f"tags.`{LOG_RUN_TAG}` = '{model}'",
            order_by=["attributes.start_time ASC"],
            max_results=1,
        )
        if runs:
            return runs[0].info.run_id
        run = client.create_run(
            experiment_id,
            run_name=f"deployments-{model}",
            tags={LOG_RUN_TAG: model, "mlflow.note.content": f"Deployment log of {model} (mlops-ci)"},
        )
        client.set_terminated(run.info.run_id, "FINISHED")
        return run.info.run_id


def read_registry_log(client: MlflowClient, store: TrackingStore, run_id: str) -> str:
    from mlflow.exceptions import MlflowException

    with tracking_errors(store), tempfile.TemporaryDirectory() as folder:
        names = {item.path for item in client.list_artifacts(run_id)}
        if LOG_FILE not in names:
            return ""
        try:
            local = client.download_artifacts(run_id, LOG_FILE, folder)
        except MlflowException:
            raise
        return Path(local).read_text(encoding="utf-8")


def append_registry_log(
    client: MlflowClient, store: TrackingStore, run_id: str, record: DeploymentRecord
) -> str:
    """Append ``record`` to the registry's log (read, append, write back: the caller holds
    the model's lock). Returns the whole log after the append."""
    text = read_registry_log(client, store, run_id)
    problem = verify_chain(text)
    if problem:
        log.warning("the deployment log of %s is not intact: %s; appending anyway", record.model, problem)
    line = chain_line(record, _last_line(text))
    updated = (text if text.endswith("\n") or not text else text + "\n") + line + "\n"
    with tracking_errors(store):
        client.log_text(run_id, updated, LOG_FILE)
    return updated


@dataclass(frozen=True)
class AuditTrail:
    """Where a deployment leaves its records: the local log, and the registry (tags on the
    model version and the registry's log, appended under the model's lock).

    ``store`` is called only when a record goes to the registry, so a deployment that logs
    locally only (a render, a model the registry does not know) never resolves it."""

    log_path: Path
    store: Callable[[], TrackingStore]
    experiment: str  # where the registry's log run lives
    context: Mapping[str, Any] = field(default_factory=dict)  # the run context of every record
    lock_timeout_s: float = 120.0
    stale_after_s: float = 300.0

    def append_held(self, client: MlflowClient, store: TrackingStore, record: DeploymentRecord) -> None:
        """The registry's log and the local log, the caller holding the model's lock; a
        version that was deployed is tagged first."""
        if record.status == "succeeded" and record.model and record.version:
            tag_version(client, store, record.model, record.version, record)
        self._append_registry(client, store, record)
        append_local(self.log_path, record)

    def record(self, record: DeploymentRecord) -> None:
        """Record a target deployment (Docker, Kubernetes): the local log always; with a
        model version the registry knows, its tags and the registry's log too."""
        from mlops_ci.deploy.lock import model_lock
        from mlops_ci.deploy.promotion import get_version
        from mlops_ci.errors import UsageError
        from mlops_ci.tracking.store import connect

        append_local(self.log_path, record)
        if not (record.model and record.version):
            return
        store = self.store()
        client = connect(store)
        try:
            get_version(client, store, record.model, record.version)
        except UsageError:
            log.info(
                "%s v%s is not in the registry at %s: the deployment is logged locally only",
                record.model,
                record.version,
                store.display_uri,
            )
            return
        with model_lock(
            client,
            store,
            record.model,
            purpose=f"log a {record.target} deployment",
            timeout_s=self.lock_timeout_s,
            stale_after_s=self.stale_after_s,
        ):
            if record.status == "succeeded":
                tag_version(client, store, record.model, record.version, record)
            self._append_registry(client, store, record)

    def _append_registry(self, client: MlflowClient, store: TrackingStore, record: DeploymentRecord) -> None:
        from mlops_ci.tracking.store import get_or_create_experiment

        experiment_id = get_or_create_experiment(client, self.experiment, store)
        run_id = log_run_id(client, store, model=str(record.model), experiment_id=experiment_id)
        append_registry_log(client, store, run_id, record)
