"""`mlops-ci deploy`: promote in the registry (compare-and-set), run the image on a Docker
host (blue/green, or progressively: canary steps or a shadow behind an nginx proxy, each
step judged by a statistical analysis), or render, validate and apply Kubernetes
manifests; every deployment is recorded for audit.

Exit codes: 0 deployed (or nothing to do), 1 refused or failed (the champion changed since
validation, the candidate did not pass validation, the new container or the rollout failed
and the previous version keeps serving), 2 bad input (unknown target, no image, ...), 3 a
service failed (MLflow, the Docker host, the Kubernetes API, another deployment holding the
lock past --lock-timeout).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from mlops_ci.deploy.errors import SettingError
from mlops_ci.errors import UsageError
from mlops_ci.options import Option, alpha_option
from mlops_ci.result import Check, StepResult
from mlops_ci.steps.base import Output, Step, StepContext
from mlops_ci.tracking.provenance import ProvenanceKey

if TYPE_CHECKING:
    from mlops_ci.deploy.audit import AuditTrail
    from mlops_ci.deploy.docker_canary import ProgressiveDeployRequest
    from mlops_ci.deploy.docker_target import DockerDeployRequest, DockerService
    from mlops_ci.deploy.kube_manifests import Sizing
    from mlops_ci.deploy.kubernetes_target import (
        ClusterAccess,
        KubernetesDeployRequest,
        KubernetesRollbackRequest,
    )
    from mlops_ci.deploy.outcome import DeployOutcome
    from mlops_ci.deploy.registry_target import PromotionRequest
    from mlops_ci.deploy.service import ImageRef

TARGETS = ("registry", "docker", "kubernetes")
STRATEGIES = ("replace", "canary", "shadow")
LOG_NAME = "deployments.jsonl"

OPTIONS = (
    Option(
        "target",
        "Where to deploy: registry (move the champion alias), docker (blue/green on a Docker host) or "
        "kubernetes (render, validate and apply manifests)",
        choices=TARGETS,
        default="registry",
        # (MLOPS_CI_TARGET is the label column; MLOPS_CI_DEPLOY_TARGET the output in deploy.env)
        env="MLOPS_CI_DEPLOYMENT_TARGET",
    ),
    Option(
        "version",
        "Model version to deploy (default: the candidate of the last `mlops-ci validate`, else the "
        "version of the last `mlops-ci register`, in --out-dir)",
        metavar="VERSION",
    ),
    Option(
        "rollback",
        "Roll back instead of deploying: registry: champion back to previous-champion; docker: the "
        "previous container serves again; kubernetes: the previous manifests are applied again",
        kind="bool",
        default=False,
    ),
    # registry
    # (MLOPS_CI_ALIAS is the list of aliases register sets)
    Option(
        "alias",
        "Alias that marks the production model",
        default="champion",
        metavar="ALIAS",
        env="MLOPS_CI_CHAMPION_ALIAS",
    ),
    Option(
        "previous-alias",
        "Alias that keeps the replaced champion (what --rollback restores)",
        default="previous-champion",
        metavar="ALIAS",
    ),
    Option(
        "require-validation",
        "Promote only a version that `mlops-ci validate` passed (its mlops_ci.validation.* tags), and "
        "only over the champion it was validated against",
        kind="bool",
        default=True,
    ),
    Option(
        "expected-champion",
        "Promote only if the champion is this version ('none': only if there is no champion); "
        "default: the version validate compared against",
        metavar="VERSION",
    ),
    Option(
        "lock-timeout",
        "Seconds to wait for another deployment of the same model to finish",
        kind="float",
        default=120.0,
        minimum=0,
        metavar="SECONDS",
    ),
    Option(
        "stale-lock-after",
        "Break a deployment lock older than this many seconds (its job crashed)",
        kind="float",
        default=300.0,
        minimum=1,
        metavar="SECONDS",
    ),
    # kubernetes
    Option(
        "image",
        "Serving image to deploy (default: the image of the last `mlops-ci package` in --out-dir)",
        metavar="IMAGE",
    ),
    Option(
        "name",
        "Name of the service: the Docker network alias and container prefix, or the Kubernetes objects' "
        "name (default: the model name)",
        metavar="NAME",
    ),
    Option(
        "ready-timeout",
        "Seconds the new version has to become ready (Docker health, the Kubernetes rollout's progress deadline)",
        kind="float",
        default=120.0,
        minimum=1,
        metavar="SECONDS",
    ),
    # docker
    Option(
        "smoke-request",
        "JSON file with a V2 inference request the new container must answer before traffic moves "
        "(default: the model's input example, read from the image)",
        kind="path",
        metavar="PATH",
    ),
    Option("docker-host", "Docker engine to deploy to", env_aliases=("DOCKER_HOST",), metavar="URL"),
    Option(
        "bind",
        "Host address each container's port 8080 is published on (an ephemeral port)",
        default="127.0.0.1",
        metavar="ADDRESS",
    ),
    Option(
        "request-log-dir",
        "Host folder mounted into the container for the sampled request log (requests.jsonl, rotated) "
        "that `mlops-ci drift` reads",
        kind="path",
        metavar="PATH",
    ),
    # kubernetes
    Option(
        "kind",
        "What to render for kubernetes: deployment (Deployment, Service, HorizontalPodAutoscaler, "
        "PodDisruptionBudget) or kserve (a KServe InferenceService, V2 protocol)",
        choices=("deployment", "kserve"),
        default="deployment",
    ),
    Option("namespace", "Kubernetes namespace", default="default", metavar="NAMESPACE"),
    Option(
        "kubeconfig",
        "Kubeconfig file; with one, the manifests are applied and the rollout awaited (without: "
        "rendered and validated only)",
        kind="path",
        env_aliases=("KUBECONFIG",),
        metavar="PATH",
    ),
    Option("context", "Kubeconfig context (default: the file's current context)", metavar="NAME"),
    Option(
        "kubernetes-version",
        "Kubernetes version whose API schemas the manifests are validated against",
        default="1.30",
        metavar="X.Y",
    ),
    Option("replicas", "Replicas (default: profile.json's recommendation, else 2)", kind="int", minimum=1),
    Option(
        "max-replicas",
        "Upper bound of the HorizontalPodAutoscaler (default: 4 x replicas)",
        kind="int",
        minimum=1,
    ),
    Option(
        "cpu-target", "Average CPU utilisation (%) the autoscaler keeps", kind="int", default=70, minimum=1
    ),
    Option("cpu-request", "CPU request (default: profile.json's, else 250m)", metavar="QUANTITY"),
    Option("cpu-limit", "CPU limit (default: profile.json's, else 1)", metavar="QUANTITY"),
    Option("memory-request", "Memory request (default: profile.json's, else 256Mi)", metavar="QUANTITY"),
    Option("memory-limit", "Memory limit (default: profile.json's, else 512Mi)", metavar="QUANTITY"),
    Option(
        "image-pull-secret",
        "Secret with the registry credentials pods pull the image with",
        metavar="NAME",
    ),
    # progressive delivery (docker, kubernetes)
    Option(
        "strategy",
        "How traffic moves to the new version: replace (all at once, once it is ready and smoke-tested), "
        "canary (in --canary-steps, each judged by a statistical analysis of both versions' /metrics; "
        "abort and roll back when it is worse) or shadow (the new version gets a copy of every request, "
        "clients get only the stable answers; promoted when its analysis passes). docker: behind an nginx "
        "proxy, the service's stable entry point; kubernetes: a Gateway API HTTPRoute with weights, or "
        "KServe's canaryTrafficPercent",
        choices=STRATEGIES,
        default="replace",
        env="MLOPS_CI_ROLLOUT_STRATEGY",
    ),
    Option(
        "canary-steps",
        "Percentages of the traffic the canary gets, ascending; each step below 100 is analysed, 100 is "
        "the promotion (added when missing)",
        kind="list",
        default=("10", "50", "100"),
        metavar="PERCENT",
    ),
    Option(
        "canary-window",
        "Seconds of traffic each analysis compares",
        kind="float",
        default=60.0,
        minimum=1,
        maximum=3600,
        metavar="SECONDS",
    ),
    Option(
        "canary-max-holds",
        "Extra windows a step waits when either version has fewer than --canary-min-requests requests; "
        "then it aborts",
        kind="int",
        default=3,
        minimum=0,
        maximum=100,
    ),
    Option(
        "canary-min-requests",
        "Inference requests each version needs in a window before the analysis decides",
        kind="int",
        default=200,
        minimum=1,
    ),
    alpha_option(
        "Significance level of each step's analysis (split between the error and the latency test)",
        name="canary-alpha",
    ),
    Option(
        "canary-max-error-increase",
        "Error-rate increase (5xx share, canary minus baseline) tolerated even when significant",
        kind="float",
        default=0.005,
        minimum=0,
        below=1,
    ),
    Option(
        "canary-max-latency-ratio",
        "Latency quantile ratio (canary / baseline) tolerated even when significant",
        kind="float",
        default=1.25,
        minimum=1,
    ),
    Option(
        "canary-latency-quantile",
        "Latency quantile the analysis compares",
        kind="float",
        default=0.95,
        above=0,
        below=1,
    ),
    Option(
        "gateway",
        "kubernetes canary/shadow: the Gateway (Gateway API) the HTTPRoute attaches to",
        metavar="NAME",
    ),
    Option(
        "proxy-image",
        "docker: a ready nginx proxy image (default: built once from --proxy-base-image with Debian's nginx)",
        metavar="IMAGE",
    ),
    Option(
        "proxy-base-image",
        "docker: Debian-based image the proxy is built from (apt-get install nginx)",
        default="python:3.11-slim",
        metavar="IMAGE",
    ),
    Option(
        "proxy-port",
        "docker: host port of the proxy (0: an ephemeral port, kept while the proxy lives)",
        kind="int",
        default=0,
        minimum=0,
        maximum=65535,
    ),
)

OUTPUTS = (
    Output("target", "registry, docker or kubernetes"),
    Output("action", "promoted, unchanged, rolled-back, refused, deployed, rendered or failed"),
    Output("model-name", "The registered model"),
    Output("model-version", "The version now deployed (the champion after a promotion)"),
    Output("previous-version", "The version it replaced (what --rollback restores)"),
    Output("model-uri", "models:/<name>/<version> of the deployed version"),
    Output("image", "The image deployed (docker, kubernetes)"),
    Output(
        "endpoint",
        "Where the service answers (docker: http://NAME:8080 on network mlops-ci-NAME and a host URL; "
        "kubernetes: NAME.NAMESPACE.svc)",
    ),
    Output("manifests", "Folder of the rendered Kubernetes manifests"),
    Output("deployment-id", "Id of the record in the deployment log"),
    Output("deployment-log", "The local append-only deployment log (deployments.jsonl)"),
    Output("strategy", "canary or shadow, when the rollout was progressive (--strategy)"),
    Output(
        "canary-decisions",
        "Each analysis window of a canary or shadow, as PERCENT%:DECISION (0%: the shadow), e.g. "
        "'10%:promote 50%:hold 50%:promote'",
    ),
    Output(
        "proxy-endpoint",
        "docker canary/shadow: the proxy, the service's stable entry point (http://NAME-proxy:8080 on "
        "network mlops-ci-NAME and a host URL)",
    ),
)


def run(ctx: StepContext) -> StepResult:
    target = ctx.options.target
    if target not in TARGETS:
        raise UsageError(f"--target must be one of {', '.join(TARGETS)}, got {target!r}")
    try:
        outcome = _deploy(ctx, target)
    except SettingError as error:
        # The domain names the setting; here it is the option of the same name.
        raise UsageError(f"--{error.setting} {error.problem}") from None
    return to_result(outcome)


def _deploy(ctx: StepContext, target: str) -> DeployOutcome:
    """Options and earlier results -> one request -> one domain call."""
    rollback = ctx.options.rollback
    if target == "registry" and ctx.options.strategy != "replace":
        raise UsageError(
            f"--strategy {ctx.options.strategy} moves traffic: use it with --target docker or kubernetes"
        )
    if target == "registry":
        from mlops_ci.deploy.registry_target import deploy_registry

        return deploy_registry(promotion_request(ctx), audit_trail(ctx))
    if target == "kubernetes":
        from mlops_ci.deploy import kubernetes_target as kt

        if rollback:
            return kt.rollback_kubernetes(kubernetes_rollback_request(ctx), audit_trail(ctx))
        return kt.deploy_kubernetes(kubernetes_request(ctx), audit_trail(ctx))
    from mlops_ci.deploy import docker_target as dt

    if rollback:
        return dt.rollback_docker(docker_service(ctx), audit_trail(ctx))
    if ctx.options.strategy != "replace":
        from mlops_ci.deploy.docker_canary import deploy_docker_progressive

        return deploy_docker_progressive(progressive_request(ctx), audit_trail(ctx))
    return dt.deploy_docker(docker_request(ctx), audit_trail(ctx))


# --- outcome -> result ----------------------------------------------------------------------


def to_result(outcome: DeployOutcome) -> StepResult:
    hint = _hint(outcome)
    reported = {
        "model-name": outcome.model,
        "model-version": outcome.version,
        "previous-version": outcome.previous_version,
        "model-uri": outcome.model_uri,
        "image": outcome.image,
        "endpoint": outcome.endpoint,
        "manifests": None if outcome.manifests is None else str(outcome.manifests),
        "deployment-id": outcome.deployment_id,
        "deployment-log": None if outcome.deployment_log is None else str(outcome.deployment_log),
    }
    if outcome.strategy is not None:
        reported["strategy"] = outcome.strategy
    if outcome.decisions:
        reported["canary-decisions"] = " ".join(f"{d.percent}%:{d.action}" for d in outcome.decisions)
    reported["proxy-endpoint"] = outcome.proxy_endpoint
    outputs = {"target": outcome.target, "action": outcome.action}
    outputs.update((key, value) for key, value in reported.items() if value is not None)
    checks = [
        Check(
            check.name,
            "passed" if check.passed else "failed",
            message=check.message + (hint if outcome.reason else ""),
            details={"kind": "deploy", **check.details},
        )
        for check in outcome.checks
    ]
    return StepResult(
        step="deploy",
        status="passed" if outcome.ok else "failed",
        summary=outcome.message + hint,
        outputs=outputs,
        checks=checks,
        artifacts=[str(path) for path in outcome.artifacts],
    )


def _hint(outcome: DeployOutcome) -> str:
    """What the user can do about the outcome, in this command's flags (added to the summary,
    and to the check of a refused promotion, whose message is the summary)."""
    if outcome.reason == "not-validated":
        return " (or pass --no-require-validation)"
    if outcome.action == "rendered":
        return "; pass --kubeconfig to apply"
    return ""


# --- options and earlier results -> requests ------------------------------------------------


def model_name(ctx: StepContext, *, required: bool = True) -> str | None:
    from mlops_ci.tracking.registry import check_model_name

    name = ctx.options.model_name or ctx.earlier_output("register", "model-name")
    if name is None and not required:
        return None
    return check_model_name(name)


def candidate_version(ctx: StepContext) -> str:
    version = (
        ctx.options.version
        or ctx.earlier_output("validate", "candidate-version")
        or ctx.earlier_output("register", "model-version")
    )
    if not version:
        raise UsageError(
            "no version to deploy: pass --version, or run `mlops-ci register` / `mlops-ci validate` first "
            f"(no register.json or validate.json in {ctx.out_dir})"
        )
    if not str(version).isdigit():
        raise UsageError(f"--version must be a version number, got {version!r}")
    return str(version)


def optional_version(ctx: StepContext) -> str | None:
    try:
        return candidate_version(ctx)
    except UsageError:
        return None


def log_path(ctx: StepContext) -> Path:
    return ctx.out_dir / LOG_NAME


def audit_trail(ctx: StepContext) -> AuditTrail:
    from mlops_ci.deploy.audit import AuditTrail, context_of

    return AuditTrail(
        log_path=log_path(ctx),
        store=lambda: ctx.store,
        experiment=ctx.experiment_name,
        context=context_of(ctx.run_context),
        lock_timeout_s=ctx.options.lock_timeout,
        stale_after_s=ctx.options.stale_lock_after,
    )


def service(ctx: StepContext, *, missing: str) -> tuple[str, str | None]:
    """The service's name (--name, else the model name made a DNS label) and the model name;
    ``missing`` is the usage error when there is neither."""
    from mlops_ci.deploy.service import service_name

    model = model_name(ctx, required=False)
    if not (ctx.options.name or model):
        raise UsageError(missing)
    return service_name(ctx.options.name, model), model


def image(ctx: StepContext) -> ImageRef:
    """--image, else the image of the last `mlops-ci package` (and its digest)."""
    from mlops_ci.deploy.service import image_to_deploy

    found = image_to_deploy(
        ctx.options.image,
        ctx.earlier_output("package", "image"),
        ctx.earlier_output("package", "image-digest"),
    )
    if found is None:
        raise UsageError(
            "no image to deploy: pass --image, or run `mlops-ci package` first (no image in "
            f"{ctx.out_dir / 'package.json'})"
        )
    return found


def promotion_request(ctx: StepContext) -> PromotionRequest:
    from mlops_ci.deploy.promotion import NO_CHAMPION
    from mlops_ci.deploy.registry_target import PromotionRequest
    from mlops_ci.tracking.registry import check_alias

    opts = ctx.options
    name = str(model_name(ctx))
    alias, previous_alias = check_alias(opts.alias), check_alias(opts.previous_alias)
    if alias == previous_alias:
        raise UsageError(f"--alias and --previous-alias must differ, both are {alias!r}")
    version = None if opts.rollback else candidate_version(ctx)
    expected = opts.expected_champion
    if expected not in (None, NO_CHAMPION) and not expected.isdigit():
        raise UsageError(f"--expected-champion must be a version number or 'none', got {expected!r}")
    return PromotionRequest(
        model=name,
        version=version,
        rollback=opts.rollback,
        alias=alias,
        previous_alias=previous_alias,
        require_validation=opts.require_validation,
        expected_champion=expected,
        provenance_key=ProvenanceKey.from_env(ctx.env),
    )


def docker_service(ctx: StepContext) -> DockerService:
    from mlops_ci.deploy.docker_target import DockerService

    opts = ctx.options
    name, model = service(ctx, missing="no service name: pass --name or set model-name")
    smoke = None
    if opts.smoke_request is not None:
        try:
            smoke = json.loads(opts.smoke_request.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise UsageError(f"--smoke-request {opts.smoke_request}: {exc}") from None
    return DockerService(
        name=name,
        model=model,
        host=opts.docker_host,
        env=dict(ctx.env),
        bind=opts.bind,
        ready_timeout_s=opts.ready_timeout,
        smoke_request=smoke,
    )


def docker_request(ctx: StepContext) -> DockerDeployRequest:
    from mlops_ci.deploy.docker_target import DockerDeployRequest

    where = docker_service(ctx)
    return DockerDeployRequest(
        service=where,
        image=image(ctx),
        version=optional_version(ctx),
        request_log_dir=ctx.options.request_log_dir,
    )


def canary_steps(ctx: StepContext) -> tuple[int, ...]:
    """--canary-steps as ascending percentages, 100 added when missing."""
    raw = list(ctx.options.canary_steps or ())
    try:
        steps = [int(str(step).strip().rstrip("%")) for step in raw]
    except ValueError:
        raise UsageError(
            f"--canary-steps must be whole percentages such as 10,50,100, got {','.join(raw)!r}"
        ) from None
    if not steps or any(not 1 <= step <= 100 for step in steps) or steps != sorted(set(steps)):
        raise UsageError(
            f"--canary-steps must be ascending percentages from 1 to 100, got {','.join(map(str, raw))!r}"
        )
    if steps[-1] != 100:
        steps.append(100)
    return tuple(steps)


def analysis_config(ctx: StepContext):
    from mlops_ci.deploy.canary_analysis import AnalysisConfig

    opts = ctx.options
    return AnalysisConfig(
        alpha=opts.canary_alpha,
        min_requests=opts.canary_min_requests,
        max_error_increase=opts.canary_max_error_increase,
        quantile=opts.canary_latency_quantile,
        max_latency_ratio=opts.canary_max_latency_ratio,
    )


def progressive_request(ctx: StepContext) -> ProgressiveDeployRequest:
    from mlops_ci.deploy.docker_canary import ProgressiveDeployRequest, ProgressivePlan

    opts = ctx.options
    plan = ProgressivePlan(
        strategy=opts.strategy,
        steps=canary_steps(ctx),
        window_s=opts.canary_window,
        max_holds=opts.canary_max_holds,
        analysis=analysis_config(ctx),
        proxy_image=opts.proxy_image,
        proxy_base_image=opts.proxy_base_image,
        proxy_port=opts.proxy_port,
    )
    return ProgressiveDeployRequest(docker_request(ctx), plan)


def profile_recommendation(ctx: StepContext) -> Sizing | None:
    """The resources the last `mlops-ci profile` recommends, if it ran in --out-dir."""
    from mlops_ci.deploy.kube_manifests import Sizing

    profile = ctx.earlier("profile")
    if profile is None:
        return None
    outputs = profile.outputs
    replicas = str(outputs.get("replicas", ""))
    return Sizing(
        cpu_request=outputs.get("cpu-request") or None,
        cpu_limit=outputs.get("cpu-limit") or None,
        memory_request=outputs.get("memory-request") or None,
        memory_limit=outputs.get("memory-limit") or None,
        replicas=int(replicas) if replicas.isdigit() else None,
    )


def cluster_access(ctx: StepContext) -> ClusterAccess | None:
    from mlops_ci.deploy.kubernetes_target import ClusterAccess

    opts = ctx.options
    if opts.kubeconfig is None:
        return None
    return ClusterAccess(opts.kubeconfig, opts.context, retry_budget_s=opts.retry_timeout)


def kubernetes_request(ctx: StepContext) -> KubernetesDeployRequest:
    from mlops_ci.deploy.kube_manifests import Sizing
    from mlops_ci.deploy.kubernetes_target import KubernetesDeployRequest

    opts = ctx.options
    name, model = service(ctx, missing="no name for the Kubernetes objects: pass --name or set model-name")
    return KubernetesDeployRequest(
        name=name,
        image=image(ctx),
        manifests_dir=ctx.out_dir / "kubernetes",
        namespace=opts.namespace,
        model=model,
        version=optional_version(ctx),
        kind=opts.kind,
        sizing=Sizing(
            cpu_request=opts.cpu_request,
            cpu_limit=opts.cpu_limit,
            memory_request=opts.memory_request,
            memory_limit=opts.memory_limit,
            replicas=opts.replicas,
            max_replicas=opts.max_replicas,
        ),
        recommended=profile_recommendation(ctx),
        cpu_target=opts.cpu_target,
        kubernetes_version=opts.kubernetes_version,
        commit=ctx.run_context.commit,
        pull_secret=opts.image_pull_secret,
        ready_timeout_s=opts.ready_timeout,
        cluster=cluster_access(ctx),
        strategy=opts.strategy,
        steps=canary_steps(ctx) if opts.strategy == "canary" else (),
        gateway=opts.gateway,
    )


def kubernetes_rollback_request(ctx: StepContext) -> KubernetesRollbackRequest:
    from mlops_ci.deploy.kubernetes_target import KubernetesRollbackRequest

    opts = ctx.options
    name, model = service(ctx, missing="no name for the Kubernetes objects: pass --name or set model-name")
    cluster = cluster_access(ctx)
    if cluster is None:
        raise UsageError("--rollback on kubernetes needs --kubeconfig (or KUBECONFIG)")
    return KubernetesRollbackRequest(
        name=name,
        cluster=cluster,
        manifests_dir=ctx.out_dir / "kubernetes",
        namespace=opts.namespace,
        model=model,
        ready_timeout_s=opts.ready_timeout,
    )


STEP = Step(
    name="deploy",
    help="promote the model in the registry (compare-and-set), or deploy its image to Docker or Kubernetes",
    description="--target registry moves the champion alias to the validated version, only if the "
    "champion is still the one it was validated against, keeping the old one as previous-champion "
    "(--rollback swaps them back). --target docker replaces the running container blue/green: the "
    "new one must be ready and answer a smoke inference before the service name moves to it, else "
    "the old one keeps serving; --strategy canary moves traffic in --canary-steps through an nginx proxy, "
    "comparing the new version with a baseline of the old one statistically at each step (promote, hold, or "
    "abort and roll back), and --strategy shadow sends it a copy of the traffic first. --target kubernetes renders Deployment, Service, HorizontalPodAutoscaler and "
    "PodDisruptionBudget (or a KServe InferenceService), validates them against the Kubernetes "
    "schemas offline and, with a kubeconfig, applies them, waits for the rollout and rolls back "
    "when it fails. Every deployment is tagged on the model version and appended to a hash-chained "
    "deployment log. Exit 1: refused or failed (the previous version keeps serving).",
    options=OPTIONS,
    run=run,
    outputs=OUTPUTS,
)
