"""Blue/green deployment of a serving image on one Docker host.

The service ``NAME`` lives on the user-defined network ``mlops-ci-NAME``: clients on that
network (a reverse proxy, other services) call ``http://NAME:8080``, the network alias
held by exactly one container, the *active* one. Each version runs as ``NAME-blue`` or
``NAME-green`` (labels ``io.mlops-ci.service``, ``.image``, ``.model-version``), its port
8080 published on an ephemeral port of the bind address for checks and direct access.

A deployment starts the new version as ``NAME-candidate``, waits until it is ready,
smoke-tests it (a V2 inference with the model's input example, read from the image's own
``/model/model-settings.json``, or the request given), then moves the alias: the new
container takes the inactive colour's name and joins the network as ``NAME`` before the
old one leaves it, so no request finds nobody. The old container is stopped (SIGTERM: it drains in-flight requests) and kept,
stopped, for a rollback. If the new one is not ready or fails the smoke test, it is
removed and the old one never stopped serving: exit 1.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import tarfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlops_ci.deploy.audit import AuditTrail, DeploymentRecord
from mlops_ci.deploy.outcome import CheckRecord, DeployOutcome
from mlops_ci.deploy.service import ImageRef
from mlops_ci.errors import ExternalServiceError, UsageError

log = logging.getLogger(__name__)

SERVING_PORT = 8080
LABEL = "io.mlops-ci"
COLORS = ("blue", "green")


@dataclass(frozen=True)
class DockerService:
    """The service on a Docker host, as both a deployment and a rollback see it."""

    name: str  # a DNS label: the network alias and the containers' prefix
    model: str | None = None
    host: str | None = None  # the engine; None: DOCKER_HOST from ``env``
    env: Mapping[str, str] = field(default_factory=dict, repr=False)  # may hold tokens: never shown
    bind: str = "127.0.0.1"
    ready_timeout_s: float = 120.0
    smoke_request: Mapping[str, Any] | None = None  # None: the model's input example


@dataclass(frozen=True)
class DockerDeployRequest:
    """Run ``image`` as the new version of ``service``."""

    service: DockerService
    image: ImageRef
    version: str | None = None  # used when the image carries no model-version label
    request_log_dir: Path | None = None  # mounted for the sampled request log


@dataclass(frozen=True)
class Slot:
    color: str
    container: Any  # docker.models.containers.Container, or None

    @property
    def running(self) -> bool:
        return self.container is not None and self.container.status == "running"


def connect(host: str | None, env: Mapping[str, str]):
    """The Docker engine at ``host`` (else DOCKER_HOST); exit 3 when none answers."""
    from mlops_ci.container.engine import DockerEngine

    settings = dict(env)
    if host:
        settings["DOCKER_HOST"] = host
    where = settings.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
    try:
        return DockerEngine.connect(settings)
    except Exception as exc:  # noqa: BLE001 - any failure to reach the engine is the same to the user
        raise ExternalServiceError(
            f"no Docker engine answers at {where} ({type(exc).__name__}); start it, or point the "
            "deployment (or DOCKER_HOST) at one that runs"
        ) from None


def slots(client, name: str) -> dict[str, Slot]:
    """The blue and green containers of ``name`` (by container name: a candidate is renamed
    into its slot only once it passed its checks)."""
    found = {color: Slot(color, None) for color in COLORS}
    for container in client.containers.list(all=True, filters={"label": f"{LABEL}.service={name}"}):
        for color in COLORS:
            if container.name == f"{name}-{color}":
                found[color] = Slot(color, container)
    return found


def active_color(client, name: str, network) -> str | None:
    """The colour whose container holds the alias ``name`` on the service network."""
    network.reload()
    for container in network.containers:
        container.reload()
        settings = (container.attrs.get("NetworkSettings") or {}).get("Networks", {}).get(network.name) or {}
        if name in (settings.get("Aliases") or []) and container.labels.get(f"{LABEL}.service") == name:
            return next((c for c in COLORS if container.name == f"{name}-{c}"), None)
    return None


def ensure_network(client, name: str):
    import docker

    network_name = f"mlops-ci-{name}"
    try:
        return client.networks.get(network_name)
    except docker.errors.NotFound:
        return client.networks.create(network_name, driver="bridge", labels={f"{LABEL}.service": name})


def host_port(container) -> int | None:
    container.reload()
    bindings = (container.attrs.get("NetworkSettings", {}).get("Ports") or {}).get(f"{SERVING_PORT}/tcp")
    return int(bindings[0]["HostPort"]) if bindings else None


def wait_ready(container, url: str, timeout_s: float) -> str | None:
    """None when ``/v2/health/ready`` answered 200 in time; else what went wrong."""
    import requests

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        container.reload()
        if container.status not in ("created", "running", "restarting"):
            tail = container.logs(tail=10).decode("utf-8", "replace").strip().splitlines()[-3:]
            return (
                f"the container exited ({container.attrs['State'].get('ExitCode')}): {' | '.join(tail)[:300]}"
            )
        try:
            if requests.get(url + "/v2/health/ready", timeout=2).status_code == 200:
                return None
        except requests.RequestException:
            pass
        time.sleep(0.2)
    return f"not ready after {timeout_s:.0f} s"


def smoke_request(container, override: dict | None) -> tuple[str, dict]:
    """(model name, V2 request): ``override``, else the input example of the
    image's own model-settings.json."""
    raw, _ = container.get_archive("/model/model-settings.json")
    with tarfile.open(fileobj=io.BytesIO(b"".join(raw))) as archive:
        member = archive.getmembers()[0]
        settings = json.loads(archive.extractfile(member).read())
    name = settings["name"]
    if override is not None:
        return name, override
    example = settings.get("input_example") or {}
    if not example:
        return name, {}
    rows = len(next(iter(example.values())))
    return name, {
        "inputs": [
            {"name": c["name"], "shape": [rows, 1], "datatype": c["datatype"], "data": example[c["name"]]}
            for c in settings["columns"]
        ]
    }


