"""`mlops-ci profile`: what the model costs to serve, and whether this change made it slower.

1. In-process: ONNX Runtime across intra-op threads x batch sizes (p50/p95/p99, rows/s).
2. End to end: the serving image under each CPU limit (or `mlops-ci serve`, or an
   endpoint) across concurrency levels, with the load generator's own ceiling; then the
   smallest memory limit that survives the heaviest load without an OOM kill.
3. A recommendation for Kubernetes (CPU/memory requests and limits, replicas for the
   target throughput at the p99 objective) as step outputs that `deploy` reads.
4. Candidate vs champion: both measured now, interleaved; a bootstrap interval on the ratio
   of p95s decides (blocking or warning per ``latency-regression``).
5. report.json, profile.md and latency.png in ``<out-dir>/profile/``, stored with the model
   version in MLflow together with the exact ONNX model measured.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from mlops_ci.errors import UsageError
from mlops_ci.options import Option, alpha_option
from mlops_ci.result import StepResult
from mlops_ci.steps.base import Output, Step, StepContext
from mlops_ci.steps.profile_models import SERVER_MODES

log = logging.getLogger(__name__)

OPTIONS = (
    Option(
        "model",
        "Model to profile: a folder with model-settings.json (from `mlops-ci package`), a build context, an "
        ".onnx file or a model URI (default: the model of the last `mlops-ci package`, else /model of "
        "--image, else the last `mlops-ci register`'s model converted on the fly)",
        metavar="MODEL",
    ),
    Option(
        "image",
        "Serving image to load (default: the image of the last `mlops-ci package`, when one was built)",
        metavar="IMAGE",
    ),
    Option(
        "endpoint",
        "URL of a running server to load instead of starting one (no CPU/memory limits then)",
        metavar="URL",
    ),
    Option(
        "server",
        "What to load: auto (--endpoint, else the image when a container engine answers, else `mlops-ci "
        "serve`), container, serve, endpoint, none (in-process only)",
        choices=SERVER_MODES,
        default="auto",
    ),
    Option(
        "engine",
        "Container engine for the image: docker (DOCKER_HOST), buildah (runs with podman), auto",
        choices=("auto", "docker", "buildah"),
        default="auto",
    ),
    Option(
        "request",
        "JSON body to POST instead of a V2 request built from the model's input example",
        kind="path",
        metavar="FILE",
    ),
    Option(
        "infer-path",
        "Path the requests go to (default: /v2/models/<model name>/infer)",
        metavar="PATH",
    ),
    Option("ready-path", "Path that answers 200 once the server is ready", default="/v2/health/ready"),
    Option(
        "server-env",
        "Environment for the server (container or `mlops-ci serve`), e.g. MLOPS_CI_SERVE_INTRA_OP_THREADS=2",
        kind="map",
    ),
    Option("threads", "Intra-op thread counts for the in-process sweep", kind="list", default=("1", "2")),
    Option(
        "batch-sizes", "Rows per call for the in-process sweep", kind="list", default=("1", "8", "64", "512")
    ),
    Option(
        "concurrency",
        "Concurrent requests for the end-to-end sweep",
        kind="list",
        default=("1", "4", "16", "64"),
    ),
    Option(
        "cpus",
        "CPU limits for the end-to-end sweep (container only; 500m, 0.5, 1, 2)",
        kind="list",
        default=("0.5", "1", "2"),
    ),
    Option(
        "memory-limits",
        "Memory limits the OOM search chooses from (container only)",
        kind="list",
        default=("64Mi", "96Mi", "128Mi", "192Mi", "256Mi", "384Mi", "512Mi", "1Gi"),
    ),
    Option(
        "memory-search",
        "Search the smallest memory limit without OOM (container only)",
        kind="bool",
        default=True,
    ),
    Option("request-rows", "Rows per end-to-end request", kind="int", default=1, minimum=1),
    Option(
        "duration",
        "Seconds of load per end-to-end point (wrk rounds up to whole seconds)",
        kind="float",
        default=5.0,
        minimum=0.1,
    ),
    Option(
        "warmup",
        "Seconds of unrecorded load before each end-to-end point",
        kind="float",
        default=0.5,
        minimum=0,
    ),
    Option("inprocess-duration", "Seconds per in-process point", kind="float", default=1.0, minimum=0.01),
    Option(
        "load-generator",
        "wrk (native, when installed), python (asyncio, keep-alive) or auto",
        choices=("auto", "wrk", "python"),
        default="auto",
    ),
    Option(
        "slo-p99-ms",
        "Latency objective: p99 per request in milliseconds (0: no objective)",
        kind="float",
        default=100.0,
        minimum=0,
    ),
    Option(
        "target-rps", "Throughput the deployment must serve (sizes the replicas)", kind="float", minimum=0
    ),
    Option(
        "max-error-rate",
        "Largest share of failed requests for a point to count as meeting the objective",
        kind="float",
        default=0.001,
        minimum=0,
        below=1,
    ),
    Option(
        "utilization",
        "Share of a replica's capacity to plan for (the rest absorbs bursts; match the autoscaler's target)",
        kind="float",
        default=0.7,
        minimum=0.01,
        maximum=1,
    ),
    Option("min-replicas", "Fewest replicas to recommend", kind="int", default=1, minimum=1),
    Option(
        "max-replicas",
        "Most replicas the target may need before the step fails",
        kind="int",
        default=50,
        minimum=1,
    ),
    Option(
        "memory-headroom",
        "Share added on top of the measured memory for the limit",
        kind="float",
        default=0.25,
        minimum=0,
    ),
    Option(
        "latency-regression",
        "A candidate slower than the champion: block (a failed blocking check), warn, or off (not compared)",
        choices=("block", "warn", "off"),
        default="block",
    ),
    Option(
        "latency-threshold",
        "Flag the candidate when the lower bound of the interval on p95(candidate)/p95(champion) exceeds this",
        kind="float",
        default=1.2,
        minimum=1.0,
    ),
    Option(
        "champion",
        "Model to compare with (default: validate's baseline, else models:/<model-name>@champion)",
        metavar="MODEL",
    ),
    Option(
        "compare-on",
        "Latency samples for the comparison: in-process (ONNX Runtime alone, least noise) or end-to-end "
        "(sequential requests to two `mlops-ci serve` processes)",
        choices=("in-process", "end-to-end"),
        default="in-process",
    ),
    Option(
        "compare-duration",
        "Seconds the comparison measures, both models together",
        kind="float",
        default=6.0,
        minimum=0.1,
    ),
    Option("compare-rounds", "Interleaved rounds (blocks of each model)", kind="int", default=20, minimum=2),
    Option("compare-batch-size", "Rows per call in the comparison", kind="int", default=1, minimum=1),
    alpha_option("1 - confidence of the interval on the p95 ratio"),
    Option("bootstrap-resamples", "Bootstrap resamples", kind="int", default=2000, minimum=100),
    Option("seed", "Seed of the bootstrap", kind="int", default=0),
    Option(
        "store-profile",
        "Store the profile with the model version in MLflow (artifacts on its run, tags on the version)",
        kind="bool",
        default=True,
    ),
    Option(
        "ready-timeout", "Seconds a server may take to become ready", kind="float", default=60.0, minimum=1
    ),
)

OUTPUTS = (
    Output("cpu-request", "Recommended CPU request per replica (Kubernetes quantity, e.g. 350m)"),
    Output("cpu-limit", "Recommended CPU limit per replica"),
    Output("memory-request", "Recommended memory request per replica (e.g. 96Mi)"),
    Output("memory-limit", "Recommended memory limit per replica"),
    Output("replicas", "Replicas for target-rps at the p99 objective"),
    Output("throughput-rps", "Requests per second one replica serves at the p99 objective"),
    Output("p50-ms", "Median latency at that throughput"),
    Output("p99-ms", "p99 latency at that throughput"),
    Output("throughput-per-core", "Requests per second per CPU core at that point"),
    Output("slo-met", "true when some configuration met the p99 objective"),
    Output("target-rps", "The throughput objective the replicas are sized for"),
    Output("slo-p99-ms", "The p99 latency objective, in milliseconds"),
    Output("model-name", "Registered model profiled (when it came from the registry or package)"),
    Output("model-version", "Its version"),
    Output("server", "What was loaded: container, serve, endpoint or none"),
    Output("load-generator", "wrk or python"),
    Output("generator-ceiling-rps", "The load generator's ceiling on this machine (trivial endpoint)"),
    Output("inprocess-p50-ms", "ONNX Runtime in-process p50 for one row (fewest threads)"),
    Output("inprocess-p99-ms", "ONNX Runtime in-process p99 for one row (fewest threads)"),
    Output("latency-ratio", "p95(candidate) / p95(champion), when compared"),
    Output("champion-version", "The champion version compared with"),
    Output("profile-uri", "Where the profile is stored in MLflow (runs:/<run>/mlops-ci/profile)"),
    Output("report", "The markdown report"),
)


def run(ctx: StepContext) -> StepResult:
    inputs = _check_inputs(ctx)
    # Everything is written to a scratch folder first and moved to <out-dir>/profile only
    # when the profile is complete: an error leaves the previous profile as it was.
    scratch = Path(tempfile.mkdtemp(prefix="mlops-ci-profile-"))
    try:
        return _run(ctx, inputs, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _run(ctx: StepContext, inputs: dict[str, Any], scratch: Path) -> StepResult:
    from mlops_ci.profiling.report import ProfileReport, write_report
    from mlops_ci.steps import profile_models as pm

    opts = ctx.options
    plan = pm.plan(ctx, scratch)
    candidate = plan.candidate
    for note in plan.notes:
        log.info("profile: %s", note)
    log.info("profile: %s (%s), server: %s", candidate.label, candidate.source, plan.server)
    if plan.server == "endpoint":
        from mlops_ci.profiling.targets import EndpointTarget

        # Unreachable: exit 3 now, before minutes of in-process measurement.
        inputs["endpoint"] = EndpointTarget.connect(
            plan.endpoint, ready_path=opts.ready_path, retry_timeout_s=opts.retry_timeout
        )

    champion, comparison_note = None, None
    if opts.latency_regression == "off":
        comparison_note = "not compared (latency-regression: off)"
    elif candidate.model_dir is None:
        comparison_note = "not compared: the candidate's model is not available here (only an endpoint)"
    else:
        uri, why = pm.champion_uri(ctx)
        if uri is None:
            comparison_note = why
        else:
            champion, how = pm.load_champion(ctx, uri, candidate, scratch)
            if champion is None:
                comparison_note = how
            else:
                log.info("profile: champion %s (%s; %s)", champion.label, why, how)
                comparison_note = f"Champion model: {how}."

    out = scratch / "profile"
    out.mkdir()
    report = ProfileReport(
        model={
            "name": candidate.name or (candidate.settings.name if candidate.settings else None),
            "version": candidate.version,
            "uri": candidate.uri,
            "source": candidate.source,
        },
        objective=inputs["objective"],
        machine=_machine(),
        settings=_settings_record(opts),
        champion=_champion_record(champion),
        comparison_note=comparison_note,
    )

    if candidate.model_dir is not None:
        from mlops_ci.profiling.inprocess import inprocess_sweep

        report.inprocess = inprocess_sweep(
            candidate.model_dir,
            threads=inputs["threads"],
            batch_sizes=inputs["batch_sizes"],
            duration_s=opts.inprocess_duration,
            progress=lambda line: log.info("profile: %s", line),
        )

    if plan.server != "none":
        from mlops_ci.profiling.recommend import recommend

        report.sweep, report.target = _end_to_end(ctx, plan, inputs, out)
        report.sweep.notes[:0] = plan.notes
        report.recommendation = recommend(report.sweep, inputs["objective"])

    if champion is not None:
        report.comparison = _compare(ctx, candidate, champion, out)
    report.machine["load_after"] = _load()

    if candidate.model_dir is not None:
        shutil.copytree(candidate.model_dir, out / "model")
    final = ctx.out_dir / "profile"
    if report.sweep is not None:  # notes name logs by where they will be
        report.sweep.notes = [note.replace(str(out), str(final)) for note in report.sweep.notes]
    paths = write_report(report, out)
    summary_markdown = paths["markdown"].read_text(encoding="utf-8")
    paths = {key: final / path.relative_to(out) for key, path in paths.items()}

    from mlops_ci.steps.profile_result import build_result

    result = build_result(ctx, report, plan, paths)
    if opts.store_profile and candidate.model_dir is not None:
        _store(ctx, candidate, report, out, result)
    _replace_folder(out, final)
    result.summary_markdown = summary_markdown
    return result


def _replace_folder(source: Path, destination: Path) -> None:
    """Move the finished ``source`` to ``destination``, replacing an earlier profile."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    if destination.exists():
        shutil.rmtree(destination)
    shutil.move(str(source), str(destination))


