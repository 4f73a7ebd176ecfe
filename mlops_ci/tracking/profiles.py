"""A model version's profile, stored with the version.

The profile's folder (report.json, profile.md, latency.png and the exact ONNX model and
settings that were measured, under ``model/``) is logged as artifacts of the version's
source run at ``mlops-ci/profile/``; the headline numbers are tags on the version
(``mlops_ci.profile.*``), so the registry UI and `mlflow` queries show them. A later
profile of a challenger downloads the champion's ``model/`` from there and measures both
side by side, instead of trusting numbers taken on another machine at another time.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops_ci.errors import UsageError
from mlops_ci.tracking.store import TrackingStore, tracking_errors

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

ARTIFACT_PATH = "mlops-ci/profile"
TAG_PREFIX = "mlops_ci.profile."
ARTIFACTS_TAG = TAG_PREFIX + "artifacts"

_REGISTRY_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:/(?P<version>\d+)|@(?P<alias>[A-Za-z0-9_-]+))$")


@dataclass(frozen=True)
class RegistryRef:
    name: str
    version: str | None = None
    alias: str | None = None


def parse_registry_uri(uri: str) -> RegistryRef | None:
    """``models:/name/3`` or ``models:/name@champion``; None for any other URI or path."""
    match = _REGISTRY_URI.match(uri.strip())
    if match is None:
        return None
    return RegistryRef(match["name"], match["version"], match["alias"])


def get_version(client: MlflowClient, store: TrackingStore, ref: RegistryRef) -> Any | None:
    """The ModelVersion ``ref`` names; None when the alias or version does not exist."""
    from mlflow.exceptions import MlflowException

    with tracking_errors(store):
        try:
            if ref.alias:
                return client.get_model_version_by_alias(ref.name, ref.alias)
            return client.get_model_version(ref.name, str(ref.version))
        except MlflowException as exc:
            if getattr(exc, "error_code", None) in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
                return None
            raise


def log_profile(
    client: MlflowClient, store: TrackingStore, version: Any, folder: Path, tags: Mapping[str, str]
) -> str:
    """Log ``folder`` to the version's source run and tag the version; returns where the
    artifacts are (``runs:/<run>/mlops-ci/profile``). Idempotent: a second profile of the
    same version replaces the first."""
    if not version.run_id:
        raise UsageError(
            f"model version {version.name}/{version.version} has no source run to store its profile in"
        )
    location = f"runs:/{version.run_id}/{ARTIFACT_PATH}"
    with tracking_errors(store):
        client.log_artifacts(version.run_id, str(folder), ARTIFACT_PATH)
        for key, value in {**tags, "artifacts": location}.items():
            client.set_model_version_tag(version.name, version.version, TAG_PREFIX + key, str(value))
    return location


def stored_tags(version: Any) -> dict[str, str]:
    """The version's ``mlops_ci.profile.*`` tags without the prefix."""
    tags = dict(getattr(version, "tags", None) or {})
    return {key[len(TAG_PREFIX) :]: value for key, value in tags.items() if key.startswith(TAG_PREFIX)}


def download_profiled_model(
    client: MlflowClient, store: TrackingStore, version: Any, destination: Path
) -> Path | None:
    """The ONNX model and settings stored with the version's profile, or None when the
    version was never profiled."""
    tags = dict(getattr(version, "tags", None) or {})
    if ARTIFACTS_TAG not in tags or not version.run_id:
        return None
    from mlflow.exceptions import MlflowException

    destination.mkdir(parents=True, exist_ok=True)
    with tracking_errors(store):
        try:
            path = client.download_artifacts(version.run_id, f"{ARTIFACT_PATH}/model", str(destination))
        except (MlflowException, OSError):
            return None
    folder = Path(path)
    return folder if (folder / "model-settings.json").is_file() else None
