"""`mlops-ci package`: convert the candidate to ONNX, check parity, render a hermetic build
context, build (and push) the serving image, smoke-test it.

Three moves: the options become a checked ``PackageRequest`` (``package_request``); one
call to ``container.packaging.package_model`` does the work and returns a
``PackageOutcome``; ``package_result`` turns that into the step's checks and outputs.
Domain errors speak domain terms; ``run`` adds the flag to change."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import TYPE_CHECKING

from mlops_ci.errors import UsageError
from mlops_ci.options import Option
from mlops_ci.result import Check, StepResult
from mlops_ci.steps.base import Output, Step, StepContext

if TYPE_CHECKING:
    from mlops_ci.container.packaging import ImageOutcome, PackageOutcome, PackageRequest
    from mlops_ci.convert.parity_checks import ParityJudgement

log = logging.getLogger(__name__)

OPTIONS = (
    Option(
        "model-uri",
        "Model to package: an MLflow model URI, a local MLflow model folder or an .onnx file "
        "(default: model-uri of the last `mlops-ci register` in --out-dir, else "
        "models:/<model-name>@challenger)",
        metavar="URI",
    ),
    Option(
        "onnx-model",
        "Use this ONNX file instead of converting (e.g. converted by hand); parity is still "
        "checked against the native model",
        kind="path",
        metavar="PATH",
    ),
    Option("opset", "Target ONNX opset (default: the newest the converter supports)", kind="int", minimum=1),
    Option(
        "precision",
        "Float precision of the ONNX inputs and arithmetic",
        choices=("float32", "float64"),
        default="float32",
    ),
    Option(
        "parity-min-label-agreement",
        "Least fraction of holdout rows where native and ONNX predict the same class",
        kind="float",
        default=0.999,
        minimum=0,
    ),
    Option(
        "parity-max-abs-diff",
        "Largest absolute difference allowed on any row (probabilities; values relative to max(1, |value|))",
        kind="float",
        default=0.05,
        minimum=0,
    ),
    Option(
        "parity-p99-abs-diff",
        "Largest 99th percentile of the per-row absolute differences",
        kind="float",
        default=0.01,
        minimum=0,
    ),
    Option(
        "parity-metric-tolerance",
        "Largest difference of each metric (accuracy, ROC AUC, log loss; RMSE, MAE, R2) computed "
        "from native vs ONNX predictions (unbounded metrics: relative to max(1, |value|))",
        kind="float",
        default=0.001,
        minimum=0,
    ),
    Option("parity-rows", "Most holdout rows scored for parity", kind="int", default=20000, minimum=1),
    Option(
        "engine",
        "Container engine: docker (DOCKER_HOST), buildah (daemonless), auto (docker, then "
        "buildah), none (render the build context only)",
        choices=("auto", "docker", "buildah", "none"),
        default="auto",
    ),
    Option(
        "require-image",
        "Fail when no image could be built because no container engine is reachable (default: "
        "a warning; the build context is still rendered)",
        kind="bool",
        default=False,
    ),
    Option(
        "image",
        "Image reference; {name}, {version} and {commit} are replaced",
        default="{name}:{version}",
        metavar="REF",
    ),
    Option(
        "base-image", "Base image with python3 (Debian-based)", default="python:3.11-slim", metavar="IMAGE"
    ),
    Option(
        "python-version",
        "Python version of the base image (the vendored wheels are for it)",
        default="3.11",
        metavar="X.Y",
    ),
    Option(
        "platform",
        "Wheel platform tag of the image (default: manylinux_2_28_<this machine's architecture>)",
        metavar="TAG",
    ),
    Option(
        "wheelhouse",
        "Folder of wheels to vendor from instead of the package index (offline runners)",
        kind="path",
        metavar="DIR",
    ),
    Option(
        "push",
        "Push the image; credentials from MLOPS_CI_REGISTRY_USERNAME/_PASSWORD (or GitLab's "
        "CI_REGISTRY_*, or GITHUB_ACTOR/GITHUB_TOKEN for ghcr.io, or docker login)",
        kind="bool",
        default=False,
    ),
    Option("smoke-test", "Run the built image and check its answers", kind="bool", default=True),
    Option(
        "build-context",
        "Folder for the build context (default: <out-dir>/package/context)",
        kind="path",
        metavar="DIR",
    ),
)


def run(ctx: StepContext) -> StepResult:
    from mlops_ci.container.packaging import package_model
    from mlops_ci.container.reference import ImageRefError
    from mlops_ci.convert import ModelNotFoundError, NoParityRowsError

    try:
        request = package_request(ctx)
        needs_store = ":" in request.model_uri and not Path(request.model_uri).exists()
        outcome = package_model(request, store=ctx.store if needs_store else None, env=ctx.env)
    except ModelNotFoundError as exc:
        hint = "run `mlops-ci register` first or check --model-uri" if exc.registered else "check --model-uri"
        raise UsageError(f"{exc}; {hint}") from None
    except NoParityRowsError as exc:
        raise UsageError(f"{exc}; set holdout in mlops-ci.yaml or --holdout") from None
    except ImageRefError as exc:
        raise UsageError(f"--image {exc}") from None
    return package_result(request, outcome, require_image=ctx.options.require_image)


def package_request(ctx: StepContext) -> PackageRequest:
    """The options as a checked request. Inputs first: nothing is created when one is wrong."""
    from mlops_ci.container.packaging import PackageRequest
    from mlops_ci.convert.parity import Tolerances

    opts = ctx.options
    model_uri = opts.model_uri or _default_model_uri(ctx)
    if opts.onnx_model is not None and not opts.onnx_model.is_file():
        raise UsageError(f"--onnx-model {opts.onnx_model} does not exist")
    if opts.holdout is not None and not opts.holdout.is_file():
        raise UsageError(f"holdout {opts.holdout} does not exist; fix holdout in mlops-ci.yaml or --holdout")
    if opts.wheelhouse is not None and not opts.wheelhouse.is_dir():
        raise UsageError(f"--wheelhouse {opts.wheelhouse} is not a folder")
    if not re.match(r"^\d+\.\d+$", opts.python_version):
        raise UsageError(f"--python-version must look like 3.11, got {opts.python_version!r}")
    _check_image_template(opts.image, opts.model_name or "model", ctx.run_context.commit)
    if opts.holdout is not None and opts.target:
        _check_target_column(opts.holdout, opts.target)
    out = ctx.out_dir / "package"
    return PackageRequest(
        model_uri=model_uri,
        out_dir=out,
        build_context=opts.build_context or (out / "context"),
        cwd=ctx.cwd,
        model_name=opts.model_name,
        onnx_model=opts.onnx_model,
        holdout=opts.holdout,
        target=opts.target,
        opset=opts.opset,
        precision=opts.precision,
        tolerances=Tolerances(
            min_label_agreement=opts.parity_min_label_agreement,
            max_abs_diff=opts.parity_max_abs_diff,
            p99_abs_diff=opts.parity_p99_abs_diff,
            metric=opts.parity_metric_tolerance,
        ),
        parity_rows=opts.parity_rows,
        image_template=opts.image,
        engine=opts.engine,
        base_image=opts.base_image,
        python_version=opts.python_version,
        platform_tag=opts.platform,
        wheelhouse=opts.wheelhouse,
        smoke_test=opts.smoke_test,
        push=opts.push,
        commit=ctx.run_context.commit,
        pipeline_url=ctx.run_context.pipeline_url,
        source_url=ctx.platform.repository_url(),
    )


def package_result(request: PackageRequest, outcome: PackageOutcome, *, require_image: bool) -> StepResult:
    """The outcome as the step's result. ``require_image``: no usable engine fails the step
    instead of warning."""
    outputs: dict[str, str] = {
        "model-uri": outcome.model_uri,
        "model-name": outcome.name,
        "model-version": outcome.version,
        "image-built": "false",
        "image": "",
        "image-digest": "",
        "image-id": "",
        "image-size-bytes": "",
        "onnx-path": "",
        "build-context": "",
    }
    if outcome.conversion is None:
        message = outcome.conversion_failure or "the model cannot be converted"
        if request.onnx_model is None:
            message += "; to package an ONNX file converted by hand, pass it with --onnx-model"
        check = Check(
            "onnx-conversion",
            "failed",
            message=message,
            details={"kind": "parity", "estimator": outcome.failing_estimator},
        )
        summary = f"{request.model_uri} cannot be converted to ONNX: {outcome.conversion_failure}"
        return StepResult("package", "failed", summary, outputs, [check])
    outputs["onnx-path"] = str(outcome.onnx_path)
    outputs["settings-path"] = str(outcome.settings_path)
    outputs["onnx-bytes"] = str(outcome.onnx_size_bytes)
    checks = [
        Check("onnx-conversion", "passed", message=outcome.conversion.describe(), details={"kind": "parity"})
    ]
    checks += [_parity_check(judgement) for judgement in outcome.parity]
    artifacts = [str(outcome.onnx_path), str(outcome.settings_path)]
    if outcome.parity_report is not None:
        artifacts.append(str(outcome.parity_report))
    outputs["parity"] = "failed" if outcome.parity_failed else "passed"
    if outcome.context is not None:
        outputs["build-context"] = str(outcome.context.path)
    outputs["image"] = outcome.image
    if outcome.image_outcome is None:
        summary = f"parity failed ({', '.join(_failed(checks))}): no image built; see {outcome.parity_report}"
        return StepResult("package", "failed", summary, outputs, checks, artifacts)
    image_checks, image_outputs, image_summary = _image_result(
        request, outcome.image_outcome, outcome, require_image=require_image
    )
    checks += image_checks
    outputs.update(image_outputs)
    failed = _failed(checks)
    summary = (
        f"{outcome.name} version {outcome.version} converted to ONNX ({outcome.conversion.converter}), "
        f"parity passed; {image_summary}"
    )
    if failed:
        summary = f"{', '.join(failed)} failed; " + summary
    return StepResult("package", "failed" if failed else "passed", summary, outputs, checks, artifacts)


def _parity_check(judgement: ParityJudgement) -> Check:
    return Check(
        judgement.name,
        judgement.status,
        value=judgement.value,
        baseline=judgement.baseline,
        threshold=judgement.threshold,
        message=judgement.message,
        blocking=judgement.status != "skipped",
        details=dict(judgement.details),
    )


def _image_result(
    request: PackageRequest, image: ImageOutcome, outcome: PackageOutcome, *, require_image: bool
) -> tuple[list[Check], dict[str, str], str]:
    context = outcome.context
    ref = outcome.image
    if image.engine_missing is not None:
        why = image.engine_missing + (" (--engine none)" if request.engine == "none" else "")
        how = f"build it with `docker build -t {ref} {context.path}`"
        message = f"no image was built: {why}. The build context is ready in {context.path}; {how}"
        log.warning("package: %s", message)
        check = Check(
            "image-build",
            "failed" if require_image else "warning",
            message=message,
            blocking=require_image,
            details={"reason": why},
        )
        return [check], {}, f"no image built ({why}); build context in {context.path}"
    if image.info is None:
        check = Check(
            "image-build",
            "failed",
            message=f"{image.build_error}; full log in {image.build_log}",
            details={"log_tail": image.build_log_tail[-3000:]},
        )
        return [check], {}, "image build failed"
    info = image.info
    outputs = {
        "image-built": "true",
        "image-id": info.id,
        "image-digest": info.id,
        "image-size-bytes": str(info.size_bytes),
        "engine": image.engine or "",
    }
    checks = [
        Check(
            "image-build",
            "passed",
            value=float(info.size_bytes),
            message=f"built {ref} ({info.size_bytes / 1e6:.0f} MB) with {image.engine_description}",
            details={"size_bytes": info.size_bytes, "base_image": context.base_image},
        )
    ]
    summary = f"image {ref} built ({info.size_bytes / 1e6:.0f} MB)"
    if image.smoke_skipped is not None:
        checks.append(Check("smoke-test", "skipped", message=image.smoke_skipped, blocking=False))
    if image.smoke is not None:
        smoke = image.smoke
        details = {**smoke.details, "memory_bytes": smoke.memory_bytes}
        checks.append(
            Check(
                "smoke-test",
                "passed" if smoke.passed else "failed",
                value=smoke.ready_s,
                message=smoke.message,
                details={k: v for k, v in details.items() if v is not None},
            )
        )
        if smoke.ready_s is not None:
            outputs["smoke-ready-seconds"] = f"{smoke.ready_s:.3f}"
        if smoke.memory_bytes:
            outputs["smoke-memory-bytes"] = str(smoke.memory_bytes)
    if image.digest is not None:
        outputs["image-digest"] = image.digest
        outputs["image-pushed"] = "true"
        checks.append(Check("image-push", "passed", message=f"pushed {ref}@{image.digest}"))
        summary += f", pushed as {ref}@{image.digest}"
    return checks, outputs, summary


def _failed(checks: list[Check]) -> list[str]:
    return [c.name for c in checks if c.status == "failed" and c.blocking]


def _default_model_uri(ctx: StepContext) -> str:
    registered = ctx.earlier_output("register", "model-uri", statuses=("passed",))
    if registered:
        return registered
    if not ctx.options.model_name:
        raise UsageError(
            "no model to package: pass --model-uri, run `mlops-ci register` first, or set model-name "
            "(then models:/<model-name>@challenger is packaged)"
        )
    return f"models:/{ctx.options.model_name}@challenger"


def _check_image_template(template: str, name: str, commit: str | None) -> None:
    """Fails (ImageRefError) before any work when the template cannot give a valid reference."""
    from mlops_ci.container.reference import image_ref

    image_ref(template, name=name, version="1", commit=commit)


def _check_target_column(path: Path, target: str) -> None:
    from mlops_ci.convert.holdout import holdout_columns

    if target not in holdout_columns(path):
        raise UsageError(f"target column {target!r} is not in holdout {path}; fix target or --target")


OUTPUTS = (
    Output("model-uri", "URI of the model that was packaged"),
    Output("model-name", "Registered model name"),
    Output("model-version", "Registered version packaged"),
    Output("onnx-path", "The ONNX model written to the out-dir"),
    Output("onnx-bytes", "Size of the ONNX model in bytes"),
    Output("settings-path", "The serving settings written next to the ONNX model"),
    Output("parity", "passed or failed: native and ONNX predictions agree on the holdout"),
    Output("build-context", "The rendered, hermetic build context (Dockerfile, model, wheels)"),
    Output("image", "Image reference"),
    Output("image-built", "true when an image was built"),
    Output("image-id", "Local image id"),
    Output("image-digest", "Image digest (the registry digest once pushed)"),
    Output("image-size-bytes", "Image size in bytes"),
    Output("image-pushed", "true when the image was pushed"),
    Output("engine", "Container engine that built the image (docker or buildah)"),
    Output("smoke-ready-seconds", "Seconds the smoke-tested container took to become ready"),
    Output("smoke-memory-bytes", "Memory the smoke-tested container used"),
)

STEP = Step(
    name="package",
    help="convert the model to ONNX, check parity, build and smoke-test a small serving image",
    description="Convert the candidate (default: the last `mlops-ci register`, else "
    "models:/<model-name>@challenger) to ONNX, compare native and ONNX predictions on the "
    "holdout (labels, probability differences, metrics), render a hermetic build context "
    "(Dockerfile, model, vendored wheels), build the image with Docker or buildah, smoke-test "
    "it, and push it with --push. Without a container engine the context is still rendered "
    "and the step says how to build it.",
    options=OPTIONS,
    outputs=OUTPUTS,
    run=run,
    shared=("holdout", "target"),
)