# -- inputs -----------------------------------------------------------------------------------


def _check_inputs(ctx: StepContext) -> dict[str, Any]:
    """Every option that can be wrong, checked before anything is measured or written."""
    from mlops_ci.profiling.recommend import Objective, parse_cpus, parse_memory

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
    if opts.endpoint and not opts.endpoint.startswith(("http://", "https://")):
        raise UsageError(
            f"--endpoint must be an http(s) URL such as http://127.0.0.1:8080, got {opts.endpoint!r}"
        )
    body = None
    if opts.request is not None:
        try:
            body = opts.request.read_bytes()
            json.loads(body)
        except OSError as exc:
            raise UsageError(f"cannot read --request {opts.request}: {exc.strerror}") from None
        except ValueError:
            raise UsageError(f"--request {opts.request} is not valid JSON") from None
    from mlops_ci.profiling.loadgen import find_generator

    generator = find_generator(opts.load_generator, ctx.env)
    return {
        "threads": threads,
        "batch_sizes": batch_sizes,
        "concurrency": concurrency,
        "cpus": cpus,
        "memory": memory,
        "objective": objective,
        "body": body,
        "generator": generator,
    }


def _positive_ints(values: list[str], flag: str) -> list[int]:
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
    return sorted(set(out))


# -- end to end -------------------------------------------------------------------------------


