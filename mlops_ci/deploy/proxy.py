"""The reverse proxy in front of a Docker service during progressive delivery: nginx, in an
image built ``FROM`` the configured Debian-based base image with ``apt-get install nginx``
(Debian's package: the ``upstream`` weights and the ``mirror`` module are built in). No
image from Docker Hub is needed; the build needs the base image's apt mirror, or give a
ready proxy image instead.

The proxy ``NAME-proxy`` is the stable entry point of the service: its port 8080 is
published on the host (``proxy_port``, else an ephemeral port kept for the container's
life) and it is on the service network as ``NAME-proxy``. It reaches the versions over a
network of its own (``mlops-ci-NAME-routes``), by IP address, so moving the service alias
or renaming a container never changes a route. The routes live on a named volume
(``mlops-ci-NAME-proxy``); each change writes them, checks them with ``nginx -t``, sends
SIGHUP and waits until the proxy answers the new generation on ``/__mlops-ci/routes``.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import tarfile
import tempfile
import time
import uuid
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from mlops_ci.errors import ExternalServiceError

log = logging.getLogger(__name__)

PROXY_PORT = 8080
SERVING_PORT = 8080
LABEL = "io.mlops-ci"
ROUTES_DIR = "/etc/nginx/mlops-ci"


@dataclass(frozen=True)
class Backend:
    address: str  # an IP address on the routes network
    weight: int  # 1..100


@dataclass(frozen=True)
class Routes:
    """Where the proxy sends requests: ``servers`` by weight, and a copy of each to ``shadow``."""

    servers: tuple[Backend, ...]
    shadow: str | None = None
    summary: str = ""


def _template(name: str) -> str:
    return resources.files("mlops_ci.deploy").joinpath("templates", name).read_text(encoding="utf-8")


def _render(name: str, **values: object) -> str:
    import jinja2

    environment = jinja2.Environment(
        autoescape=False, keep_trailing_newline=True, undefined=jinja2.StrictUndefined
    )
    return environment.from_string(_template(name)).render(**values)


def render_routes(service: str, routes: Routes, generation: str) -> str:
    if not routes.servers or any(not 1 <= b.weight <= 100 for b in routes.servers):
        raise ValueError(f"routes need one or more servers with weights 1-100, got {routes.servers}")
    return _render(
        "routes.conf.j2",
        service=service,
        servers=routes.servers,
        shadow=routes.shadow,
        port=SERVING_PORT,
        generation=generation,
        summary=routes.summary or "",
    )


def template_digest() -> str:
    text = _template("proxy.Dockerfile.j2") + _template("nginx.conf.j2")
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


def proxy_image_tag(base_image: str) -> str:
    """One tag per base image and template: a changed template builds a new image."""
    digest = hashlib.sha256(f"{base_image}\n{template_digest()}".encode()).hexdigest()[:12]
    return f"localhost/mlops-ci-proxy:{digest}"


def ensure_proxy_image(engine, base_image: str) -> str:
    """The proxy image for ``base_image``, built once per engine (about 10 s)."""
    import docker

    from mlops_ci import __version__
    from mlops_ci.container.base import BuildError

    tag = proxy_image_tag(base_image)
    try:
        engine.client.images.get(tag)
        return tag
    except docker.errors.ImageNotFound:
        pass
    with tempfile.TemporaryDirectory(prefix="mlops-ci-proxy-") as folder:
        context = Path(folder)
        values = {
            "base_image": base_image,
            "image": tag,
            "mlops_ci_version": __version__,
            "template_digest": template_digest(),
        }
        (context / "Dockerfile").write_text(_render("proxy.Dockerfile.j2", **values), encoding="utf-8")
        (context / "nginx.conf").write_text(_render("nginx.conf.j2", **values), encoding="utf-8")
        log.info("building the proxy image %s from %s", tag, base_image)
        try:
            engine.build(context, tag)
        except BuildError as error:
            raise ExternalServiceError(
                f"the proxy image could not be built from {base_image} ({error}); it installs Debian's "
                "nginx with apt-get, so the base image must be Debian-based and reach its apt mirror, "
                "or give a ready proxy image"
            ) from None
    return tag


def ensure_network(client, name: str, service: str):
    import docker

    try:
        return client.networks.get(name)
    except docker.errors.NotFound:
        return client.networks.create(name, driver="bridge", labels={f"{LABEL}.service": service})


def routes_network(client, service: str):
    """The network between the proxy and the versions of ``service``."""
    return ensure_network(client, f"mlops-ci-{service}-routes", service)


def address_on(container, network) -> str:
    """The container's IP on ``network``, connecting it first when it is not on it."""
    container.reload()
    networks = container.attrs["NetworkSettings"]["Networks"]
    if network.name not in networks:
        network.connect(container)
        container.reload()
        networks = container.attrs["NetworkSettings"]["Networks"]
    address = networks[network.name].get("IPAddress")
    if not address:
        raise ExternalServiceError(f"{container.name} has no address on {network.name} (is it running?)")
    return address


