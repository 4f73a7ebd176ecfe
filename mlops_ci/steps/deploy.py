"""`mlops-ci deploy`: promote in the registry (compare-and-set), run the image on a Docker
host (blue/green), or render, validate and apply Kubernetes manifests; every deployment
is recorded for audit.

Exit codes: 0 deployed (or nothing to do), 1 refused or failed (the champion changed since
validation, the candidate did not pass validation, the new container or the rollout failed
and the previous version keeps serving), 2 bad input (unknown target, no image, ...), 3 a
service failed (MLflow, the Docker host, the Kubernetes API, another deployment holding the
lock past --lock-timeout).
"""

from __future__ import annotations

import logging
from pathlib import Path

from mlops_ci.errors import UsageError
from mlops_ci.options import Option
from mlops_ci.result import Check, StepResult, read_step_result
from mlops_ci.steps.base import Output, Step, StepContext

log = logging.getLogger(__name__)

TARGETS = ("registry", "docker", "kubernetes")
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
)


def run(ctx: StepContext) -> StepResult:
    target = ctx.options.target
    if target == "registry":
        return _registry(ctx)
    if target == "kubernetes":
        from mlops_ci.deploy.kubernetes_target import deploy_kubernetes

        return deploy_kubernetes(ctx)
    if target == "docker":
        from mlops_ci.deploy.docker_target import deploy_docker

        return deploy_docker(ctx)
    raise UsageError(f"--target must be one of {', '.join(TARGETS)}, got {target!r}")


# --- defaults read from earlier step results ------------------------------------------


def earlier_output(ctx: StepContext, step: str, key: str) -> str | None:
    path = ctx.out_dir / f"{step}.json"
    if not path.is_file():
        return None
    return read_step_result(path).outputs.get(key) or None


def model_name(ctx: StepContext, *, required: bool = True) -> str | None:
    from mlops_ci.tracking.registry import check_model_name

    name = ctx.options.model_name or earlier_output(ctx, "register", "model-name")
    if name is None and not required:
        return None
    return check_model_name(name)


def service_name(ctx: StepContext, *, missing: str) -> tuple[str, str | None]:
    """The name of the deployed objects (--name, else the model name made a DNS label) and
    the model name; ``missing`` is the usage error when there is neither."""
    from mlops_ci.deploy import kube_manifests as km

    model = model_name(ctx, required=False)
    name = ctx.options.name or (km.kube_name(model) if model else "")
    if not name:
        raise UsageError(missing)
    return km.check_name(name, "--name"), model