def _end_to_end(ctx: StepContext, plan: Any, inputs: dict[str, Any], out: Path) -> tuple[Any, dict[str, Any]]:
    from mlops_ci.profiling.payload import Request, infer_path, v2_request
    from mlops_ci.profiling.sweep import e2e_sweep, memory_search
    from mlops_ci.profiling.targets import ContainerTarget, ServeTarget

    opts = ctx.options
    settings = plan.candidate.settings
    generator = inputs["generator"]
    if inputs["body"] is not None:
        path = opts.infer_path or (infer_path(settings) if settings is not None else None)
        if path is None:
            raise UsageError("--request needs --infer-path when there is no model to name the endpoint")
        request = Request("POST", path, inputs["body"])
        heavy = request
    else:
        request = v2_request(settings, opts.request_rows)
        heavy = v2_request(settings, max(inputs["batch_sizes"]))
        if opts.infer_path:
            request = Request("POST", opts.infer_path, request.body)
            heavy = Request("POST", opts.infer_path, heavy.body)
    env = dict(opts.server_env or {})
    progress = lambda line: log.info("profile: %s", line)  # noqa: E731

    target_info: dict[str, Any] = {
        "kind": plan.server,
        "generator": generator.describe(),
        "request_rows": opts.request_rows if inputs["body"] is None else None,
        "request_path": request.path,
    }
    if plan.server == "container":
        target_info["image"] = plan.image
        target_info["engine"] = plan.engine.describe()

        def start(cpus: float | None, memory: int | None) -> Any:
            return ContainerTarget.start(
                plan.engine,
                plan.image,
                cpus=cpus,
                memory_bytes=memory,
                env=env,
                ready_timeout_s=opts.ready_timeout,
            )

        levels: list[float | None] = list(inputs["cpus"])
    elif plan.server == "serve":
        log_path = out / "serve.log"

        def start(cpus: float | None, memory: int | None) -> Any:
            return ServeTarget.start(
                plan.candidate.model_dir, env=env, log_path=log_path, ready_timeout_s=opts.ready_timeout
            )

        levels = [None]
    else:
        target = inputs["endpoint"]
        target_info["url"] = plan.endpoint

        def start(cpus: float | None, memory: int | None) -> Any:
            return target

        levels = [None]

    sweep = e2e_sweep(
        start,
        generator,
        request,
        target_kind=plan.server,
        cpus_levels=levels,
        concurrency=inputs["concurrency"],
        duration_s=opts.duration,
        warmup_s=opts.warmup,
        slo_p99_ms=inputs["objective"].slo_p99_ms,
        progress=progress,
    )
    if plan.server == "container" and opts.memory_search and sweep.points:
        sweep.memory_probes = memory_search(
            start,
            generator,
            heavy,
            ladder=inputs["memory"],
            cpus=max(inputs["cpus"]),
            concurrency=max(inputs["concurrency"]),
            duration_s=opts.duration,
            max_error_rate=opts.max_error_rate,
            progress=progress,
        )
    return sweep, target_info