def find_proxy(client, service: str):
    import docker

    try:
        return client.containers.get(f"{service}-proxy")
    except docker.errors.NotFound:
        return None


def proxy_url(container, bind: str) -> str:
    container.reload()
    bindings = (container.attrs["NetworkSettings"].get("Ports") or {}).get(f"{PROXY_PORT}/tcp") or []
    if not bindings:
        raise ExternalServiceError(f"{container.name} publishes no port")
    host = "127.0.0.1" if bind in ("0.0.0.0", "") else bind
    return f"http://{host}:{bindings[0]['HostPort']}"


def start_proxy(client, service: str, image: str, routes: Routes, *, bind: str, port: int, service_network):
    """Create ``NAME-proxy`` with its first routes, start it, and wait until it serves them."""
    import docker

    network = routes_network(client, service)
    try:
        container = client.containers.create(
            image,
            name=f"{service}-proxy",
            detach=True,
            labels={f"{LABEL}.service": service, f"{LABEL}.role": "proxy"},
            ports={f"{PROXY_PORT}/tcp": (bind, port or None)},
            volumes={f"mlops-ci-{service}-proxy": {"bind": ROUTES_DIR, "mode": "rw"}},
            read_only=True,
            tmpfs={"/tmp": "rw,size=64m"},
            security_opt=["no-new-privileges"],
            cap_drop=["ALL"],
            restart_policy={"Name": "unless-stopped"},
            network=network.name,
        )
        generation = _write_routes(container, service, routes)
        container.start()
        service_network.connect(container, aliases=[f"{service}-proxy"])
    except docker.errors.APIError as exc:
        with contextlib.suppress(docker.errors.APIError):
            client.containers.get(f"{service}-proxy").remove(force=True)
        raise ExternalServiceError(
            f"Docker could not start the proxy {service}-proxy from {image}: {str(exc.explanation or exc)[:300]}"
        ) from None
    _wait_generation(container, bind, generation)
    return container


def apply_routes(container, service: str, routes: Routes, *, bind: str) -> str:
    """Rewrite the routes, check them, reload nginx and wait until the new ones serve;
    returns the generation now serving."""
    generation = _write_routes(container, service, routes)
    code, output = container.exec_run(["nginx", "-t", "-q", "-c", "/etc/nginx/nginx.conf"])
    if code != 0:
        raise ExternalServiceError(
            f"nginx in {container.name} refused the new routes: {output.decode('utf-8', 'replace')[:300]}"
        )
    container.kill(signal="SIGHUP")
    _wait_generation(container, bind, generation)
    return generation


def _write_routes(container, service: str, routes: Routes) -> str:
    generation = uuid.uuid4().hex[:12]
    data = render_routes(service, routes, generation).encode("utf-8")
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        info = tarfile.TarInfo("routes.conf")
        info.size, info.mode, info.uid, info.gid = len(data), 0o644, 10001, 10001
        info.mtime = int(time.time())
        archive.addfile(info, io.BytesIO(data))
    if not container.put_archive(ROUTES_DIR, buffer.getvalue()):
        raise ExternalServiceError(f"could not write the routes into {container.name}")
    return generation


def _wait_generation(container, bind: str, generation: str, timeout_s: float = 30.0) -> None:
    import requests

    url = proxy_url(container, bind) + "/__mlops-ci/routes"
    deadline = time.monotonic() + timeout_s
    seen = None
    while time.monotonic() < deadline:
        try:
            seen = requests.get(url, timeout=2).text.strip()
            if seen == generation:
                return
        except requests.RequestException as exc:
            seen = type(exc).__name__
        time.sleep(0.05)
    logs = container.logs(tail=5).decode("utf-8", "replace").strip()
    raise ExternalServiceError(
        f"the proxy {container.name} did not take the new routes within {timeout_s:.0f} s "
        f"(it answers {seen!r}): {logs[-300:]}"
    )
