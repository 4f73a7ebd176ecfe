"""The MLflow run a training command runs in: created with its lineage, handed to the
command through the environment, closed with the command's outcome."""

from __future__ import annotations

import contextlib
import json
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from mlops_ci import __version__
from mlops_ci.platforms import RunContext
from mlops_ci.tracking.command import TrainingCommand
from mlops_ci.tracking.environment import describe_environment, training_interpreter
from mlops_ci.tracking.fingerprint import DataFingerprint
from mlops_ci.tracking.runs import FINGERPRINT_TAG, find_logged_model
from mlops_ci.tracking.store import TrackingStore, tracking_errors

if TYPE_CHECKING:
    from mlflow.entities import LoggedModel
    from mlflow.tracking import MlflowClient

    from mlops_ci.gitinfo import GitInfo
    from mlops_ci.tracking.provenance import ProvenanceKey

ARTIFACT_DIR = "mlops-ci"
LOG_TAIL_BYTES = 1 << 20
MAX_TAG_LENGTH = 5000


def lineage_tags(run_context: RunContext, git: GitInfo) -> dict[str, str]:
    """Tags that say where a model came from; also copied onto its registry versions."""
    tags = {
        "mlflow.source.git.commit": run_context.commit or git.commit,
        "mlflow.source.git.branch": run_context.branch or git.branch,
        "mlflow.source.git.repoURL": git.remote,
        "mlflow.user": run_context.actor,
        "mlops_ci.git.dirty": None if git.dirty is None else str(git.dirty).lower(),
        "mlops_ci.git.message": git.message,
        "mlops_ci.ci.platform": run_context.platform,
        "mlops_ci.ci.pr": run_context.pr,
        "mlops_ci.ci.pipeline_url": run_context.pipeline_url,
        "mlops_ci.ci.actor": run_context.actor,
        "mlops_ci.ci.repository": run_context.repository,
        "mlops_ci.ci.event": run_context.event,
    }
    return {key: value[:MAX_TAG_LENGTH] for key, value in tags.items() if value}


@dataclass
class TrainingRun:
    client: MlflowClient
    store: TrackingStore
    experiment_id: str
    run_id: str
    command: TrainingCommand

    @classmethod
    def start(
        cls,
        client: MlflowClient,
        store: TrackingStore,
        *,
        experiment_id: str,
        experiment_name: str,
        run_name: str | None,
        project_dir: Path,
        run_context: RunContext,
        command: TrainingCommand,
        data: Sequence[DataFingerprint],
        fingerprints: Mapping[str, str],
        code_files: int,
    ) -> TrainingRun:
        from mlflow.entities import Param

        from mlops_ci.gitinfo import read_git_info

        git = read_git_info(project_dir)
        commit = run_context.commit or git.commit
        tags = lineage_tags(run_context, git)
        tags.update(
            {
                "mlflow.source.type": "JOB",
                "mlflow.source.name": command.display()[:MAX_TAG_LENGTH],
                FINGERPRINT_TAG: fingerprints["step"],
                "mlops_ci.code_fingerprint": fingerprints["code"],
                "mlops_ci.code_files": str(code_files),
                "mlops_ci.data_fingerprint": fingerprints["data"],
                "mlops_ci.seed": str(command.seed),
                "mlops_ci.version": __version__,
            }
        )
        for fp in data:
            tags[f"mlops_ci.data.{fp.path}"[:250]] = fp.sha256
        environment = describe_environment(training_interpreter(command.argv, command.env))
        tags["mlops_ci.env.python"] = environment.python
        run_name = run_name or (f"train-{commit[:8]}" if commit else None)
        with tracking_errors(store):
            run = client.create_run(experiment_id, run_name=run_name, tags=tags)
            run_id = run.info.run_id
            params = [Param(key, str(value)[:6000]) for key, value in command.params.items()]
            if params:
                client.log_batch(run_id, params=params)
            client.log_text(
                run_id,
                json.dumps([fp.to_dict() for fp in data], indent=2),
                f"{ARTIFACT_DIR}/data_fingerprints.json",
            )
            client.log_text(run_id, environment.requirements, f"{ARTIFACT_DIR}/requirements.txt")
        return cls(
            client,
            store,
            experiment_id,
            run_id,
            command.with_env(
                {
                    "MLFLOW_TRACKING_URI": store.uri,
                    "MLFLOW_RUN_ID": run_id,
                    "MLFLOW_EXPERIMENT_ID": experiment_id,
                    "MLFLOW_EXPERIMENT_NAME": experiment_name,
                }
            ),
        )

    def attach_log(self, log_path: Path) -> None:
        """Store the command's output (its last megabyte) on the run."""
        size = log_path.stat().st_size
        with tempfile.TemporaryDirectory() as tmp:
            tail = Path(tmp) / "train.log"
            with log_path.open("rb") as source:
                source.seek(max(0, size - LOG_TAIL_BYTES))
                tail.write_bytes(source.read())
            with tracking_errors(self.store):
                self.client.log_artifact(self.run_id, str(tail), ARTIFACT_DIR)

    def logged_model(self) -> LoggedModel | None:
        with tracking_errors(self.store):
            return find_logged_model(self.client, self.client.get_run(self.run_id))

    def sign(self, key: ProvenanceKey, *, fingerprint: str, model: LoggedModel) -> None:
        """Record that a trusted job produced this run and its model (SECURITY.md)."""
        from mlops_ci.tracking import provenance
        from mlops_ci.tracking.runs import model_digest

        fields = provenance.run_fields(
            run_id=self.run_id,
            experiment_id=self.experiment_id,
            fingerprint=fingerprint,
            model_id=model.model_id,
            digest=model_digest(model, self.store),
        )
        with tracking_errors(self.store):
            self.client.set_tag(
                self.run_id, provenance.RUN_TAG, provenance.sign(key, provenance.RUN_PURPOSE, fields)
            )

    def finish(self, status: str, note: str | None = None) -> None:
        with tracking_errors(self.store):
            if note:
                self.client.set_tag(self.run_id, "mlops_ci.failure", note)
            self.client.set_terminated(self.run_id, status)

    def mark_killed(self) -> None:
        """Best effort while being interrupted: never mask the interruption itself."""
        with contextlib.suppress(Exception):
            self.client.set_terminated(self.run_id, "KILLED")