# -- the comparison ---------------------------------------------------------------------------


def _compare(ctx: StepContext, candidate: Any, champion: Any, out: Path) -> Any:
    from mlops_ci.profiling.compare import compare_latency, http_sampler, inprocess_sampler
    from mlops_ci.profiling.inprocess import load_model
    from mlops_ci.profiling.payload import onnx_feeds, v2_request

    opts = ctx.options
    common = dict(
        rounds=opts.compare_rounds,
        duration_s=opts.compare_duration,
        threshold=opts.latency_threshold,
        confidence_level=1 - opts.alpha,
        n_resamples=opts.bootstrap_resamples,
        seed=opts.seed,
    )
    batch = opts.compare_batch_size
    log.info(
        "profile: comparing with %s (%s, %.1f s)", champion.label, opts.compare_on, opts.compare_duration
    )
    if opts.compare_on == "in-process":
        models = [load_model(m.model_dir, threads=1) for m in (candidate, champion)]
        samplers = [inprocess_sampler(m, onnx_feeds(m.settings, batch, decoder=m.decoder)) for m in models]
        return compare_latency(
            samplers[0],
            samplers[1],
            mode="in-process",
            setup=f"batch {batch}, 1 intra-op thread",
            **common,
        )
    from mlops_ci.profiling.targets import ServeTarget

    env = dict(opts.server_env or {})
    with (
        ServeTarget.start(
            candidate.model_dir,
            env=env,
            log_path=out / "serve-candidate.log",
            ready_timeout_s=opts.ready_timeout,
        ) as first,
        ServeTarget.start(
            champion.model_dir,
            env=env,
            log_path=out / "serve-champion.log",
            ready_timeout_s=opts.ready_timeout,
        ) as second,
    ):
        return compare_latency(
            http_sampler(first.url, v2_request(candidate.settings, batch)),
            http_sampler(second.url, v2_request(champion.settings, batch)),
            mode="end-to-end",
            setup=f"{batch}-row V2 requests, one connection, `mlops-ci serve`",
            **common,
        )


