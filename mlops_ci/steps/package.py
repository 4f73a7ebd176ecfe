"""`mlops-ci package`: convert the candidate to ONNX, check parity, render a hermetic build
context, build (and push) the serving image, smoke-test it."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

from mlops_ci.errors import UsageError
from mlops_ci.options import Option
from mlops_ci.result import Check, StepResult, read_step_result, write_text_atomic
from mlops_ci.steps.base import Output, Step, StepContext

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

IMAGE_REF = re.compile(r"^[a-z0-9]+([._/:-][a-z0-9]+)*(:[\w][\w.-]{0,127})?$")


def run(ctx: StepContext) -> StepResult:
    opts = ctx.options
    # Inputs first: nothing is created when one is wrong.
    model_uri = opts.model_uri or _default_model_uri(ctx)
    if opts.onnx_model is not None and not opts.onnx_model.is_file():
        raise UsageError(f"--onnx-model {opts.onnx_model} does not exist")
    if opts.holdout is not None and not opts.holdout.is_file():
        raise UsageError(f"holdout {opts.holdout} does not exist; fix holdout in mlops-ci.yaml or --holdout")
    if opts.wheelhouse is not None and not opts.wheelhouse.is_dir():
        raise UsageError(f"--wheelhouse {opts.wheelhouse} is not a folder")
    if not re.match(r"^\d+\.\d+$", opts.python_version):
        raise UsageError(f"--python-version must look like 3.11, got {opts.python_version!r}")
    _image_ref(opts.image, opts.model_name or "model", "1", ctx.run_context.commit)  # checked before any work
    if opts.holdout is not None and opts.target:
        _check_target_column(opts.holdout, opts.target)

    from mlops_ci.container.wheels import default_platform
    from mlops_ci.convert import UnsupportedModelError
    from mlops_ci.convert.loading import load_native_model

    needs_store = ":" in model_uri and not Path(model_uri).exists()
    native = load_native_model(model_uri, store=ctx.store if needs_store else None, cwd=ctx.cwd)
    name = opts.model_name or native.name or _name_from_uri(model_uri)
    version = native.version or "1"
    frame, target = _read_holdout(ctx, native)
    image = _image_ref(opts.image, name, version, ctx.run_context.commit)
    out = ctx.out_dir / "package"
    outputs: dict[str, str] = {
        "model-uri": native.uri,
        "model-name": name,
        "model-version": version,
        "image-built": "false",
        "image": "",
        "image-digest": "",
        "image-id": "",
        "image-size-bytes": "",
        "onnx-path": "",
        "build-context": "",
    }
    checks: list[Check] = []

    from mlops_ci.convert.build import convert

    onnx_override = None
    if opts.onnx_model is not None:
        from mlops_ci.convert.loading import load_onnx

        onnx_override = load_onnx(opts.onnx_model)
    lineage = {
        "model_uri": native.uri,
        "registered_model": native.name,
        "registered_version": native.version,
        "commit": ctx.run_context.commit,
        "pipeline_url": ctx.run_context.pipeline_url,
    }
    try:
        converted = convert(
            native,
            name=name,
            version=version,
            opset=opts.opset,
            precision=opts.precision,
            frame=frame,
            onnx_override=onnx_override,
            lineage=lineage,
        )
    except UnsupportedModelError as exc:
        checks.append(
            Check(
                "onnx-conversion",
                "failed",
                message=str(exc),
                details={"kind": "parity", "estimator": exc.estimator},
            )
        )
        summary = f"{model_uri} cannot be converted to ONNX: {exc}"
        return StepResult("package", "failed", summary, outputs, checks)
    model_dir = out / "model"
    model_dir.mkdir(parents=True, exist_ok=True)
    onnx_path = model_dir / converted.settings.model_file
    onnx_path.write_bytes(converted.onnx_bytes)
    settings_path = converted.settings.write(model_dir)
    outputs["onnx-path"] = str(onnx_path)
    outputs["settings-path"] = str(settings_path)
    outputs["onnx-bytes"] = str(onnx_path.stat().st_size)
    checks.append(
        Check(
            "onnx-conversion",
            "passed",
            message=f"{converted.conversion.converter}, opset {converted.conversion.opset or 'default'}, "
            f"{len(converted.settings.onnx_inputs)} ONNX input(s) for {len(converted.settings.columns)} column(s)",
            details={"kind": "parity"},
        )
    )

    from mlops_ci.steps.package_parity import parity_checks, parity_markdown

    artifacts: list[str] = [str(onnx_path), str(settings_path)]
    if native.is_onnx and onnx_override is None:
        checks.append(
            Check(
                "parity",
                "skipped",
                message="the model is already ONNX: nothing to compare",
                blocking=False,
                details={"kind": "parity"},
            )
        )
    else:
        from mlops_ci.convert.parity import compare

        parity_frame, source = (
            (frame, "holdout") if frame is not None else (_example_frame(native), "input example")
        )
        if parity_frame is None:
            raise UsageError(
                f"{model_uri} has no input example and no holdout is set: parity needs rows; set holdout in "
                "mlops-ci.yaml or --holdout"
            )
        report = compare(
            native.model,
            model_dir,
            converted.settings,
            parity_frame.head(opts.parity_rows),
            target.head(opts.parity_rows) if target is not None and source == "holdout" else None,
            source=source,
        )
        checks.extend(parity_checks(report, opts))
        report_path = out / "parity.md"
        write_text_atomic(report_path, parity_markdown(report, checks))
        artifacts.append(str(report_path))
    parity_failed = any(c.status == "failed" and c.blocking for c in checks)
    outputs["parity"] = "failed" if parity_failed else "passed"

    from mlops_ci.container.context import oci_labels, render_context

    context_dir = opts.build_context or (out / "context")
    labels = oci_labels(
        converted.settings,
        source_url=ctx.env.get("GITHUB_SERVER_URL", "") + "/" + ctx.env["GITHUB_REPOSITORY"]
        if ctx.env.get("GITHUB_REPOSITORY")
        else ctx.env.get("CI_PROJECT_URL"),
        commit=ctx.run_context.commit,
        model_uri=native.uri,
    )
    context = render_context(
        context_dir,
        onnx_bytes=converted.onnx_bytes,
        settings=converted.settings,
        image=image,
        base_image=opts.base_image,
        labels=labels,
        python_version=opts.python_version,
        platform_tag=opts.platform or default_platform(),
        wheelhouse=opts.wheelhouse,
    )
    outputs["build-context"] = str(context.path)
    outputs["image"] = image

    if parity_failed:
        failed = [c.name for c in checks if c.status == "failed" and c.blocking]
        summary = f"parity failed ({', '.join(failed)}): no image built; see {out / 'parity.md'}"
        return StepResult("package", "failed", summary, outputs, checks, artifacts)

    image_checks, image_outputs, image_summary = _build_image(ctx, context, model_dir, image)
    checks.extend(image_checks)
    outputs.update(image_outputs)
    failed = [c.name for c in checks if c.status == "failed" and c.blocking]
    status = "failed" if failed else "passed"
    summary = f"{name} version {version} converted to ONNX ({converted.conversion.converter}), parity passed; {image_summary}"
    if failed:
        summary = f"{', '.join(failed)} failed; " + summary
    return StepResult("package", status, summary, outputs, checks, artifacts)


def _build_image(
    ctx: StepContext, context: Any, model_dir: Path, image: str
) -> tuple[list[Check], dict[str, str], str]:
    from mlops_ci.container.engine import BuildError, credentials_from_env, find_engine

    opts = ctx.options
    engine, why = find_engine(opts.engine, ctx.env)
    if engine is None:
        how = f"build it with `docker build -t {image} {context.path}`"
        message = f"no image was built: {why}. The build context is ready in {context.path}; {how}"
        log.warning("package: %s", message)
        status = "failed" if opts.require_image else "warning"
        check = Check(
            "image-build", status, message=message, blocking=opts.require_image, details={"reason": why}
        )
        return [check], {}, f"no image built ({why}); build context in {context.path}"
    log.info("package: building %s with %s", image, engine.describe())
    build_log = ctx.out_dir / "package" / "build.log"
    try:
        info = engine.build(context.path, image, log_path=build_log)
    except BuildError as exc:
        check = Check(
            "image-build",
            "failed",
            message=f"{exc}; full log in {build_log}",
            details={"log_tail": exc.log_tail[-3000:]},
        )
        return [check], {}, "image build failed"
    outputs = {
        "image-built": "true",
        "image-id": info.id,
        "image-digest": info.id,
        "image-size-bytes": str(info.size_bytes),
        "engine": engine.name,
    }
    checks = [
        Check(
            "image-build",
            "passed",
            value=float(info.size_bytes),
            message=f"built {image} ({info.size_bytes / 1e6:.0f} MB) with {engine.describe()}",
            details={"size_bytes": info.size_bytes, "base_image": context.base_image},
        )
    ]
    summary = f"image {image} built ({info.size_bytes / 1e6:.0f} MB)"
    if opts.smoke_test:
        from mlops_ci.container.smoke import smoke_test

        try:
            result = smoke_test(engine, image, model_dir)
        except UsageError as exc:
            result = None
            checks.append(Check("smoke-test", "skipped", message=str(exc), blocking=False))
        if result is not None:
            checks.append(
                Check(
                    "smoke-test",
                    "passed" if result.passed else "failed",
                    value=result.ready_s,
                    message=result.message,
                    details={
                        k: v
                        for k, v in {**result.details, "memory_bytes": result.memory_bytes}.items()
                        if v is not None
                    },
                )
            )
            if result.ready_s is not None:
                outputs["smoke-ready-seconds"] = f"{result.ready_s:.3f}"
            if result.memory_bytes:
                outputs["smoke-memory-bytes"] = str(result.memory_bytes)
    if opts.push:
        credentials = credentials_from_env(image, ctx.env)
        digest = engine.push(image, credentials)
        outputs["image-digest"] = digest
        outputs["image-pushed"] = "true"
        checks.append(Check("image-push", "passed", message=f"pushed {image}@{digest}"))
        summary += f", pushed as {image}@{digest}"
    return checks, outputs, summary


def _default_model_uri(ctx: StepContext) -> str:
    path = ctx.out_dir / "register.json"
    if path.is_file():
        result = read_step_result(path)
        uri = result.outputs.get("model-uri")
        if result.status == "passed" and uri:
            return uri
    if not ctx.options.model_name:
        raise UsageError(
            "no model to package: pass --model-uri, run `mlops-ci register` first, or set model-name "
            "(then models:/<model-name>@challenger is packaged)"
        )
    return f"models:/{ctx.options.model_name}@challenger"


def _name_from_uri(uri: str) -> str:
    stem = Path(uri.rstrip("/")).stem or "model"
    return re.sub(r"[^A-Za-z0-9._-]", "-", stem)


def _image_ref(template: str, name: str, version: str, commit: str | None) -> str:
    try:
        ref = template.format(name=name.lower(), version=version, commit=(commit or "local")[:12])
    except (KeyError, IndexError, ValueError) as exc:
        raise UsageError(
            f"--image {template!r} has an unknown placeholder ({exc}); use {{name}}, {{version}}, {{commit}}"
        ) from None
    if not IMAGE_REF.match(ref):
        raise UsageError(
            f"--image gives {ref!r}, which is not a valid image reference (lowercase, name[:tag])"
        )
    return ref


def _read_holdout(ctx: StepContext, native: Any) -> tuple[Any, Any]:
    opts = ctx.options
    if opts.holdout is None:
        return None, None
    import pandas as pd

    path = opts.holdout
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            data = pd.read_parquet(path)
        else:
            # Only empty cells are missing: "NA" or "?" may be real categories.
            data = pd.read_csv(path, keep_default_na=False, na_values=[""])
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read holdout {path}: {exc}") from None
    target = None
    if opts.target:
        if opts.target not in data.columns:
            raise UsageError(
                f"target column {opts.target!r} is not in holdout {path}; fix target or --target"
            )
        target = data[opts.target]
        data = data.drop(columns=[opts.target])
    if native.columns:
        missing = [c.name for c in native.columns if c.name not in data.columns]
        if missing:
            raise UsageError(f"holdout {path} lacks the model's column(s) {', '.join(missing[:5])}")
        for column in native.columns:
            if column.kind == "string":
                data[column.name] = data[column.name].astype(str)
            elif column.kind in ("float", "int"):
                data[column.name] = pd.to_numeric(data[column.name], errors="coerce")
        data = data[[c.name for c in native.columns]]
    return data, target


def _check_target_column(path: Path, target: str) -> None:
    if path.suffix.lower() in (".parquet", ".pq"):
        import pyarrow.parquet as pq

        try:
            names = pq.read_schema(path).names
        except (OSError, ValueError) as exc:
            raise UsageError(f"cannot read holdout {path}: {exc}") from None
    else:
        import csv

        try:
            with path.open(newline="", encoding="utf-8") as handle:
                names = next(csv.reader(handle), [])
        except (OSError, UnicodeDecodeError, csv.Error) as exc:
            raise UsageError(f"cannot read holdout {path}: {exc}") from None
    if target not in names:
        raise UsageError(f"target column {target!r} is not in holdout {path}; fix target or --target")


def _example_frame(native: Any) -> Any:
    return native.input_example


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
