"""The package step's domain work in one call: load the model, convert it to ONNX, check
parity, render the hermetic build context, then build, smoke-test and push the image.

``package_model(request, ...)`` returns a ``PackageOutcome`` whatever was decided (an
unconvertible model, failed parity, no engine, a failed build): the caller turns it into
a result. Wrong inputs raise domain errors (``ModelNotFoundError``, ``HoldoutError``,
``NoParityRowsError``, ``ImageRefError``); a failed push raises ExternalServiceError.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from mlops_ci.container.base import ImageInfo
from mlops_ci.container.context import BuildContext
from mlops_ci.container.smoke import SmokeResult
from mlops_ci.convert.parity import Tolerances
from mlops_ci.convert.parity_checks import ParityJudgement
from mlops_ci.tracking.store import TrackingStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PackageRequest:
    """What to package and how; checked by the caller before any work."""

    model_uri: str
    out_dir: Path  # model/, parity.md and build.log go here
    build_context: Path
    cwd: Path
    model_name: str | None = None
    onnx_model: Path | None = None  # an ONNX file to use instead of converting
    holdout: Path | None = None
    target: str | None = None
    opset: int | None = None
    precision: str = "float32"
    tolerances: Tolerances = field(default_factory=Tolerances)
    parity_rows: int = 20000
    image_template: str = "{name}:{version}"
    engine: str = "auto"
    base_image: str = "python:3.11-slim"
    python_version: str = "3.11"
    platform_tag: str | None = None  # None: this machine's manylinux tag
    wheelhouse: Path | None = None
    smoke_test: bool = True
    push: bool = False
    commit: str | None = None
    pipeline_url: str | None = None
    source_url: str | None = None  # the repository's web address, for the image labels


@dataclass(frozen=True)
class ConversionRecord:
    converter: str
    opset: int | None
    onnx_inputs: int
    columns: int

    def describe(self) -> str:
        return (
            f"{self.converter}, opset {self.opset or 'default'}, "
            f"{self.onnx_inputs} ONNX input(s) for {self.columns} column(s)"
        )


@dataclass(frozen=True)
class ImageOutcome:
    """What became of the image: no engine (``engine_missing`` says why), a failed build
    (``build_error``), or built (``info``), then smoke-tested and pushed if asked."""

    engine_missing: str | None = None
    engine: str | None = None
    engine_description: str = ""
    build_log: Path | None = None
    build_error: str | None = None
    build_log_tail: str = ""
    info: ImageInfo | None = None
    smoke: SmokeResult | None = None
    smoke_skipped: str | None = None  # why the smoke test could not run
    digest: str | None = None  # the registry's digest once pushed


@dataclass(frozen=True)
class PackageOutcome:
    model_uri: str  # the model actually loaded (a registry alias pinned to its version)
    name: str
    version: str
    image: str
    conversion: ConversionRecord | None = None
    conversion_failure: str | None = None  # why the model cannot be converted
    failing_estimator: str | None = None
    onnx_path: Path | None = None
    onnx_size_bytes: int = 0
    settings_path: Path | None = None
    parity: tuple[ParityJudgement, ...] = ()
    parity_report: Path | None = None
    context: BuildContext | None = None
    image_outcome: ImageOutcome | None = None  # None: no build attempted (conversion or parity failed)

    @property
    def parity_failed(self) -> bool:
        return any(j.failed for j in self.parity)


def package_model(
    request: PackageRequest, *, store: TrackingStore | None, env: Mapping[str, str]
) -> PackageOutcome:
    """``store``: the tracking store for model URIs (None for local paths); ``env``: the
    environment the container engine and the registry credentials come from."""
    from mlops_ci.container.reference import image_ref
    from mlops_ci.convert import UnsupportedModelError
    from mlops_ci.convert.build import convert
    from mlops_ci.convert.holdout import read_holdout
    from mlops_ci.convert.loading import load_native_model, load_onnx

    native = load_native_model(request.model_uri, store=store, cwd=request.cwd)
    name = request.model_name or native.name or name_from_uri(request.model_uri)
    version = native.version or "1"
    frame = target = None
    if request.holdout is not None:
        frame, target = read_holdout(request.holdout, target=request.target, columns=native.columns)
    image = image_ref(request.image_template, name=name, version=version, commit=request.commit)
    onnx_override = load_onnx(request.onnx_model) if request.onnx_model is not None else None
    lineage = {
        "model_uri": native.uri,
        "registered_model": native.name,
        "registered_version": native.version,
        "commit": request.commit,
        "pipeline_url": request.pipeline_url,
    }
    identity = {"model_uri": native.uri, "name": name, "version": version, "image": image}
    try:
        converted = convert(
            native,
            name=name,
            version=version,
            opset=request.opset,
            precision=request.precision,
            frame=frame,
            onnx_override=onnx_override,
            lineage=lineage,
        )
    except UnsupportedModelError as exc:
        return PackageOutcome(**identity, conversion_failure=str(exc), failing_estimator=exc.estimator)
    model_dir = request.out_dir / "model"
    model_dir.mkdir(parents=True, exist_ok=True)
    onnx_path = model_dir / converted.settings.model_file
    onnx_bytes = converted.onnx_bytes
    onnx_path.write_bytes(onnx_bytes)
    settings_path = converted.settings.write(model_dir)
    conversion = ConversionRecord(
        converted.conversion.converter,
        converted.conversion.opset,
        len(converted.settings.onnx_inputs),
        len(converted.settings.columns),
    )
    parity, parity_report = _check_parity(request, native, converted, model_dir, frame, target, conversion)
    context = _render_context(request, native.uri, converted, image)
    outcome = PackageOutcome(
        **identity,
        conversion=conversion,
        onnx_path=onnx_path,
        onnx_size_bytes=len(onnx_bytes),
        settings_path=settings_path,
        parity=parity,
        parity_report=parity_report,
        context=context,
    )
    if outcome.parity_failed:
        return outcome
    return replace(outcome, image_outcome=build_image(request, context, model_dir, image, env=env))


def _check_parity(
    request: PackageRequest,
    native: Any,
    converted: Any,
    model_dir: Path,
    frame: Any,
    target: Any,
    conversion: ConversionRecord,
) -> tuple[tuple[ParityJudgement, ...], Path | None]:
    """The parity judgements and the report written for them (None: nothing compared)."""
    from mlops_ci.convert import NoParityRowsError
    from mlops_ci.convert.parity import compare
    from mlops_ci.convert.parity_checks import judge_parity, parity_markdown
    from mlops_ci.result import write_text_atomic

    if native.is_onnx and request.onnx_model is None:
        skipped = ParityJudgement(
            "parity", "skipped", "the model is already ONNX: nothing to compare", details={"kind": "parity"}
        )
        return (skipped,), None
    source = "holdout" if frame is not None else "input example"
    rows = frame if frame is not None else native.input_example
    if rows is None:
        raise NoParityRowsError(
            f"{request.model_uri} has no input example and no holdout is set: parity needs rows"
        )
    report = compare(
        native.model,
        model_dir,
        converted.settings,
        rows.head(request.parity_rows),
        target.head(request.parity_rows) if target is not None and source == "holdout" else None,
        source=source,
    )
    judgements = judge_parity(report, request.tolerances)
    path = request.out_dir / "parity.md"
    write_text_atomic(path, parity_markdown(report, judgements, conversion=conversion.describe()))
    return judgements, path


def _render_context(request: PackageRequest, model_uri: str, converted: Any, image: str) -> BuildContext:
    from mlops_ci.container.context import oci_labels, render_context
    from mlops_ci.container.wheels import default_platform

    labels = oci_labels(
        converted.settings, source_url=request.source_url, commit=request.commit, model_uri=model_uri
    )
    return render_context(
        request.build_context,
        onnx_bytes=converted.onnx_bytes,
        settings=converted.settings,
        image=image,
        base_image=request.base_image,
        labels=labels,
        python_version=request.python_version,
        platform_tag=request.platform_tag or default_platform(),
        wheelhouse=request.wheelhouse,
    )


def build_image(
    request: PackageRequest, context: BuildContext, model_dir: Path, image: str, *, env: Mapping[str, str]
) -> ImageOutcome:
    """Build ``context`` as ``image`` with the requested engine, then smoke-test and push
    it as the request says."""
    from mlops_ci.container.engine import BuildError, credentials_from_env, find_engine
    from mlops_ci.container.smoke import smoke_test
    from mlops_ci.errors import UsageError

    engine, why = find_engine(request.engine, env)
    if engine is None:
        return ImageOutcome(engine_missing=why)
    description = engine.describe()
    log.info("package: building %s with %s", image, description)
    build_log = request.out_dir / "build.log"
    built = {"engine": engine.name, "engine_description": description, "build_log": build_log}
    try:
        info = engine.build(context.path, image, log_path=build_log)
    except BuildError as exc:
        return ImageOutcome(**built, build_error=str(exc), build_log_tail=exc.log_tail)
    smoke = smoke_skipped = None
    if request.smoke_test:
        try:
            smoke = smoke_test(engine, image, model_dir)
        except UsageError as exc:  # the engine cannot run containers here
            smoke_skipped = str(exc)
    digest = engine.push(image, credentials_from_env(image, env)) if request.push else None
    return ImageOutcome(**built, info=info, smoke=smoke, smoke_skipped=smoke_skipped, digest=digest)


def name_from_uri(uri: str) -> str:
    """A model name from a path or URI's last part (the file's stem)."""
    stem = Path(uri.rstrip("/")).stem or "model"
    return re.sub(r"[^A-Za-z0-9._-]", "-", stem)