def candidate_version(ctx: StepContext) -> str:
    version = (
        ctx.options.version
        or earlier_output(ctx, "validate", "candidate-version")
        or earlier_output(ctx, "register", "model-version")
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


def image_and_digest(ctx: StepContext) -> tuple[str, str | None]:
    """--image, else package.json's image (and its digest)."""
    image = ctx.options.image
    if image:
        return image, None
    image = earlier_output(ctx, "package", "image")
    if not image:
        raise UsageError(
            "no image to deploy: pass --image, or run `mlops-ci package` first (no image in "
            f"{ctx.out_dir / 'package.json'})"
        )
    return image, earlier_output(ctx, "package", "image-digest")


def audit_deployment(ctx: StepContext, record) -> None:
    """Record a target deployment (Kubernetes): the local log always; with a model version,
    its tags and the registry's log too (appended under the model's lock)."""
    from mlops_ci.deploy import audit
    from mlops_ci.deploy.lock import model_lock
    from mlops_ci.tracking.store import connect

    audit.append_local(log_path(ctx), record)
    if not (record.model and record.version):
        return
    from mlops_ci.deploy.promotion import get_version

    store = ctx.store
    client = connect(store)
    try:
        get_version(client, store, record.model, record.version)
    except UsageError:
        log.info(
            "%s v%s is not in the registry at %s: the deployment is logged locally only",
            record.model,
            record.version,
            store.display_uri,
        )
        return
    with model_lock(
        client,
        store,
        record.model,
        purpose=f"log a {record.target} deployment",
        timeout_s=ctx.options.lock_timeout,
        stale_after_s=ctx.options.stale_lock_after,
    ):
        if record.status in ("succeeded",):
            audit.tag_version(client, store, record.model, record.version, record)
        run_id = audit.log_run_id(
            client, store, model=record.model, experiment_id=_experiment_id(ctx, client)
        )
        audit.append_registry_log(client, store, run_id, record)


# --- registry -------------------------------------------------------------------------


def _registry(ctx: StepContext) -> StepResult:
    from mlops_ci.deploy import audit, promotion
    from mlops_ci.tracking.registry import check_alias
    from mlops_ci.tracking.store import connect

    opts = ctx.options
    name = model_name(ctx)
    alias, previous_alias = check_alias(opts.alias), check_alias(opts.previous_alias)
    if alias == previous_alias:
        raise UsageError(f"--alias and --previous-alias must differ, both are {alias!r}")
    version = None if opts.rollback else candidate_version(ctx)
    expected_flag = opts.expected_champion
    if expected_flag not in (None, promotion.NO_CHAMPION) and not expected_flag.isdigit():
        raise UsageError(f"--expected-champion must be a version number or 'none', got {expected_flag!r}")

    store = ctx.store
    client = connect(store)
    context = audit.context_of(ctx.run_context)
    records: list[audit.DeploymentRecord] = []

    def record(outcome: promotion.Outcome, _held) -> None:
        if outcome.action == "unchanged":
            return  # a re-run changes nothing and logs nothing
        status = "refused" if outcome.refused else "succeeded"
        entry = audit.DeploymentRecord(
            target="registry",
            action="rollback" if opts.rollback else "promote",
            status=status,
            model=name,
            version=outcome.version,
            previous_version=outcome.previous,
            message=outcome.message,
            context=context,
            details={
                "alias": alias,
                "previous_alias": previous_alias,
                "expected_champion": outcome.expected,
                "reason": outcome.reason,
                "lock_waited_s": round(outcome.lock_waited_s, 3),
            },
        )
        if not outcome.refused and outcome.version:
            audit.tag_version(client, store, name, outcome.version, entry)
        run_id = audit.log_run_id(client, store, model=name, experiment_id=_experiment_id(ctx, client))
        audit.append_registry_log(client, store, run_id, entry)
        audit.append_local(log_path(ctx), entry)
        records.append(entry)

    common = dict(
        name=name,
        alias=alias,
        previous_alias=previous_alias,
        lock_timeout_s=opts.lock_timeout,
        stale_after_s=opts.stale_lock_after,
        audit=record,
    )
    if opts.rollback:
        outcome = promotion.rollback(client, store, **common)
    else:
        found = promotion.get_version(client, store, name, version)
        expected = promotion.expectation(
            dict(found.tags or {}),
            name=name,
            version=version,
            require_validation=opts.require_validation,
            expected_flag=opts.expected_champion,
        )
        if expected.problem is not None:
            from mlops_ci.deploy.lock import model_lock

            # Refusals are logged too, under the lock like every append to the shared log.
            with model_lock(
                client,
                store,
                name,
                purpose=f"log a refused promotion of v{version}",
                timeout_s=opts.lock_timeout,
                stale_after_s=opts.stale_lock_after,
            ) as held:
                record(expected.problem, held)
            outcome = expected.problem
        else:
            outcome = promotion.promote(client, store, version=version, expected=expected, **common)

    check = Check(
        "rollback" if opts.rollback else "compare-and-set",
        "failed" if outcome.refused else "passed",
        message=outcome.message,
        details={
            "kind": "deploy",
            "reason": outcome.reason,
            "expected_champion": outcome.expected,
            "found_champion": outcome.previous if outcome.refused else None,
        },
    )
    outputs = {
        "target": "registry",
        "action": outcome.action,
        "model-name": name,
        "model-version": outcome.version or "",
        "previous-version": outcome.previous or "",
        "model-uri": f"models:/{name}/{outcome.version}" if outcome.version else "",
        "deployment-log": str(log_path(ctx)),
    }
    if records:
        outputs["deployment-id"] = records[-1].id
    return StepResult(
        step="deploy",
        status="failed" if outcome.refused else "passed",
        summary=outcome.message,
        outputs=outputs,
        checks=[check],
        artifacts=[str(log_path(ctx))] if records else [],
    )


def _experiment_id(ctx: StepContext, client) -> str:
    from mlops_ci.tracking.store import get_or_create_experiment

    return get_or_create_experiment(client, ctx.experiment_name, ctx.store)


STEP = Step(
    name="deploy",
    help="promote the model in the registry (compare-and-set), or deploy its image to Docker or Kubernetes",
    description="--target registry moves the champion alias to the validated version, only if the "
    "champion is still the one it was validated against, keeping the old one as previous-champion "
    "(--rollback swaps them back). --target docker replaces the running container blue/green: the "
    "new one must be ready and answer a smoke inference before the service name moves to it, else "
    "the old one keeps serving. --target kubernetes renders Deployment, Service, HorizontalPodAutoscaler and "
    "PodDisruptionBudget (or a KServe InferenceService), validates them against the Kubernetes "
    "schemas offline and, with a kubeconfig, applies them, waits for the rollout and rolls back "
    "when it fails. Every deployment is tagged on the model version and appended to a hash-chained "
    "deployment log. Exit 1: refused or failed (the previous version keeps serving).",
    options=OPTIONS,
    run=run,
    outputs=OUTPUTS,
)