def smoke_test(container, url: str, override: dict | None) -> str | None:
    """None when the model answers a V2 inference (and /metrics answers); else why not."""
    import requests

    name, request = smoke_request(container, override)
    problems = []
    if request:
        answer = requests.post(f"{url}/v2/models/{name}/infer", json=request, timeout=30)
        if answer.status_code != 200:
            problems.append(f"V2 infer answered {answer.status_code}: {answer.text[:200]}")
        elif not answer.json().get("outputs"):
            problems.append("V2 infer answered without outputs")
    else:
        metadata = requests.get(f"{url}/v2/models/{name}", timeout=10)
        if metadata.status_code != 200:
            problems.append(f"model metadata answered {metadata.status_code}")
    if requests.get(f"{url}/metrics", timeout=10).status_code != 200:
        problems.append("/metrics does not answer")
    return "; ".join(problems) or None


@dataclass(frozen=True)
class Prepared:
    """What a deployment found on the host before it starts the new version."""

    engine: Any
    client: Any
    image: str
    digest: str
    network: Any
    found: Mapping[str, Slot]
    current: str | None  # the active colour
    version: str | None
    model: str | None

    @property
    def new_color(self) -> str:
        return "green" if self.current == "blue" else "blue"

    @property
    def old(self) -> Slot | None:
        return self.found[self.current] if self.current else None


def prepare(request: DockerDeployRequest) -> Prepared:
    """The engine, the image (which must exist there), the network and the slots."""
    import docker

    service = request.service
    name, image = service.name, request.image.image
    engine = connect(service.host, service.env)
    client = engine.client
    try:
        found_image = client.images.get(image)
    except docker.errors.ImageNotFound:
        raise UsageError(
            f"image {image} does not exist on {engine.describe()}; build it (mlops-ci package) or pull it"
        ) from None
    labels = found_image.labels or {}
    repo_digests = found_image.attrs.get("RepoDigests") or []
    digest = request.image.digest or (repo_digests[0].split("@", 1)[1] if repo_digests else found_image.id)
    network = ensure_network(client, name)
    return Prepared(
        engine=engine,
        client=client,
        image=image,
        digest=digest,
        network=network,
        found=slots(client, name),
        current=active_color(client, name, network),
        version=labels.get("io.mlops-ci.model.version") or request.version,
        model=service.model or labels.get("io.mlops-ci.model.name"),
    )


def start_candidate(prepared: Prepared, request: DockerDeployRequest) -> tuple[Any, str, str | None]:
    """The new version started as ``NAME-candidate``: (container, its host URL, the
    problem when it is not ready or fails the smoke test, else None)."""
    service = request.service
    _remove_candidate(prepared.client, service.name)  # left behind by a job that crashed
    new = _start(
        prepared.client,
        service.name,
        prepared.image,
        prepared.version,
        bind=service.bind,
        request_log_dir=request.request_log_dir,
    )
    url = f"http://{service.bind}:{host_port(new)}"
    problem = wait_ready(new, url, service.ready_timeout_s) or smoke_test(new, url, service.smoke_request)
    return new, url, problem


