"""The models a profile measures: the candidate (and, for an image, its /model folder) and
the champion to compare with, each as an ONNX folder with its settings and its place in
the registry. Resolved, and checked, before any measurement."""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from mlops_ci.errors import UsageError
from mlops_ci.profiling.request import ModelChoice
from mlops_ci.tracking.store import TrackingStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelUnderTest:
    """A model to measure: its ONNX folder (model.onnx + model-settings.json) and where
    it lives in the registry, when it does."""

    model_dir: Path | None
    source: str
    name: str | None = None
    version: str | None = None
    uri: str | None = None
    settings: Any = None
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def label(self) -> str:
        if self.name and self.version:
            return f"{self.name} v{self.version}"
        return self.name or self.source

    @property
    def registered(self) -> bool:
        return bool(self.name and self.version)


@dataclass(frozen=True)
class ModelFinder:
    """Turns a model reference (a folder, an .onnx file or a model URI) into an ONNX folder,
    converting on the fly as `mlops-ci serve` does."""

    choice: ModelChoice
    out_dir: Path
    cwd: Path
    store: Callable[[], TrackingStore]

    def model_dir(self, model: str) -> Path:
        from mlops_ci.convert.model_dir import servable_model_dir

        return servable_model_dir(
            model,
            out_dir=self.out_dir,
            registered_uri=self.choice.registered_uri,
            store=self.store,
            model_name=self.choice.model_name,
            cwd=self.cwd,
        )

    def candidate(self, engine: Any, scratch: Path) -> ModelUnderTest | None:
        """The model to profile, looked for in the order of ``ModelChoice``; None when
        there is nothing at all."""
        choice = self.choice
        if choice.model:
            return describe(self.model_dir(choice.model), source=choice.model, uri=choice.model)
        packaged = choice.packaged
        if packaged is not None and packaged.settings_path.is_file():
            folder = packaged.settings_path.parent
            return describe(
                folder,
                source=f"{folder} (mlops-ci package)",
                uri=packaged.uri,
                name=packaged.name,
                version=packaged.version,
            )
        if choice.image is not None and engine is not None:
            log.info("profile: copying /model out of %s", choice.image)
            model_dir = engine.copy_from_image(choice.image, "/model", scratch / "image")
            return describe(model_dir, source=f"/model in {choice.image}")
        if choice.registered_uri:
            uri = choice.registered_uri
            return describe(self.model_dir(uri), source=f"{uri} (mlops-ci register)", uri=uri)
        if choice.endpoint:
            return ModelUnderTest(None, source=choice.endpoint)
        return None

    def champion(self, candidate: ModelUnderTest, scratch: Path) -> tuple[ModelUnderTest | None, str]:
        """The champion's ONNX folder: the exact model stored with its profile when it has
        one, else converted from the registry; None with a reason when there is no champion
        to compare with. Otherwise the reason says where its model came from."""
        from mlops_ci.tracking.profiles import (
            download_profiled_model,
            get_version,
            parse_registry_uri,
            stored_tags,
        )

        uri = self.choice.champion.uri
        if uri is None:
            return None, self.choice.champion.reason
        ref = parse_registry_uri(uri)
        if ref is None:
            return describe(self.model_dir(uri), source=uri, uri=uri), uri
        from mlops_ci.tracking.store import connect

        store = self.store()
        client = connect(store)
        version = get_version(client, store, ref)
        if version is None:
            what = f"alias @{ref.alias}" if ref.alias else f"version {ref.version}"
            return None, f"{ref.name} has no {what} in the registry yet: nothing to compare with"
        if candidate.name == version.name and candidate.version == str(version.version):
            return (
                None,
                f"the candidate is the champion ({version.name} v{version.version}): nothing to compare with",
            )
        registered = f"models:/{version.name}/{version.version}"
        folder = download_profiled_model(client, store, version, Path(tempfile.mkdtemp(dir=scratch)))
        how = "the model stored with its profile"
        if folder is None:
            log.info(
                "profile: champion %s v%s has no stored profile; converting it", version.name, version.version
            )
            folder = self.model_dir(registered)
            how = "converted from the registry (it has no stored profile)"
        found = describe(
            folder, source=registered, uri=registered, name=version.name, version=str(version.version)
        )
        return replace(found, tags=stored_tags(version)), how


def describe(
    model_dir: Path,
    *,
    source: str,
    uri: str | None = None,
    name: str | None = None,
    version: str | None = None,
) -> ModelUnderTest:
    """The model in ``model_dir``, named from what is known: the arguments, its registry
    URI, else the lineage in its settings."""
    from mlops_ci.serving.settings import SettingsError, load_settings
    from mlops_ci.tracking.profiles import parse_registry_uri

    try:
        settings = load_settings(model_dir)
    except SettingsError as exc:
        raise UsageError(str(exc)) from None
    ref = parse_registry_uri(uri) if uri else None
    lineage = settings.lineage or {}
    name = name or (ref.name if ref else None) or lineage.get("registered_model")
    # A URI with an alias was resolved to a version when it was converted.
    version = (
        version
        or (ref.version if ref else None)
        or lineage.get("registered_version")
        or (settings.version if ref else None)
    )
    if name and version:
        uri = f"models:/{name}/{version}"
    return ModelUnderTest(model_dir, source, name, str(version) if version else None, uri, settings)
