"""Runs and the models logged in them."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from mlops_ci.errors import SettingError
from mlops_ci.tracking.store import TrackingStore, tracking_errors

if TYPE_CHECKING:
    from mlflow.entities import LoggedModel, Run
    from mlflow.tracking import MlflowClient

FINGERPRINT_TAG = "mlops_ci.fingerprint"


def find_logged_model(client: MlflowClient, run: Run) -> LoggedModel | None:
    """The newest model logged in ``run`` (``mlflow.<flavor>.log_model`` or autolog)."""
    models = client.search_logged_models(
        experiment_ids=[run.info.experiment_id],
        filter_string=f"source_run_id = '{run.info.run_id}'",
        order_by=[{"field_name": "creation_timestamp", "ascending": False}],
    )
    ready = [m for m in models if str(getattr(m.status, "name", m.status)) == "READY"]
    return ready[0] if ready else None


def find_reusable_run(
    client: MlflowClient,
    experiment_id: str,
    fingerprint: str,
    store: TrackingStore,
    *,
    accept: Callable[[Run, LoggedModel], bool] | None = None,
) -> tuple[Run, LoggedModel] | None:
    """The newest finished run with this fingerprint that logged a model and that ``accept``
    (when given) accepts, if any: a planted newer run does not hide an older good one."""
    with tracking_errors(store):
        runs = client.search_runs(
            [experiment_id],
            filter_string=f"tags.`{FINGERPRINT_TAG}` = '{fingerprint}' and attributes.status = 'FINISHED'",
            order_by=["attributes.start_time DESC"],
            max_results=20,
        )
        for run in runs:
            model = find_logged_model(client, run)
            if model is not None and (accept is None or accept(run, model)):
                return run, model
    return None


def model_digest(model: LoggedModel, store: TrackingStore) -> str:
    """sha256 over every file of a logged model (relative path and bytes, in path order):
    what a provenance signature covers, so that artifacts replaced after signing fail it."""
    import hashlib
    import tempfile
    from pathlib import Path

    import mlflow

    with tracking_errors(store), tempfile.TemporaryDirectory() as tmp:
        root = Path(mlflow.artifacts.download_artifacts(artifact_uri=model.artifact_location, dst_path=tmp))
        digest = hashlib.sha256()
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            digest.update(path.relative_to(root).as_posix().encode() + b"\0")
            digest.update(hashlib.sha256(path.read_bytes()).digest())
        return digest.hexdigest()


def get_run(client: MlflowClient, run_id: str, store: TrackingStore) -> Run:
    from mlflow.exceptions import MlflowException

    with tracking_errors(store):
        try:
            return client.get_run(run_id)
        except MlflowException as exc:
            if getattr(exc, "error_code", None) in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
                raise SettingError(
                    f"run {run_id} does not exist in {store.display_uri}", setting="run-id"
                ) from None
            raise


def run_url(store: TrackingStore, experiment_id: str, run_id: str) -> str | None:
    if not store.ui_url:
        return None
    return f"{store.ui_url}/#/experiments/{experiment_id}/runs/{run_id}"


def model_version_url(store: TrackingStore, name: str, version: str) -> str | None:
    if not store.ui_url:
        return None
    return f"{store.ui_url}/#/models/{name}/versions/{version}"


def tag(run: Run, key: str) -> Any:
    return run.data.tags.get(key)
