"""`mlops-ci deploy --target kubernetes`: render, validate, and (with a kubeconfig) apply,
wait for the rollout, roll back when it fails."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from mlops_ci.deploy import kube_manifests as km
from mlops_ci.deploy.audit import DeploymentRecord, context_of
from mlops_ci.errors import UsageError
from mlops_ci.result import Check, StepResult, read_step_result, write_text_atomic

if TYPE_CHECKING:
    from mlops_ci.steps.base import StepContext

log = logging.getLogger(__name__)


def deploy_kubernetes(ctx: StepContext) -> StepResult:
    from mlops_ci.steps import deploy as step

    opts = ctx.options
    name, model = step.service_name(
        ctx, missing="no name for the Kubernetes objects: pass --name or set model-name"
    )
    folder = ctx.out_dir / "kubernetes"
    if opts.rollback:
        return _rollback(ctx, name, model, folder)
    image, digest = step.image_and_digest(ctx)
    version = step.optional_version(ctx)
    profile_path = ctx.out_dir / "profile.json"
    profile = read_step_result(profile_path).outputs if profile_path.is_file() else None
    resources = km.resources(dict(opts), profile)
    spec = km.Spec(
        name=name,
        namespace=opts.namespace,
        image=image,
        resources=resources,
        kind=opts.kind,
        cpu_target=opts.cpu_target,
        model_uri=f"models:/{model}/{version}" if model and version else None,
        version=version,
        image_digest=digest,
        commit=ctx.run_context.commit,
        pull_secret=opts.image_pull_secret,
        progress_deadline_s=int(opts.ready_timeout),
    )
    manifests = km.render(spec)
    problems = km.validate(manifests, version=opts.kubernetes_version)
    path = folder / f"{name}.yaml"
    write_text_atomic(path, km.to_yaml(manifests))
    kinds = ", ".join(m["kind"] for m in manifests)
    outputs = {
        "target": "kubernetes",
        "image": km.image_ref(image, digest),
        "manifests": str(folder),
        "model-name": model or "",
        "model-version": version or "",
        "deployment-log": str(step.log_path(ctx)),
    }
    valid = Check(
        "manifests valid",
        "failed" if problems else "passed",
        message="; ".join(problems[:5])
        if problems
        else f"{kinds} valid against the Kubernetes {opts.kubernetes_version} schemas",
        details={"kind": "deploy", "problems": problems, "resources": resources.source},
    )
    if problems:
        return StepResult(
            "deploy",
            "failed",
            f"invalid manifests: {problems[0]}",
            {**outputs, "action": "failed"},
            [valid],
            [str(path)],
        )
    if opts.kubeconfig is None:
        summary = (
            f"rendered {kinds} for {name} ({resources.replicas} replicas, CPU {resources.cpu_request}/"
            f"{resources.cpu_limit}, memory {resources.memory_request}/{resources.memory_limit} from "
            f"{resources.source}) into {path}; pass --kubeconfig to apply"
        )
        return StepResult(
            "deploy", "passed", summary, {**outputs, "action": "rendered"}, [valid], [str(path)]
        )
    return _apply(ctx, name, model, version, manifests, outputs, valid, path, digest)


def _apply(ctx, name, model, version, manifests, outputs, valid, path, digest) -> StepResult:
    from mlops_ci.deploy import kube_apply as ka
    from mlops_ci.steps import deploy as step

    opts = ctx.options
    client = ka.connect(opts.kubeconfig, opts.context, budget_s=opts.retry_timeout)
    before = [ka.read(client, m) for m in manifests]
    for manifest in manifests:
        ka.apply(client, manifest)
    primary = manifests[0]
    rollout = ka.wait(client, primary, timeout_s=opts.ready_timeout)
    details = {"namespace": opts.namespace, "objects": [f"{m['kind']}/{name}" for m in manifests]}
    if rollout.state == "done":
        ka.record_history(client, name, opts.namespace, manifests, version)
        message = f"{primary['kind']}/{name} in {opts.namespace} rolled out: {rollout.message}"
        record = DeploymentRecord(
            "kubernetes",
            "deploy",
            "succeeded",
            model=model,
            version=version,
            image=outputs["image"],
            image_digest=digest,
            endpoint=f"{name}.{opts.namespace}.svc",
            message=message,
            context=context_of(ctx.run_context),
            details=details,
        )
        step.audit_deployment(ctx, record)
        checks = [valid, Check("rollout", "passed", message=message, details={"kind": "deploy"})]
        return StepResult(
            "deploy",
            "passed",
            message,
            {**outputs, "action": "deployed", "endpoint": record.endpoint, "deployment-id": record.id},
            checks,
            [str(path)],
        )
    # Failed: put back what ran before.
    log.warning("rollout of %s failed (%s); restoring the previous objects", name, rollout.message)
    for manifest, previous in zip(manifests, before, strict=True):
        if previous is None:
            ka.delete(client, manifest)
        else:
            ka.apply(client, ka.clean(previous))
    restored = ka.wait(client, primary, timeout_s=opts.ready_timeout) if before[0] is not None else None
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
        model=model,
        version=version,
        image=outputs["image"],
        image_digest=digest,
        message=message,
        context=context_of(ctx.run_context),
        details=details,
    )
    step.audit_deployment(ctx, record)
    checks = [valid, Check("rollout", "failed", message=message, details={"kind": "deploy"})]
    return StepResult(
        "deploy",
        "failed",
        message,
        {**outputs, "action": "rolled-back", "deployment-id": record.id},
        checks,
        [str(path)],
    )


def _rollback(ctx, name, model, folder) -> StepResult:
    import json

    from mlops_ci.deploy import kube_apply as ka
    from mlops_ci.steps import deploy as step

    opts = ctx.options
    if opts.kubeconfig is None:
        raise UsageError("--rollback on kubernetes needs --kubeconfig (or KUBECONFIG)")
    client = ka.connect(opts.kubeconfig, opts.context, budget_s=opts.retry_timeout)
    history = ka.read_history(client, name, opts.namespace)
    if not history.get("previous"):
        message = (
            f"{name} in {opts.namespace} has no previous deployment recorded by mlops-ci to roll back to"
        )
        return StepResult(
            "deploy",
            "failed",
            message,
            {"target": "kubernetes", "action": "refused"},
            [Check("rollback", "failed", message=message, details={"kind": "deploy"})],
        )
    manifests = json.loads(history["previous"])
    for manifest in manifests:
        ka.apply(client, manifest)
    rollout = ka.wait(client, manifests[0], timeout_s=opts.ready_timeout)
    version = history.get("previous-version") or None
    ok = rollout.state == "done"
    if ok:
        ka.record_history(client, name, opts.namespace, manifests, version)
    message = (
        f"rolled {name} back to {'v' + version if version else 'the previous manifests'}: {rollout.message}"
    )
    record = DeploymentRecord(
        "kubernetes",
        "rollback",
        "succeeded" if ok else "failed",
        model=model,
        version=version,
        message=message,
        context=context_of(ctx.run_context),
    )
    step.audit_deployment(ctx, record)
    write_text_atomic(folder / f"{name}.rollback.yaml", km.to_yaml(manifests))
    return StepResult(
        "deploy",
        "passed" if ok else "failed",
        message,
        {
            "target": "kubernetes",
            "action": "rolled-back" if ok else "failed",
            "model-version": version or "",
            "deployment-id": record.id,
            "manifests": str(folder),
        },
        [Check("rollback", "passed" if ok else "failed", message=message, details={"kind": "deploy"})],
    )
