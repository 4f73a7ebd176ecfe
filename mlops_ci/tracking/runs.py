"""Runs and the models logged in them."""

from __future__ import annotations

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
    client: MlflowClient, experiment_id: str, fingerprint: str, store: TrackingStore
) -> tuple[Run, LoggedModel] | None:
    """The newest finished run with this fingerprint that logged a model, if any."""
    with tracking_errors(store):
        runs = client.search_runs(
            [experiment_id],
            filter_string=f"tags.`{FINGERPRINT_TAG}` = '{fingerprint}' and attributes.status = 'FINISHED'",
            order_by=["attributes.start_time DESC"],
            max_results=20,
        )
        for run in runs:
            model = find_logged_model(client, run)
            if model is not None:
                return run, model
    return None


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
