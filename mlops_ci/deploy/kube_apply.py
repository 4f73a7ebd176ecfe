"""Applying manifests to a cluster with the Kubernetes Python client: server-side apply,
wait for the rollout, and roll back to what ran before when the rollout fails.

Rollback does not depend on the Deployment controller's ReplicaSet history (which a
KServe InferenceService does not have): before applying, the current objects are read;
on failure each one is applied again as it was (re-applying a Deployment's previous pod
template rolls the pods back), and objects that did not exist before are deleted. The
manifests of the last two successful deployments are kept in a ConfigMap
``<name>-mlops-ci-history``, which is what a rollback applies.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlops_ci.deploy.errors import SettingError
from mlops_ci.errors import ExternalServiceError, UsageError
from mlops_ci.retry import RetriesExhausted, RetryableError, RetryPolicy, call_with_retries

log = logging.getLogger(__name__)

FIELD_MANAGER = "mlops-ci"
HISTORY_SUFFIX = "-mlops-ci-history"
# Server-owned fields that must not be sent back when an object is restored.
_SERVER_FIELDS = ("uid", "resourceVersion", "generation", "creationTimestamp", "managedFields", "selfLink")


@dataclass(frozen=True)
class Cluster:
    """A dynamic client and the retry budget every call of this deployment shares."""

    client: Any
    budget_s: float = 60.0


@dataclass(frozen=True)
class Rollout:
    """``state``: done, failed or progressing."""

    state: str
    message: str


def connect(kubeconfig: Path, context: str | None, *, budget_s: float = 60.0) -> Cluster:
    """A dynamic client for ``kubeconfig`` (its current context, or ``context``)."""
    try:
        from kubernetes import config, dynamic
    except ImportError:
        raise UsageError(
            "applying to Kubernetes needs the kubernetes client: pip install 'kubernetes>=30,<37' (part of mlops-ci's dependencies)"
        ) from None
    if not kubeconfig.is_file():
        raise SettingError("kubeconfig", f"{kubeconfig} does not exist")
    try:
        api_client = config.new_client_from_config(config_file=str(kubeconfig), context=context)
    except config.ConfigException as exc:
        raise UsageError(f"kubeconfig {kubeconfig} cannot be used: {str(exc)[:200]}") from None
    return Cluster(
        _call("reach the Kubernetes API", lambda: dynamic.DynamicClient(api_client), budget_s=budget_s),
        budget_s,
    )


def _call(what: str, attempt: Callable[[], Any], *, budget_s: float = 60.0) -> Any:
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import HTTPError

    def once():
        try:
            return attempt()
        except ApiException as exc:
            if exc.status in (429,) or (exc.status or 0) >= 500:
                raise RetryableError(f"HTTP {exc.status}") from None
            raise
        except (HTTPError, OSError) as exc:
            raise RetryableError(type(exc).__name__) from None

    try:
        return call_with_retries(once, RetryPolicy(budget_s=budget_s), what=f"Kubernetes: {what}")
    except RetriesExhausted as exc:
        raise ExternalServiceError(
            f"the Kubernetes API did not let us {what} after {exc.attempts} tries ({exc.last}); check the "
            "cluster and the kubeconfig"
        ) from None


def _resource(cluster: Cluster, manifest: dict[str, Any]):
    from kubernetes.dynamic.exceptions import ResourceNotFoundError

    try:
        return cluster.client.resources.get(api_version=manifest["apiVersion"], kind=manifest["kind"])
    except ResourceNotFoundError:
        hint = (
            " (install KServe, or deploy a plain Deployment instead)"
            if manifest["kind"] == "InferenceService"
            else ""
        )
        raise UsageError(
            f"the cluster does not know {manifest['apiVersion']} {manifest['kind']}{hint}"
        ) from None


def _refused(exc, what: str) -> ExternalServiceError:
    reason = ""
    with contextlib.suppress(TypeError, ValueError):
        reason = json.loads(exc.body).get("message", "")
    return ExternalServiceError(f"the Kubernetes API refused to {what} (HTTP {exc.status}: {reason[:200]})")


def read(cluster: Cluster, manifest: dict[str, Any]) -> dict[str, Any] | None:
    from kubernetes.client.exceptions import ApiException

    meta = manifest["metadata"]
    resource = _resource(cluster, manifest)
    try:
        found = _call(
            f"read {manifest['kind']}/{meta['name']}",
            lambda: resource.get(name=meta["name"], namespace=meta.get("namespace")),
            budget_s=cluster.budget_s,
        )
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise _refused(exc, f"read {manifest['kind']}/{meta['name']}") from None
    return found.to_dict()


def clean(found: dict[str, Any]) -> dict[str, Any]:
    """An object as read from the server, made fit to apply again: no status, no
    server-owned metadata."""
    obj = {key: value for key, value in found.items() if key != "status"}
    meta = {key: value for key, value in (obj.get("metadata") or {}).items() if key not in _SERVER_FIELDS}
    annotations = {
        k: v
        for k, v in (meta.get("annotations") or {}).items()
        if k != "kubectl.kubernetes.io/last-applied-configuration"
    }
    if annotations:
        meta["annotations"] = annotations
    else:
        meta.pop("annotations", None)
    obj["metadata"] = meta
    return obj


def apply(cluster: Cluster, manifest: dict[str, Any]) -> dict[str, Any]:
    """Server-side apply, owning every field we send (force: this tool is the owner)."""
    from kubernetes.client.exceptions import ApiException

    meta = manifest["metadata"]
    resource = _resource(cluster, manifest)
    what = f"apply {manifest['kind']}/{meta['name']}"
    try:
        return _call(
            what,
            lambda: resource.server_side_apply(
                body=manifest,
                name=meta["name"],
                namespace=meta.get("namespace"),
                field_manager=FIELD_MANAGER,
                force_conflicts=True,
            ),
        ).to_dict()
    except ApiException as exc:
        raise _refused(exc, what) from None


def delete(cluster: Cluster, manifest: dict[str, Any]) -> None:
    from kubernetes.client.exceptions import ApiException

    meta = manifest["metadata"]
    resource = _resource(cluster, manifest)
    try:
        _call(
            f"delete {manifest['kind']}/{meta['name']}",
            lambda: resource.delete(name=meta["name"], namespace=meta.get("namespace")),
            budget_s=cluster.budget_s,
        )
    except ApiException as exc:
        if exc.status != 404:
            raise _refused(exc, f"delete {manifest['kind']}/{meta['name']}") from None


def rollout_state(obj: dict[str, Any]) -> Rollout:
    """Where a rollout stands, from the object's status alone (what `kubectl rollout
    status` checks for a Deployment; the Ready condition for an InferenceService)."""
    kind = obj.get("kind")
    meta, spec, status = obj.get("metadata") or {}, obj.get("spec") or {}, obj.get("status") or {}
    generation = meta.get("generation") or 0
    if (status.get("observedGeneration") or 0) < generation:
        return Rollout("progressing", "waiting for the controller to see the new version")
    conditions = {c.get("type"): c for c in status.get("conditions") or []}
    if kind == "Deployment":
        progressing = conditions.get("Progressing") or {}
        if progressing.get("reason") == "ProgressDeadlineExceeded":
            return Rollout(
                "failed", f"the rollout exceeded its progress deadline: {progressing.get('message', '')}"
            )
        wanted = spec.get("replicas", 1)
        updated = status.get("updatedReplicas") or 0
        available = status.get("availableReplicas") or 0
        total = status.get("replicas") or 0
        if updated < wanted:
            return Rollout("progressing", f"{updated} of {wanted} replicas updated")
        if total > updated:
            return Rollout("progressing", f"{total - updated} old replicas pending termination")
        if available < updated:
            return Rollout("progressing", f"{available} of {updated} updated replicas available")
        return Rollout("done", f"{available} of {wanted} replicas updated and available")
    if kind == "InferenceService":
        ready = conditions.get("Ready") or {}
        if ready.get("status") == "True":
            return Rollout("done", f"ready at {status.get('url') or 'its URL'}")
        failed = [
            c
            for c in conditions.values()
            if c.get("status") == "False"
            and c.get("reason")
            in ("RevisionFailed", "ProgressDeadlineExceeded", "ContainerMissing", "InvalidSpec")
        ]
        if failed:
            return Rollout(
                "failed",
                f"{failed[0].get('type')}: {failed[0].get('reason')}: {failed[0].get('message', '')}",
            )
        return Rollout("progressing", ready.get("message") or "not ready yet")
    return Rollout("done", "applied")


def wait(
    cluster: Cluster,
    manifest: dict[str, Any],
    *,
    timeout_s: float,
    poll_s: float = 2.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Rollout:
    deadline = clock() + timeout_s
    last = Rollout("progressing", "not read yet")
    while True:
        found = read(cluster, manifest)
        last = rollout_state(found) if found is not None else Rollout("failed", "the object disappeared")
        if last.state != "progressing":
            return last
        if clock() >= deadline:
            return Rollout("failed", f"not done after {timeout_s:.0f} s: {last.message}")
        log.info("rollout of %s/%s: %s", manifest["kind"], manifest["metadata"]["name"], last.message)
        sleep(poll_s)


# --- history ------------------------------------------------------------------------------


def history_manifest(name: str, namespace: str, data: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": name + HISTORY_SUFFIX,
            "namespace": namespace,
            "labels": {"app.kubernetes.io/name": name, "app.kubernetes.io/managed-by": FIELD_MANAGER},
        },
        "data": data,
    }


def read_history(cluster: Cluster, name: str, namespace: str) -> dict[str, str]:
    found = read(cluster, history_manifest(name, namespace, {}))
    return dict((found or {}).get("data") or {})


def record_history(
    cluster: Cluster, name: str, namespace: str, manifests: list[dict[str, Any]], version: str | None
) -> None:
    """Keep these manifests as ``current`` and the ones before as ``previous``."""
    history = read_history(cluster, name, namespace)
    data = {"current": json.dumps(manifests, sort_keys=True), "current-version": version or ""}
    if history.get("current"):
        data["previous"] = history["current"]
        data["previous-version"] = history.get("current-version", "")
    apply(cluster, history_manifest(name, namespace, data))