def reported(prepared: Prepared, trail: AuditTrail) -> dict[str, Any]:
    return {
        "image": prepared.image,
        "model": prepared.model or "",
        "version": prepared.version or "",
        "deployment_log": trail.log_path,
    }


def candidate_failed(
    prepared: Prepared, service: DockerService, new, problem: str, trail: AuditTrail, *, check: str
) -> DeployOutcome:
    """The new container is removed; the old one never stopped serving."""
    name, current = service.name, prepared.current
    logs = new.logs(tail=20).decode("utf-8", "replace")
    new.remove(force=True)
    kept = f"{name}-{current} keeps serving" if current else "nothing was serving before"
    message = f"the new container of {prepared.image} failed ({problem}); it was removed and {kept}"
    record = DeploymentRecord(
        "docker",
        "deploy",
        "failed",
        model=prepared.model,
        version=prepared.version,
        image=prepared.image,
        image_digest=prepared.digest,
        previous_version=_version_of(prepared.old),
        message=message,
        context=trail.context,
        details={"host": prepared.engine.host, "logs": logs[-2000:]},
    )
    trail.record(record)
    return DeployOutcome(
        "docker",
        "failed",
        False,
        message,
        (CheckRecord(check, False, message),),
        deployment_id=record.id,
        **reported(prepared, trail),
    )


def switch(prepared: Prepared, service: DockerService, new) -> str:
    """Move the service to ``new``: it takes the inactive slot (the version before the
    previous one goes), restarts with the engine from now on, holds the alias, and the
    proxy (when there is one) sends it all traffic; then the old one drains and stops.
    Returns what happened to the old one, for the message."""
    import docker

    name, network, found = service.name, prepared.network, prepared.found
    new_color = prepared.new_color
    if found[new_color].container is not None:
        found[new_color].container.remove(force=True)
    new.rename(f"{name}-{new_color}")
    new.update(restart_policy={"Name": "unless-stopped"})
    new.reload()
    network.connect(new, aliases=[name])
    # Every other container of the service leaves the network (a stopped one that crashed
    # would otherwise hold the alias again when it restarts); the old one then drains.
    for slot in found.values():
        if slot.container is not None and slot.container.id != new.id:
            try:
                network.disconnect(slot.container, force=True)
            except docker.errors.APIError as exc:
                log.debug("%s was not on %s: %s", slot.container.name, network.name, exc)
    route_proxy_to(prepared.client, service, new)
    old = prepared.old
    if old is not None and old.container is not None:
        old.container.stop(timeout=35)
        return f"; {old.container.name} stopped, kept for a rollback"
    return ""


def route_proxy_to(client, service: DockerService, container) -> None:
    """When the service has a canary proxy, it sends all traffic to ``container``."""
    from mlops_ci.deploy import proxy as px

    found = px.find_proxy(client, service.name)
    if found is None:
        return
    found.reload()
    if found.status != "running":
        found.start()
    address = px.address_on(container, px.routes_network(client, service.name))
    routes = px.Routes((px.Backend(address, 100),), summary=f"all traffic to {container.name}")
    px.apply_routes(found, service.name, routes, bind=service.bind)


def deploy_docker(request: DockerDeployRequest, trail: AuditTrail) -> DeployOutcome:
    """Start the new version beside the serving one, check it, then move the service alias
    to it; on failure the new container is removed and the old one keeps serving."""
    service = request.service
    prepared = prepare(request)
    new, url, problem = start_candidate(prepared, request)
    if problem:
        return candidate_failed(prepared, service, new, problem, trail, check="blue/green")
    return promoted(prepared, service, new, url, trail, checks=())


def promoted(
    prepared: Prepared,
    service: DockerService,
    new,
    url: str,
    trail: AuditTrail,
    *,
    checks: tuple[CheckRecord, ...],
    details: Mapping[str, Any] | None = None,
    endpoint_extra: str = "",
) -> DeployOutcome:
    """Switch to ``new`` (checked), record it, and report it with ``checks`` before the
    blue/green one."""
    name, image, old = service.name, prepared.image, prepared.old
    stopped = switch(prepared, service, new)
    endpoint = f"http://{name}:{SERVING_PORT} on network {prepared.network.name}; {url} on the host"
    message = f"{image} serves as {name} ({new.name})" + stopped
    record = DeploymentRecord(
        "docker",
        "deploy",
        "succeeded",
        model=prepared.model,
        version=prepared.version,
        image=image,
        image_digest=prepared.digest,
        previous_version=_version_of(old),
        endpoint=url,
        message=message,
        context=trail.context,
        details={"host": prepared.engine.host, "container": new.name, "network": prepared.network.name}
        | dict(details or {}),
    )
    trail.record(record)
    return DeployOutcome(
        "docker",
        "deployed",
        True,
        message,
        (*checks, CheckRecord("blue/green", True, message)),
        endpoint=endpoint + endpoint_extra,
        deployment_id=record.id,
        previous_version=_version_of(old) or "",
        **reported(prepared, trail),
    )


