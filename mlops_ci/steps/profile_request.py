"""The profile step's options (and earlier steps' results) as a ``ProfileRequest``, every
value checked before anything is measured; and profiling's errors as messages that name
the flag to change."""

from __future__ import annotations

import json
from pathlib import Path

from mlops_ci.errors import ExternalServiceError, MlopsCiError, UsageError
from mlops_ci.profiling import errors
from mlops_ci.profiling.request import (
    ChampionChoice,
    ComparisonSettings,
    ModelChoice,
    PackagedModel,
    ProfileRequest,
    ServerSettings,
    SweepSettings,
)
from mlops_ci.steps.base import StepContext

# The options recorded in the report, as they were given.
RECORDED = (
    "threads",
    "batch_sizes",
    "concurrency",
    "cpus",
    "memory_limits",
    "request_rows",
    "duration",
    "warmup",
    "inprocess_duration",
    "load_generator",
    "latency_regression",
    "latency_threshold",
    "compare_on",
    "compare_duration",
    "compare_rounds",
    "compare_batch_size",
    "alpha",
    "bootstrap_resamples",
    "seed",
)


def build_request(ctx: StepContext) -> ProfileRequest:
    """Usage errors (exit 2) for every option that cannot work."""
    from mlops_ci.profiling.recommend import Objective

    opts = ctx.options
    try:
        objective = Objective(
            slo_p99_ms=opts.slo_p99_ms or None,
            target_rps=opts.target_rps or None,
            max_error_rate=opts.max_error_rate,
            utilization=opts.utilization,
            min_replicas=opts.min_replicas,
            max_replicas=opts.max_replicas,
            memory_headroom=opts.memory_headroom,
        )
    except ValueError as exc:
        raise UsageError(str(exc).replace("`", "").replace("_", "-")) from None
    return ProfileRequest(
        models=_models(ctx),
        objective=objective,
        out_dir=ctx.out_dir,
        cwd=ctx.cwd,
        server=_server(ctx),
        sweeps=_sweeps(ctx),
        comparison=ComparisonSettings(
            policy=opts.latency_regression,
            threshold=opts.latency_threshold,
            on=opts.compare_on,
            duration_s=opts.compare_duration,
            rounds=opts.compare_rounds,
            batch_size=opts.compare_batch_size,
            alpha=opts.alpha,
            n_resamples=opts.bootstrap_resamples,
            seed=opts.seed,
        ),
        store_profile=opts.store_profile,
        commit=ctx.run_context.commit,
        env=ctx.env,
        settings={key: opts[key] for key in RECORDED},
    )


def _sweeps(ctx: StepContext) -> SweepSettings:
    from mlops_ci.profiling.recommend import parse_cpus, parse_memory

    opts = ctx.options
    threads = _positive_ints(opts.threads, "--threads")
    batch_sizes = _positive_ints(opts.batch_sizes, "--batch-sizes")
    concurrency = _positive_ints(opts.concurrency, "--concurrency")
    try:
        cpus = sorted({parse_cpus(value) for value in opts.cpus})
        memory = sorted({parse_memory(value) for value in opts.memory_limits})
    except ValueError as exc:
        raise UsageError(f"--cpus / --memory-limits: {exc}") from None
    if not cpus or not memory:
        raise UsageError("--cpus and --memory-limits need at least one value each")
    return SweepSettings(
        threads=threads,
        batch_sizes=batch_sizes,
        concurrency=concurrency,
        cpus=tuple(cpus),
        memory_ladder=tuple(memory),
        memory_search=opts.memory_search,
        duration_s=opts.duration,
        warmup_s=opts.warmup,
        inprocess_duration_s=opts.inprocess_duration,
        load_generator=opts.load_generator,
    )


def _positive_ints(values: list[str], flag: str) -> tuple[int, ...]:
    out = []
    for value in values:
        try:
            number = int(value)
        except ValueError:
            raise UsageError(f"{flag} takes whole numbers, got {value!r}") from None
        if number < 1:
            raise UsageError(f"{flag} takes numbers of at least 1, got {number}")
        out.append(number)
    if not out:
        raise UsageError(f"{flag} needs at least one value")
    return tuple(sorted(set(out)))


