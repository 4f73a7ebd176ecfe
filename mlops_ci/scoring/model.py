"""The model a scoring run uses, resolved once: ONNX whenever there is one or the model
converts the way `mlops-ci package` converts it; MLflow pyfunc when it does not.

Accepted: a folder from `mlops-ci package` (with model-settings.json, or its ``model/``
subfolder), an ``.onnx`` file, a local MLflow model folder, and MLflow model URIs
(``models:/name@alias`` is pinned to the version it points at before anything is read).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from mlops_ci.convert.loading import REGISTERED
from mlops_ci.errors import UsageError
from mlops_ci.serving.settings import SETTINGS_FILE, ModelSettings
from mlops_ci.tracking.store import TrackingStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ScoringModel:
    uri: str  # pinned: models:/name/3, a path, runs:/...
    name: str | None
    version: str | None
    source: str  # how the model was obtained, for the lineage and the summary
    onnx_bytes: bytes | None = None
    settings: ModelSettings | None = None
    # Without ONNX: what MLflow pyfunc loads, and why ONNX was not possible.
    pyfunc_uri: str | None = None
    fallback_reason: str | None = None

    @property
    def is_onnx(self) -> bool:
        return self.onnx_bytes is not None


def needs_store(model: str, cwd: Path) -> bool:
    """Whether ``model`` is read from the tracking store (a URI, not a path)."""
    path = Path(model).expanduser()
    return ":" in model and not (path if path.is_absolute() else cwd / path).exists()


def resolve_model(model: str, *, store: TrackingStore | None, cwd: Path) -> ScoringModel:
    path = Path(model).expanduser()
    path = path if path.is_absolute() else cwd / path
    for folder in (path, path / "model"):
        if folder.is_dir() and (folder / SETTINGS_FILE).is_file():
            return _package_folder(folder)
    from mlops_ci.convert import UnsupportedModelError
    from mlops_ci.convert.build import convert
    from mlops_ci.convert.loading import load_native_model

    uri, name, version = _pinned(model, store)
    try:
        native = load_native_model(uri, store=store, cwd=cwd)
    except UnsupportedModelError as exc:
        return _pyfunc(uri, name, version, str(exc), path if path.is_dir() else None)
    name = name or native.name or Path(uri.rstrip("/")).stem or "model"
    version = version or native.version
    try:
        converted = convert(
            native,
            name=name,
            version=version or "1",
            opset=None,
            precision="float32",
            lineage={"model_uri": native.uri},
        )
    except UnsupportedModelError as exc:
        if native.is_onnx and uri.endswith(".onnx"):
            raise UsageError(f"cannot score {model}: {exc}") from None
        return _pyfunc(native.uri, name, version, str(exc), path if path.is_dir() else None)
    source = "ONNX model" if native.is_onnx else f"converted to ONNX ({converted.conversion.converter})"
    return ScoringModel(
        uri=native.uri,
        name=name,
        version=version,
        source=source,
        onnx_bytes=converted.onnx_bytes,
        settings=converted.settings,
    )


def _package_folder(folder: Path) -> ScoringModel:
    from mlops_ci.serving.settings import SettingsError, load_settings

    try:
        settings = load_settings(folder)
    except SettingsError as exc:
        raise UsageError(f"cannot score with {folder}: {exc}") from None
    return ScoringModel(
        uri=str(settings.lineage.get("model_uri") or folder),
        name=settings.name,
        version=settings.version,
        source=f"package folder {folder}",
        onnx_bytes=(folder / settings.model_file).read_bytes(),
        settings=settings,
    )


def _pinned(uri: str, store: TrackingStore | None) -> tuple[str, str | None, str | None]:
    """``models:/name@alias`` as ``models:/name/<version>``: the alias may move while we work."""
    match = REGISTERED.match(uri)
    if match is None or store is None:
        return uri, None, None
    from mlflow.exceptions import MlflowException

    from mlops_ci.convert import ModelNotFoundError
    from mlops_ci.tracking.store import connect, tracking_errors

    client = connect(store)
    name = match.group("name")
    with tracking_errors(store):
        try:
            if match.group("alias"):
                found = client.get_model_version_by_alias(name, match.group("alias"))
            else:
                found = client.get_model_version(name, match.group("version"))
        except MlflowException as exc:
            if getattr(exc, "error_code", None) in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
                raise ModelNotFoundError(
                    f"model {uri} does not exist in {store.display_uri}", registered=True
                ) from None
            raise
    return f"models:/{name}/{found.version}", name, str(found.version)


def _pyfunc(
    uri: str, name: str | None, version: str | None, reason: str, folder: Path | None
) -> ScoringModel:
    log.warning("scoring with MLflow pyfunc: no ONNX model (%s)", reason)
    return ScoringModel(
        uri=uri,
        name=name,
        version=version,
        source="MLflow pyfunc",
        pyfunc_uri=str(folder) if folder is not None else uri,
        fallback_reason=reason,
    )