def rollback_docker(service: DockerService, trail: AuditTrail) -> DeployOutcome:
    """The stopped previous container serves again (once ready and smoke-tested) and the
    active one stops; refused when there is no previous container."""
    name = service.name
    client = connect(service.host, service.env).client
    network = ensure_network(client, name)
    found = slots(client, name)
    current = active_color(client, name, network)
    if current is None:
        return _refused(f"{name} is not serving on this Docker host; nothing to roll back")
    other = "green" if current == "blue" else "blue"
    previous = found[other].container
    if previous is None:
        return _refused(f"{name} has no previous container to roll back to")
    previous.start()
    url = f"http://{service.bind}:{host_port(previous)}"
    problem = wait_ready(previous, url, service.ready_timeout_s) or smoke_test(
        previous, url, service.smoke_request
    )
    version = _version_of(found[other])
    if problem:
        previous.stop(timeout=10)
        message = f"the previous container {previous.name} did not come back ({problem}); {name}-{current} keeps serving"
        record = DeploymentRecord(
            "docker",
            "rollback",
            "failed",
            model=service.model,
            version=version,
            message=message,
            context=trail.context,
        )
        trail.record(record)
        return DeployOutcome(
            "docker",
            "failed",
            False,
            message,
            (CheckRecord("rollback", False, message),),
            deployment_id=record.id,
        )
    network.connect(previous, aliases=[name])
    route_proxy_to(client, service, previous)
    active = found[current].container
    network.disconnect(active)
    active.stop(timeout=35)
    message = f"rolled back: {previous.name} serves as {name} again; {active.name} stopped"
    record = DeploymentRecord(
        "docker",
        "rollback",
        "succeeded",
        model=service.model,
        version=version,
        endpoint=url,
        previous_version=_version_of(found[current]),
        message=message,
        context=trail.context,
    )
    trail.record(record)
    return DeployOutcome(
        "docker",
        "rolled-back",
        True,
        message,
        (CheckRecord("rollback", True, message),),
        version=version or "",
        endpoint=url,
        deployment_id=record.id,
    )


def _refused(message: str) -> DeployOutcome:
    return DeployOutcome("docker", "refused", False, message, (CheckRecord("rollback", False, message),))


def _remove_candidate(client, name: str, role: str = "candidate") -> None:
    import docker

    with contextlib.suppress(docker.errors.NotFound):
        client.containers.get(f"{name}-{role}").remove(force=True)


def _start(
    client,
    name: str,
    image: str,
    version: str | None,
    *,
    bind: str,
    request_log_dir: Path | None,
    role: str = "candidate",
):
    """The candidate (or a canary's baseline: ``role``), without a restart policy (a crash
    must show, not be retried)."""
    import docker

    volumes = {}
    environment = {}
    if request_log_dir is not None:
        request_log_dir.mkdir(parents=True, exist_ok=True)
        volumes[str(request_log_dir.resolve())] = {"bind": "/var/log/mlops-ci", "mode": "rw"}
        environment["MLOPS_CI_SERVE_REQUEST_LOG"] = "/var/log/mlops-ci/requests.jsonl"
    try:
        return client.containers.run(
            image,
            name=f"{name}-{role}",
            detach=True,
            labels={
                f"{LABEL}.service": name,
                f"{LABEL}.image": image,
                f"{LABEL}.model-version": version or "",
            },
            ports={f"{SERVING_PORT}/tcp": (bind, None)},
            environment=environment,
            volumes=volumes,
            read_only=True,
            tmpfs={"/tmp": "rw,size=64m"},
            security_opt=["no-new-privileges"],
            cap_drop=["ALL"],
        )
    except docker.errors.APIError as exc:
        raise ExternalServiceError(
            f"Docker could not start {image}: {str(exc.explanation or exc)[:300]}"
        ) from None


def _version_of(slot: Slot | None) -> str | None:
    if slot is None or slot.container is None:
        return None
    return slot.container.labels.get(f"{LABEL}.model-version") or None