def _server(ctx: StepContext) -> ServerSettings:
    opts = ctx.options
    endpoint, mode = opts.endpoint, opts.server
    if endpoint and not endpoint.startswith(("http://", "https://")):
        raise UsageError(f"--endpoint must be an http(s) URL such as http://127.0.0.1:8080, got {endpoint!r}")
    if mode == "endpoint" and not endpoint:
        raise UsageError("--server endpoint needs --endpoint URL")
    if endpoint and mode in ("container", "serve"):
        raise UsageError(f"--endpoint and --server {mode} contradict each other; drop one")
    body = None
    if opts.request is not None:
        try:
            body = opts.request.read_bytes()
            json.loads(body)
        except OSError as exc:
            raise UsageError(f"cannot read --request {opts.request}: {exc.strerror}") from None
        except ValueError:
            raise UsageError(f"--request {opts.request} is not valid JSON") from None
    return ServerSettings(
        mode=mode,
        engine=opts.engine,
        env=dict(opts.server_env or {}),
        ready_path=opts.ready_path,
        ready_timeout_s=opts.ready_timeout,
        retry_timeout_s=opts.retry_timeout,
        body=body,
        infer_path=opts.infer_path,
        request_rows=opts.request_rows,
    )


def _models(ctx: StepContext) -> ModelChoice:
    """The candidate's sources: the options, else what `mlops-ci package` and `mlops-ci
    register` left in the out-dir; and the champion."""
    opts = ctx.options
    package = ctx.earlier("package")
    made = package.outputs if package is not None else {}
    image = opts.image
    if image is None and made.get("image-built") == "true" and made.get("image"):
        image = made["image"]
    if opts.server == "container" and image is None:
        raise UsageError(
            "--server container needs an image: pass --image, or run `mlops-ci package` with a container "
            "engine first"
        )
    packaged = None
    if made.get("settings-path"):
        packaged = PackagedModel(
            Path(made["settings-path"]),
            uri=made.get("model-uri"),
            name=made.get("model-name"),
            version=made.get("model-version"),
        )
    return ModelChoice(
        model=opts.model,
        image=image,
        endpoint=opts.endpoint,
        packaged=packaged,
        registered_uri=ctx.earlier_output("register", "model-uri"),
        model_name=opts.model_name,
        champion=_champion(ctx),
    )


def _champion(ctx: StepContext) -> ChampionChoice:
    """Which model is the champion, and how that was decided; none with the reason when
    there is none."""
    opts = ctx.options
    if opts.champion:
        return ChampionChoice(opts.champion, "--champion")
    validate = ctx.earlier("validate")
    if validate is not None:
        if validate.outputs.get("first-model") == "true":
            return ChampionChoice(None, "validate says this is the first model: no champion to compare with")
        if validate.outputs.get("baseline-uri"):
            return ChampionChoice(validate.outputs["baseline-uri"], "validate's baseline")
    if opts.model_name:
        return ChampionChoice(f"models:/{opts.model_name}@champion", "the champion alias")
    return ChampionChoice(
        None, "no champion: set model-name (the champion alias is looked up) or pass --champion"
    )


def flag_error(exc: errors.ProfilingError) -> MlopsCiError:
    """``exc`` with the flags to change named; the same exit code."""
    if isinstance(exc, errors.NothingToProfile):
        text = (
            "nothing to profile: no --model, no --image and no --endpoint, and no model from an earlier "
            f"`mlops-ci package` or `mlops-ci register` in {exc.out_dir}; run `mlops-ci package` first, or pass "
            "--model (a packaged folder, an .onnx file or a model URI)"
        )
    elif isinstance(exc, errors.EngineUnavailable):
        text = f"--server container: {exc.why}; start Docker (DOCKER_HOST) or use --server serve"
    elif isinstance(exc, errors.NoRequestBody):
        text = (
            f"no request to send to {exc.endpoint}: pass --request with a JSON body (and --infer-path), or "
            "--model so the request is built from its input example"
        )
    elif isinstance(exc, errors.NoRequestPath):
        text = "--request needs --infer-path when there is no model to name the endpoint"
    elif isinstance(exc, errors.NoInputExample):
        text = f"{exc}, or pass --request" + ("" if exc.missing else " with a request body")
    elif isinstance(exc, errors.GeneratorUnavailable):
        text = (
            f"--load-generator {exc.name}: {exc.name} is not installed; install it (apt-get install {exc.name}, "
            f"brew install {exc.name}) or use --load-generator python"
        )
    elif isinstance(exc, errors.EndpointNotReady):
        text = f"{exc.what}; check --endpoint and that the server runs, or raise --retry-timeout"
    else:
        text = str(exc)
    return (ExternalServiceError if isinstance(exc, ExternalServiceError) else UsageError)(text)
