"""The model registry: idempotent versions with lineage, and aliases."""

from __future__ import annotations

import re
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from mlops_ci.errors import ExternalServiceError, SettingError, UsageError
from mlops_ci.tracking.store import TrackingStore, tracking_errors

if TYPE_CHECKING:
    from mlflow.entities.model_registry import ModelVersion
    from mlflow.tracking import MlflowClient

MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,255}$")
ALIAS = re.compile(r"^[A-Za-z0-9_-]{1,255}$")
RESERVED_ALIAS = re.compile(r"^(latest|v\d+)$", re.IGNORECASE)
READY_TIMEOUT_S = 300


def check_model_name(name: str | None) -> str:
    if not name:
        raise SettingError("no model name given", setting="model-name")
    if not MODEL_NAME.match(name):
        raise UsageError(
            f"model name {name!r} is not valid; use letters, digits, '.', '_' and '-' "
            "(starting with a letter or digit)"
        )
    return name


def check_alias(alias: str) -> str:
    if not ALIAS.match(alias) or RESERVED_ALIAS.match(alias):
        raise UsageError(
            f"alias {alias!r} is not valid; use letters, digits, '_' and '-', and not "
            "'latest' or 'v<number>' (MLflow reserves them)"
        )
    return alias


def find_version_of_run(client: MlflowClient, name: str, run_id: str) -> ModelVersion | None:
    versions = client.search_model_versions(f"name = '{name}' and run_id = '{run_id}'")
    return min(versions, key=lambda v: int(v.version)) if versions else None


def ensure_registered_model(client: MlflowClient, name: str) -> None:
    from mlflow.exceptions import MlflowException

    if client.search_registered_models(filter_string=f"name = '{name}'"):
        return
    try:
        client.create_registered_model(name)
    except MlflowException as exc:
        # A concurrent job may have created it between the two calls.
        if getattr(exc, "error_code", None) != "RESOURCE_ALREADY_EXISTS":
            raise


def register_version(
    client: MlflowClient,
    store: TrackingStore,
    *,
    name: str,
    run_id: str,
    source: str,
    model_id: str | None,
    tags: Mapping[str, str],
    description: str | None,
) -> tuple[ModelVersion, bool]:
    """The registered version of ``run_id``'s model: the existing one if the run was
    registered before (created=False), else a new one, ready to load (created=True)."""
    with tracking_errors(store):
        existing = find_version_of_run(client, name, run_id)
        if existing is not None:
            return existing, False
        ensure_registered_model(client, name)
        version = client.create_model_version(
            name,
            source=source,
            run_id=run_id,
            tags=dict(tags),
            description=description,
            model_id=model_id,
        )
        return _wait_until_ready(client, version, store), True


def _wait_until_ready(client: MlflowClient, version: ModelVersion, store: TrackingStore) -> ModelVersion:
    deadline = time.monotonic() + READY_TIMEOUT_S
    delay = 0.2
    while version.status == "PENDING_REGISTRATION":
        if time.monotonic() > deadline:
            raise ExternalServiceError(
                f"model version {version.name}/{version.version} at {store.display_uri} stayed "
                f"PENDING_REGISTRATION for {READY_TIMEOUT_S} s; check the registry"
            )
        time.sleep(delay)
        delay = min(delay * 2, 5)
        version = client.get_model_version(version.name, version.version)
    if version.status != "READY":
        raise ExternalServiceError(
            f"model version {version.name}/{version.version} failed to register "
            f"({version.status}: {version.status_message}); check the registry"
        )
    return version


def set_aliases(
    client: MlflowClient, store: TrackingStore, name: str, version: str, aliases: Sequence[str]
) -> None:
    with tracking_errors(store):
        for alias in aliases:
            client.set_registered_model_alias(name, alias, version)