# -- storing with the model version -------------------------------------------------------------


def _store(ctx: StepContext, candidate: Any, report: Any, folder: Path, result: StepResult) -> None:
    if not candidate.registered:
        log.info(
            "profile: %s is not a registered model version; the profile is not stored in MLflow",
            candidate.label,
        )
        return
    from mlops_ci.tracking.profiles import RegistryRef, get_version, log_profile
    from mlops_ci.tracking.store import connect

    client = connect(ctx.store)
    version = get_version(client, ctx.store, RegistryRef(candidate.name, candidate.version))
    if version is None:
        log.info(
            "profile: %s is not in the registry at %s; not stored", candidate.label, ctx.store.display_uri
        )
        return
    out = result.outputs
    tags = {
        key: out[name]
        for key, name in (
            ("cpu_request", "cpu-request"),
            ("cpu_limit", "cpu-limit"),
            ("memory_request", "memory-request"),
            ("memory_limit", "memory-limit"),
            ("replicas", "replicas"),
            ("throughput_rps", "throughput-rps"),
            ("p50_ms", "p50-ms"),
            ("p99_ms", "p99-ms"),
            ("inprocess_p50_ms", "inprocess-p50-ms"),
            ("inprocess_p99_ms", "inprocess-p99-ms"),
            ("latency_ratio", "latency-ratio"),
            ("server", "server"),
        )
        if out.get(name)
    }
    tags["status"] = result.status
    tags["at"] = report.machine.get("at", "")
    if ctx.run_context.commit:
        tags["commit"] = ctx.run_context.commit
    location = log_profile(client, ctx.store, version, folder, tags)
    result.outputs["profile-uri"] = location
    log.info("profile: stored with %s v%s at %s", version.name, version.version, location)


# -- records ------------------------------------------------------------------------------------


def _load() -> float | None:
    try:
        return os.getloadavg()[0]
    except OSError:
        return None


def _machine() -> dict[str, Any]:
    import platform

    from mlops_ci.result import now_iso

    try:
        import onnxruntime

        ort_version = onnxruntime.__version__
    except ImportError:  # pragma: no cover - a dependency
        ort_version = None
    return {
        "at": now_iso(),
        "cpus": os.cpu_count(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "onnxruntime": ort_version,
        "load_before": _load(),
    }


def _settings_record(opts: Any) -> dict[str, Any]:
    keys = (
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
    return {key: opts[key] for key in keys}


def _champion_record(champion: Any) -> dict[str, Any] | None:
    if champion is None:
        return None
    return {
        "name": champion.name,
        "version": champion.version,
        "uri": champion.uri,
        "source": champion.source,
        "stored_profile": dict(champion.tags),
    }


STEP = Step(
    name="profile",
    help="measure latency, throughput, CPU and memory; recommend resources; compare with the champion",
    description="Profile the candidate: ONNX Runtime in-process across threads and batch sizes; the "
    "serving image (or `mlops-ci serve`, or --endpoint) end to end across concurrency levels and CPU "
    "limits with wrk (or an asyncio client), next to the load generator's own ceiling; the smallest "
    "memory limit without an OOM kill. Recommends CPU/memory requests and limits and replicas for "
    "target-rps at slo-p99-ms, and compares p95 latency with the champion (interleaved, bootstrap "
    "interval on the ratio). Writes <out-dir>/profile/{report.json,profile.md,latency.png} and stores "
    "them with the model version in MLflow.",
    options=OPTIONS,
    run=run,
    outputs=OUTPUTS,
)
