"""Registering a training run's model, as one call: ``register(request)`` finds the run and
its model, registers it once (again for the same run returns the existing version) with
its lineage, and points the aliases at the version."""

from __future__ import annotations

from dataclasses import dataclass

from mlops_ci.errors import UsageError
from mlops_ci.platforms import RunContext
from mlops_ci.tracking.store import TrackingStore

# Lineage tags copied from the training run onto the version, under shorter names.
RUN_LINEAGE = {
    "mlflow.source.git.commit": "mlops_ci.commit",
    "mlflow.source.git.branch": "mlops_ci.branch",
    "mlflow.source.git.repoURL": "mlops_ci.repository_url",
    "mlops_ci.data_fingerprint": "mlops_ci.data_fingerprint",
    "mlops_ci.code_fingerprint": "mlops_ci.code_fingerprint",
    "mlops_ci.fingerprint": "mlops_ci.fingerprint",
    "mlops_ci.ci.pr": "mlops_ci.pr",
    "mlops_ci.ci.pipeline_url": "mlops_ci.pipeline_url",
}


@dataclass(frozen=True)
class RegisterRequest:
    """Which run's model to register under which (checked) name and aliases, from where."""

    model_name: str
    run_id: str
    aliases: tuple[str, ...]
    store: TrackingStore
    run_context: RunContext


@dataclass(frozen=True)
class RegisterOutcome:
    model_name: str
    version: str
    run_id: str
    aliases: tuple[str, ...]
    # False when the run was registered already and that version was returned.
    created: bool
    version_url: str | None = None

    @property
    def model_uri(self) -> str:
        return f"models:/{self.model_name}/{self.version}"


def register(request: RegisterRequest) -> RegisterOutcome:
    from mlops_ci.tracking import registry, runs
    from mlops_ci.tracking.store import connect

    store, run_id = request.store, request.run_id
    client = connect(store)
    run = runs.get_run(client, run_id, store)
    if run.info.status != "FINISHED":
        raise UsageError(f"run {run_id} is {run.info.status}; only a finished training run can be registered")
    model = runs.find_logged_model(client, run)
    if model is None:
        raise UsageError(f"run {run_id} logged no model; nothing to register")

    tags = {short: run.data.tags[key] for key, short in RUN_LINEAGE.items() if run.data.tags.get(key)}
    current = request.run_context
    tags.update(
        {
            key: value
            for key, value in {
                "mlops_ci.run_id": run_id,
                "mlops_ci.pr": current.pr,
                "mlops_ci.pipeline_url": current.pipeline_url,
                "mlops_ci.triggered_by": current.actor,
                "mlops_ci.platform": current.platform,
            }.items()
            if value
        }
    )
    version, created = registry.register_version(
        client,
        store,
        name=request.model_name,
        run_id=run_id,
        source=model.model_uri,
        model_id=model.model_id,
        tags=tags,
        description=run.data.tags.get("mlops_ci.git.message"),
    )
    registry.set_aliases(client, store, request.model_name, version.version, request.aliases)
    number = str(version.version)
    return RegisterOutcome(
        model_name=request.model_name,
        version=number,
        run_id=run_id,
        aliases=request.aliases,
        created=created,
        version_url=runs.model_version_url(store, request.model_name, number),
    )
