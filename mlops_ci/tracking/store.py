"""Where runs and models live: the embedded SQLite store or an MLflow server, reached with
bounded retries and with MLflow's errors translated into ours."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from mlops_ci.errors import AccessDeniedError, ExternalServiceError, SettingError
from mlops_ci.gitinfo import strip_credentials
from mlops_ci.retry import RetriesExhausted, RetryableError, RetryPolicy, call_with_retries

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

log = logging.getLogger(__name__)

LOCAL_STORE_DIR = ".mlops-ci"
# MLflow's own HTTP retries default to minutes of backoff; keep each call short so the
# step's retry budget is what bounds the wait. Users can still set these themselves.
MLFLOW_HTTP_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "3",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
}
# MLflow error codes that mean "the service failed", not "the request was wrong".
SERVICE_ERROR_CODES = {"INTERNAL_ERROR", "TEMPORARILY_UNAVAILABLE", "REQUEST_LIMIT_EXCEEDED"}


@dataclass(frozen=True)
class TrackingStore:
    """A resolved tracking location."""

    uri: str
    # Artifact root for experiments this tool creates; None lets the server decide.
    artifact_root: str | None
    retry_timeout_s: float

    @property
    def display_uri(self) -> str:
        return strip_credentials(self.uri)

    @property
    def is_remote(self) -> bool:
        return self.uri.startswith(("http://", "https://"))

    @property
    def ui_url(self) -> str | None:
        return self.display_uri.rstrip("/") if self.is_remote else None


def resolve_store(uri: str | None, *, project_dir: Path, retry_timeout_s: float) -> TrackingStore:
    """With no URI, an embedded SQLite store under ``<project>/.mlops-ci/`` needs no server."""
    if uri:
        return TrackingStore(uri=uri, artifact_root=None, retry_timeout_s=retry_timeout_s)
    store_dir = (project_dir / LOCAL_STORE_DIR).resolve()
    store_dir.mkdir(parents=True, exist_ok=True)
    return TrackingStore(
        uri=f"sqlite:///{store_dir / 'mlflow.db'}",
        artifact_root=(store_dir / "artifacts").as_uri(),
        retry_timeout_s=retry_timeout_s,
    )


def connect(store: TrackingStore) -> MlflowClient:
    """An MlflowClient for ``store``, after making sure a server answers.

    Raises ExternalServiceError (exit 3) when the server does not answer within the
    store's retry budget.
    """
    for name, value in MLFLOW_HTTP_DEFAULTS.items():
        os.environ.setdefault(name, value)
    if store.is_remote:
        wait_for_server(store)
    import mlflow
    from mlflow.tracking import MlflowClient

    _quiet_mlflow()
    # Model URIs such as models:/m-<id> are resolved against the global URIs, not the client's.
    mlflow.set_tracking_uri(store.uri)
    mlflow.set_registry_uri(store.uri)
    with tracking_errors(store):
        return MlflowClient(tracking_uri=store.uri, registry_uri=store.uri)


def wait_for_server(store: TrackingStore) -> None:
    import requests

    url = store.uri.rstrip("/") + "/health"

    def probe() -> None:
        try:
            response = requests.get(url, timeout=5)
        except requests.RequestException as exc:
            raise RetryableError(type(exc).__name__) from None
        if response.status_code >= 500:
            raise RetryableError(f"HTTP {response.status_code}")

    try:
        call_with_retries(
            probe, RetryPolicy(budget_s=store.retry_timeout_s), what=f"MLflow at {store.display_uri}"
        )
    except RetriesExhausted as exc:
        raise ExternalServiceError(
            f"MLflow at {store.display_uri} did not answer after {exc.attempts} tries in "
            f"{exc.elapsed_s:.0f} s ({exc.last}); is the server running? "
            "check the tracking URI (tracking-uri, MLFLOW_TRACKING_URI), or raise retry-timeout"
        ) from None


def _quiet_mlflow() -> None:
    """MLflow logs INFO lines (database migrations, autolog notices) that bury ours."""
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)


def is_service_error(exc: BaseException) -> bool:
    code = getattr(exc, "error_code", None)
    return code in SERVICE_ERROR_CODES or str(exc).startswith("API request to")


@contextmanager
def tracking_errors(store: TrackingStore) -> Iterator[None]:
    """Translate MLflow failures of the service itself into ExternalServiceError."""
    from mlflow.exceptions import MlflowException

    try:
        yield
    except MlflowException as exc:
        if getattr(exc, "error_code", None) == "PERMISSION_DENIED":
            user = os.environ.get("MLFLOW_TRACKING_USERNAME") or "this identity"
            raise AccessDeniedError(
                f"MLflow at {store.display_uri} denied {user} ({_endpoint(exc)}): this job's MLflow "
                "credentials may not do that; promotions and validation records need the deploy "
                "identity (see SECURITY.md)"
            ) from None
        if is_service_error(exc):
            first_line = str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
            raise ExternalServiceError(
                f"MLflow at {store.display_uri} failed: {first_line}; check that the server is "
                "healthy and retry"
            ) from None
        raise


def _endpoint(exc: BaseException) -> str:
    """The REST endpoint of a failed MLflow call, from its message ("API request to endpoint
    /api/2.0/mlflow/registered-models/alias failed ...")."""
    words = str(exc).split()
    return next((word for word in words if word.startswith("/api/")), "permission denied")


def get_or_create_experiment(client: MlflowClient, name: str, store: TrackingStore) -> str:
    """The id of experiment ``name``, created (with our artifact root) if needed."""
    from mlflow.exceptions import MlflowException

    with tracking_errors(store):
        experiment = client.get_experiment_by_name(name)
        if experiment is not None:
            if experiment.lifecycle_stage == "deleted":
                raise SettingError(
                    f"experiment '{name}' is deleted in {store.display_uri}; restore it or choose another",
                    setting="experiment",
                )
            return experiment.experiment_id
        try:
            return client.create_experiment(name, artifact_location=store.artifact_root)
        except MlflowException as exc:
            if getattr(exc, "error_code", None) != "RESOURCE_ALREADY_EXISTS":
                raise
            # Another job created it between our two calls.
            return client.get_experiment_by_name(name).experiment_id
