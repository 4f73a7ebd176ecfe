"""Deployment to Kubernetes: render the manifests, validate them offline, and (with access to
a cluster) apply them, wait for the rollout and put back what ran before when it fails."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlops_ci.deploy import kube_manifests as km
from mlops_ci.deploy.audit import AuditTrail, DeploymentRecord
from mlops_ci.deploy.errors import SettingError
from mlops_ci.deploy.outcome import CheckRecord, DeployOutcome
from mlops_ci.deploy.service import ImageRef
from mlops_ci.result import write_text_atomic

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ClusterAccess:
    """How to reach the cluster: a kubeconfig file and one of its contexts."""

    kubeconfig: Path
    context: str | None = None  # None: the file's current context
    retry_budget_s: float = 60.0


@dataclass(frozen=True)
class KubernetesDeployRequest:
    """What to render and where to apply it (``cluster`` None: render and validate only)."""

    name: str  # a DNS label: the objects' name
    image: ImageRef
    manifests_dir: Path
    namespace: str = "default"
    model: str | None = None
    version: str | None = None
    kind: str = "deployment"  # deployment | kserve
    sizing: km.Sizing = field(default_factory=km.Sizing)  # what was asked for
    recommended: km.Sizing | None = None  # the profile's recommendation
    cpu_target: int = 70
    kubernetes_version: str = "1.30"
    commit: str | None = None
    pull_secret: str | None = None
    ready_timeout_s: float = 120.0
    cluster: ClusterAccess | None = None
    strategy: str = "replace"  # replace | canary | shadow
    steps: tuple[int, ...] = (10, 50, 100)  # canary percentages
    gateway: str | None = None  # the Gateway an HTTPRoute attaches to (canary/shadow, deployment kind)


@dataclass(frozen=True)
class KubernetesRollbackRequest:
    """Apply again the manifests that ran before the current ones."""

    name: str
    cluster: ClusterAccess
    manifests_dir: Path
    namespace: str = "default"
    model: str | None = None
    ready_timeout_s: float = 120.0


def deploy_kubernetes(request: KubernetesDeployRequest, trail: AuditTrail) -> DeployOutcome:
    """Render and validate the manifests into ``manifests_dir``; with a cluster, apply them."""
    name = request.name
    resources = km.resources(request.sizing, request.recommended)
    version, model = request.version, request.model
    spec = km.Spec(
        name=name,
        namespace=request.namespace,
        image=request.image.image,
        resources=resources,
        kind=request.kind,
        cpu_target=request.cpu_target,
        model_uri=f"models:/{model}/{version}" if model and version else None,
        version=version,
        image_digest=request.image.digest,
        commit=request.commit,
        pull_secret=request.pull_secret,
        progress_deadline_s=int(request.ready_timeout_s),
    )
    if request.strategy != "replace":
        return _render_progressive(request, spec, resources, trail)
    manifests = km.render(spec)
    problems = km.validate(manifests, version=request.kubernetes_version)
    path = request.manifests_dir / f"{name}.yaml"
    write_text_atomic(path, km.to_yaml(manifests))
    kinds = ", ".join(m["kind"] for m in manifests)
    reported: dict[str, Any] = {
        "image": request.image.pinned,
        "manifests": request.manifests_dir,
        "model": model or "",
        "version": version or "",
        "deployment_log": trail.log_path,
        "artifacts": (path,),
    }
    valid = CheckRecord(
        "manifests valid",
        not problems,
        "; ".join(problems[:5])
        if problems
        else f"{kinds} valid against the Kubernetes {request.kubernetes_version} schemas",
        details={"problems": problems, "resources": resources.source},
    )
    if problems:
        return DeployOutcome(
            "kubernetes", "failed", False, f"invalid manifests: {problems[0]}", (valid,), **reported
        )
    if request.cluster is None:
        summary = (
            f"rendered {kinds} for {name} ({resources.replicas} replicas, CPU {resources.cpu_request}/"
            f"{resources.cpu_limit}, memory {resources.memory_request}/{resources.memory_limit} from "
            f"{resources.source}) into {path}"
        )
        return DeployOutcome("kubernetes", "rendered", True, summary, (valid,), **reported)
    return _apply(request, manifests, trail, cluster=request.cluster, valid=valid, reported=reported)


def _render_progressive(
    request: KubernetesDeployRequest, spec: km.Spec, resources: km.Resources, trail: AuditTrail
) -> DeployOutcome:
    """One file of manifests per step (``NAME.canary-10.yaml``, ..., or ``NAME.shadow.yaml``)
    and the promotion (``NAME.yaml``: the stable objects with the new image), each
    validated. Applying them step by step with an analysis needs the versions' metrics
    from inside the cluster: that is a progressive-delivery controller's job (Flagger,
    Argo Rollouts, KServe itself), so with a cluster the rollout is refused here."""
    if request.cluster is not None:
        raise SettingError(
            "strategy",
            f"{request.strategy} on Kubernetes renders and validates the step manifests only; apply them with "
            "a progressive-delivery controller, or deploy without a kubeconfig to get them",
        )
    name = request.name
    if request.strategy == "shadow":
        stages = [("shadow", 0)]
    else:
        stages = [(f"canary-{p}", p) for p in request.steps if p < 100]
        if request.kind == "kserve":
            stages.append(("canary-100", 100))
    files: list[Path] = []
    problems: list[str] = []
    kinds: list[str] = []
    for label, percent in stages:
        manifests = km.render_progressive(
            spec, strategy=request.strategy, percent=percent, gateway=request.gateway
        )
        problems.extend(f"{label}: {p}" for p in km.validate(manifests, version=request.kubernetes_version))
        path = request.manifests_dir / f"{name}.{label}.yaml"
        write_text_atomic(path, km.to_yaml(manifests))
        files.append(path)
        kinds = kinds or [m["kind"] for m in manifests]
    if request.kind != "kserve":
        final = km.render(spec)
        problems.extend(f"promotion: {p}" for p in km.validate(final, version=request.kubernetes_version))
        path = request.manifests_dir / f"{name}.yaml"
        write_text_atomic(path, km.to_yaml(final))
        files.append(path)
    valid = CheckRecord(
        "manifests valid",
        not problems,
        "; ".join(problems[:5])
        if problems
        else f"{len(files)} sets of manifests ({', '.join(dict.fromkeys(kinds))}) valid against the Kubernetes "
        f"{request.kubernetes_version} schemas and the Gateway API/KServe fields rendered",
        details={"problems": problems, "resources": resources.source, "files": [str(f) for f in files]},
    )
    reported: dict[str, Any] = {
        "image": request.image.pinned,
        "manifests": request.manifests_dir,
        "model": request.model or "",
        "version": request.version or "",
        "deployment_log": trail.log_path,
        "artifacts": tuple(files),
        "strategy": request.strategy,
    }
    if problems:
        return DeployOutcome(
            "kubernetes", "failed", False, f"invalid manifests: {problems[0]}", (valid,), **reported
        )
    steps = ", ".join(label for label, _ in stages)
    summary = f"rendered the {request.strategy} of {name} ({steps}, then the promotion) into {request.manifests_dir}"
    return DeployOutcome("kubernetes", "rendered", True, summary, (valid,), **reported)


def _apply(
    request: KubernetesDeployRequest,
    manifests: list[dict[str, Any]],
    trail: AuditTrail,
    *,
    cluster: ClusterAccess,
    valid: CheckRecord,
    reported: Mapping[str, Any],
) -> DeployOutcome:
    from mlops_ci.deploy import kube_apply as ka

    name, namespace, version = request.name, request.namespace, request.version
    client = _connect(cluster)
    before = [ka.read(client, m) for m in manifests]
    for manifest in manifests:
        ka.apply(client, manifest)
    primary = manifests[0]
    rollout = ka.wait(client, primary, timeout_s=request.ready_timeout_s)
    details = {"namespace": namespace, "objects": [f"{m['kind']}/{name}" for m in manifests]}
    if rollout.state == "done":
        ka.record_history(client, name, namespace, manifests, version)
        message = f"{primary['kind']}/{name} in {namespace} rolled out: {rollout.message}"
        record = DeploymentRecord(
            "kubernetes",
            "deploy",
            "succeeded",
            model=request.model,
            version=version,
            image=request.image.pinned,
            image_digest=request.image.digest,
            endpoint=f"{name}.{namespace}.svc",
            message=message,
            context=trail.context,
            details=details,
        )
        trail.record(record)
        return DeployOutcome(
            "kubernetes",
            "deployed",
            True,
            message,
            (valid, CheckRecord("rollout", True, message)),
            endpoint=record.endpoint,
            deployment_id=record.id,
            **reported,
        )
    # Failed: put back what ran before.
    log.warning("rollout of %s failed (%s); restoring the previous objects", name, rollout.message)
    for manifest, previous in zip(manifests, before, strict=True):
        if previous is None:
            ka.delete(client, manifest)
        else:
            ka.apply(client, ka.clean(previous))
    restored = ka.wait(client, primary, timeout_s=request.ready_timeout_s) if before[0] is not None else None
    back = (
        "the previous version was restored"
        if restored is not None and restored.state == "done"
        else (
            "the new objects were removed"
            if restored is None
            else f"the restore did not finish: {restored.message}"
        )
    )
    message = f"rollout of {primary['kind']}/{name} failed ({rollout.message}); {back}"
    record = DeploymentRecord(
        "kubernetes",
        "deploy",
        "rolled-back",
        model=request.model,
        version=version,
        image=request.image.pinned,
        image_digest=request.image.digest,
        message=message,
        context=trail.context,
        details=details,
    )
    trail.record(record)
    return DeployOutcome(
        "kubernetes",
        "rolled-back",
        False,
        message,
        (valid, CheckRecord("rollout", False, message)),
        deployment_id=record.id,
        **reported,
    )


def rollback_kubernetes(request: KubernetesRollbackRequest, trail: AuditTrail) -> DeployOutcome:
    """Apply the previous manifests mlops-ci recorded in the cluster; refused when there are none."""
    from mlops_ci.deploy import kube_apply as ka

    name, namespace = request.name, request.namespace
    client = _connect(request.cluster)
    history = ka.read_history(client, name, namespace)
    if not history.get("previous"):
        message = f"{name} in {namespace} has no previous deployment recorded by mlops-ci to roll back to"
        return DeployOutcome(
            "kubernetes", "refused", False, message, (CheckRecord("rollback", False, message),)
        )
    manifests = json.loads(history["previous"])
    for manifest in manifests:
        ka.apply(client, manifest)
    rollout = ka.wait(client, manifests[0], timeout_s=request.ready_timeout_s)
    version = history.get("previous-version") or None
    ok = rollout.state == "done"
    if ok:
        ka.record_history(client, name, namespace, manifests, version)
    message = (
        f"rolled {name} back to {'v' + version if version else 'the previous manifests'}: {rollout.message}"
    )
    record = DeploymentRecord(
        "kubernetes",
        "rollback",
        "succeeded" if ok else "failed",
        model=request.model,
        version=version,
        message=message,
        context=trail.context,
    )
    trail.record(record)
    write_text_atomic(request.manifests_dir / f"{name}.rollback.yaml", km.to_yaml(manifests))
    return DeployOutcome(
        "kubernetes",
        "rolled-back" if ok else "failed",
        ok,
        message,
        (CheckRecord("rollback", ok, message),),
        version=version or "",
        deployment_id=record.id,
        manifests=request.manifests_dir,
    )


def _connect(cluster: ClusterAccess):
    from mlops_ci.deploy import kube_apply as ka

    return ka.connect(cluster.kubeconfig, cluster.context, budget_s=cluster.retry_budget_s)
