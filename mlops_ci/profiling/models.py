"""What `mlops-ci profile` measures: the candidate model (and its image), the server to load,
and the champion to compare with - each resolved, and checked, before any measurement."""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlops_ci.errors import ExternalServiceError, UsageError
from mlops_ci.result import StepResult, read_step_result
from mlops_ci.steps.base import StepContext

log = logging.getLogger(__name__)

SERVER_MODES = ("auto", "container", "serve", "endpoint", "none")


@dataclass
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


@dataclass
class Plan:
    candidate: ModelUnderTest
    server: str  # container | serve | endpoint | none
    image: str | None = None
    engine: Any = None
    endpoint: str | None = None
    notes: list[str] = field(default_factory=list)


def earlier_result(ctx: StepContext, step: str) -> StepResult | None:
    path = ctx.out_dir / f"{step}.json"
    return read_step_result(path) if path.is_file() else None


def plan(ctx: StepContext, scratch: Path) -> Plan:
    """The candidate and the server to load. Usage errors (exit 2) for what cannot work:
    nothing to profile, a server mode without what it needs."""
    opts = ctx.options
    package = earlier_result(ctx, "package")
    package_out = package.outputs if package is not None else {}
    image = opts.image
    if image is None and package_out.get("image-built") == "true" and package_out.get("image"):
        image = package_out["image"]
    mode = opts.server
    if mode == "endpoint" and not opts.endpoint:
        raise UsageError("--server endpoint needs --endpoint URL")
    if opts.endpoint and mode in ("container", "serve"):
        raise UsageError(f"--endpoint and --server {mode} contradict each other; drop one")

    engine = None
    engine_why = ""
    wants_container = mode == "container" or (mode == "auto" and not opts.endpoint and image is not None)
    if wants_container:
        from mlops_ci.container.engine import find_engine

        if image is None:
            raise UsageError(
                "--server container needs an image: pass --image, or run `mlops-ci package` with a container "
                "engine first"
            )
        engine, engine_why = find_engine(opts.engine, ctx.env)
        if engine is None and mode == "container":
            raise ExternalServiceError(
                f"--server container: {engine_why}; start Docker (DOCKER_HOST) or use --server serve"
            )

    candidate = _candidate(ctx, package, image, engine, scratch)
    if candidate is None:
        where = ctx.out_dir
        raise UsageError(
            "nothing to profile: no --model, no --image and no --endpoint, and no model from an earlier "
            f"`mlops-ci package` or `mlops-ci register` in {where}; run `mlops-ci package` first, or pass "
            "--model (a packaged folder, an .onnx file or a model URI)"
        )

    notes: list[str] = []
    if opts.endpoint:
        server = "endpoint"
    elif mode == "none":
        server = "none"
    elif engine is not None and image is not None and mode in ("auto", "container"):
        server = "container"
    else:
        if mode == "auto" and image is not None:
            notes.append(f"image {image} not run ({engine_why}): measured `mlops-ci serve` instead")
        server = "serve"
        if candidate.model_dir is None:
            raise UsageError("--server serve needs a model: pass --model, or run `mlops-ci package` first")
    if server in ("endpoint",) and candidate.model_dir is None and opts.request is None:
        raise UsageError(
            f"no request to send to {opts.endpoint}: pass --request with a JSON body (and --infer-path), or "
            "--model so the request is built from its input example"
        )
    return Plan(candidate, server, image if server == "container" else None, engine, opts.endpoint, notes)


