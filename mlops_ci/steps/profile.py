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

The step itself is three moves: its options (and earlier steps' results) become a
``ProfileRequest`` (``profile_request``), ``mlops_ci.profiling.run.profile`` does the work
and returns a ``ProfileOutcome``, which becomes the step result (``profile_result``).
"""

from __future__ import annotations

from mlops_ci.options import Option, alpha_option
from mlops_ci.profiling.errors import ProfilingError
from mlops_ci.profiling.request import REGRESSION_POLICIES, SERVER_MODES
from mlops_ci.result import StepResult
from mlops_ci.steps.base import Output, Step, StepContext

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
        choices=REGRESSION_POLICIES,
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
    from mlops_ci.profiling.run import profile
    from mlops_ci.steps.profile_request import build_request, flag_error
    from mlops_ci.steps.profile_result import build_result

    request = build_request(ctx)
    try:
        outcome = profile(request, store=lambda: ctx.store)
    except ProfilingError as exc:
        raise flag_error(exc) from None
    return build_result(outcome)


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