def _candidate(
    ctx: StepContext, package: StepResult | None, image: str | None, engine: Any, scratch: Path
) -> ModelUnderTest | None:
    opts = ctx.options
    if opts.model:
        model_dir = _model_dir(ctx, opts.model)
        found = _describe(model_dir, source=opts.model, uri=opts.model)
        return found
    if package is not None and package.outputs.get("settings-path"):
        settings_path = Path(package.outputs["settings-path"])
        if settings_path.is_file():
            out = package.outputs
            return _describe(
                settings_path.parent,
                source=f"{settings_path.parent} (mlops-ci package)",
                uri=out.get("model-uri"),
                name=out.get("model-name"),
                version=out.get("model-version"),
            )
    if image is not None and engine is not None:
        log.info("profile: copying /model out of %s", image)
        model_dir = engine.copy_from_image(image, "/model", scratch / "image")
        return _describe(model_dir, source=f"/model in {image}")
    register = earlier_result(ctx, "register")
    if register is not None and register.outputs.get("model-uri"):
        uri = register.outputs["model-uri"]
        return _describe(_model_dir(ctx, uri), source=f"{uri} (mlops-ci register)", uri=uri)
    if opts.endpoint:
        return ModelUnderTest(None, source=opts.endpoint)
    return None


def _model_dir(ctx: StepContext, model: str) -> Path:
    """A folder with model.onnx and model-settings.json for ``model`` (converted to ONNX
    on the fly when it is a model URI), as `mlops-ci serve` finds it."""
    from mlops_ci.convert.model_dir import servable_model_dir

    return servable_model_dir(
        model,
        out_dir=ctx.out_dir,
        registered_uri=ctx.earlier_output("register", "model-uri"),
        store=lambda: ctx.store,
        model_name=ctx.options.model_name,
        cwd=ctx.cwd,
    )


def _describe(
    model_dir: Path,
    *,
    source: str,
    uri: str | None = None,
    name: str | None = None,
    version: str | None = None,
) -> ModelUnderTest:
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


# -- the champion ------------------------------------------------------------------------------


def champion_uri(ctx: StepContext) -> tuple[str | None, str]:
    """Which model is the champion, and how that was decided; None with the reason when
    there is none."""
    opts = ctx.options
    if opts.champion:
        return opts.champion, "--champion"
    validate = earlier_result(ctx, "validate")
    if validate is not None:
        out = validate.outputs
        if out.get("first-model") == "true":
            return None, "validate says this is the first model: no champion to compare with"
        if out.get("baseline-uri"):
            return out["baseline-uri"], "validate's baseline"
    if opts.model_name:
        return f"models:/{opts.model_name}@champion", "the champion alias"
    return None, "no champion: set model-name (the champion alias is looked up) or pass --champion"


def load_champion(
    ctx: StepContext, uri: str, candidate: ModelUnderTest, scratch: Path
) -> tuple[ModelUnderTest | None, str]:
    """The champion's ONNX folder: the exact model stored with its profile when it has
    one, else converted from the registry. None with a reason when there is no champion."""
    from mlops_ci.tracking.profiles import (
        download_profiled_model,
        get_version,
        parse_registry_uri,
        stored_tags,
    )

    ref = parse_registry_uri(uri)
    if ref is None:
        model_dir = _model_dir(ctx, uri)
        return _describe(model_dir, source=uri, uri=uri), f"{uri}"
    from mlops_ci.tracking.store import connect

    client = connect(ctx.store)
    version = get_version(client, ctx.store, ref)
    if version is None:
        what = f"alias @{ref.alias}" if ref.alias else f"version {ref.version}"
        return None, f"{ref.name} has no {what} in the registry yet: nothing to compare with"
    if candidate.name == version.name and candidate.version == str(version.version):
        return (
            None,
            f"the candidate is the champion ({version.name} v{version.version}): nothing to compare with",
        )
    tags = stored_tags(version)
    folder = download_profiled_model(client, ctx.store, version, Path(tempfile.mkdtemp(dir=scratch)))
    how = "the model stored with its profile"
    if folder is None:
        log.info(
            "profile: champion %s v%s has no stored profile; converting it", version.name, version.version
        )
        folder = _model_dir(ctx, f"models:/{version.name}/{version.version}")
        how = "converted from the registry (it has no stored profile)"
    found = _describe(
        folder,
        source=f"models:/{version.name}/{version.version}",
        uri=f"models:/{version.name}/{version.version}",
        name=version.name,
        version=str(version.version),
    )
    found.tags = tags
    return found, how
