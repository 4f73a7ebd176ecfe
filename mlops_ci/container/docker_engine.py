"""Docker through the docker SDK, which honours DOCKER_HOST (and DOCKER_TLS_* /
DOCKER_CERT_PATH). The SDK is imported inside the methods that use it."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mlops_ci.container.base import (
    SERVING_PORT,
    BuildError,
    ContainerState,
    ContainerStats,
    Engine,
    ImageInfo,
    RunningContainer,
    write_log,
)
from mlops_ci.container.credentials import RegistryCredentials
from mlops_ci.container.reference import split_ref
from mlops_ci.errors import ExternalServiceError, UsageError


class DockerEngine(Engine):
    name = "docker"

    def __init__(self, client: Any, host: str) -> None:
        self.client = client
        self.host = host

    @classmethod
    def connect(cls, env: Mapping[str, str]) -> DockerEngine:
        import docker

        client = docker.from_env(environment=dict(env), timeout=600)
        client.ping()
        return cls(client, env.get("DOCKER_HOST") or "unix:///var/run/docker.sock")

    def describe(self) -> str:
        version = self.client.version().get("Version", "?")
        return f"Docker {version} at {self.host}"

    def build(self, context: Path, tag: str, *, log_path: Path | None = None) -> ImageInfo:
        import docker

        lines: list[str] = []
        image_id = None
        try:
            for chunk in self.client.api.build(
                path=str(context), tag=tag, rm=True, forcerm=True, decode=True, pull=False
            ):
                if "stream" in chunk:
                    lines.extend(chunk["stream"].splitlines())
                elif "error" in chunk:
                    message = chunk.get("errorDetail", {}).get("message") or chunk["error"]
                    write_log(log_path, lines + [message])
                    raise BuildError(f"docker build failed: {message.strip()[:300]}", "\n".join(lines[-30:]))
                elif "aux" in chunk and "ID" in chunk["aux"]:
                    image_id = chunk["aux"]["ID"]
        except docker.errors.APIError as exc:
            write_log(log_path, lines + [str(exc)])
            raise BuildError(
                f"docker build failed: {exc.explanation or exc}"[:400], "\n".join(lines[-30:])
            ) from None
        write_log(log_path, lines)
        image = self.client.images.get(image_id or tag)
        return ImageInfo(tag, image.id, int(image.attrs.get("Size") or 0), dict(image.labels or {}))

    def push(self, ref: str, credentials: RegistryCredentials | None) -> str:
        repository, tag = split_ref(ref)
        auth = {"username": credentials.username, "password": credentials.password} if credentials else None
        digest = None
        for chunk in self.client.api.push(repository, tag=tag, auth_config=auth, stream=True, decode=True):
            if "error" in chunk:
                raise ExternalServiceError(f"push of {ref} failed: {chunk['error'][:300]}")
            aux = chunk.get("aux") or {}
            digest = aux.get("Digest") or digest
        if not digest:
            raise ExternalServiceError(f"push of {ref} reported no digest; check the registry")
        return digest

    def run(self, image, *, port=0, cpus=None, memory=None, env=None, name=None) -> RunningContainer:
        import docker

        kwargs: dict[str, Any] = {
            "detach": True,
            "ports": {f"{SERVING_PORT}/tcp": ("127.0.0.1", port or None)},
            "environment": dict(env or {}),
            "read_only": True,
            "tmpfs": {"/tmp": "rw,size=64m"},
            "security_opt": ["no-new-privileges"],
            "cap_drop": ["ALL"],
        }
        if cpus:
            kwargs["nano_cpus"] = int(cpus * 1e9)
        if memory:
            kwargs["mem_limit"] = memory
            # No swap on top: the limit is the memory the model gets, as on Kubernetes.
            kwargs["memswap_limit"] = memory
        if name:
            kwargs["name"] = name
        try:
            container = self.client.containers.run(image, **kwargs)
        except docker.errors.ImageNotFound:
            raise UsageError(f"image {image} does not exist in {self.describe()}") from None
        except docker.errors.APIError as exc:
            raise ExternalServiceError(
                f"docker could not start {image}: {exc.explanation or exc}"[:400]
            ) from None
        host_port = port
        for _ in range(50):
            container.reload()
            bindings = (container.attrs.get("NetworkSettings", {}).get("Ports") or {}).get(
                f"{SERVING_PORT}/tcp"
            )
            if bindings:
                host_port = int(bindings[0]["HostPort"])
                break
            if container.status == "exited":
                break
            time.sleep(0.05)
        return DockerContainer(self, container, host_port)

    def remove_image(self, ref: str) -> None:
        """Remove the image ``ref`` names, with its other tags and pushed-digest references."""
        import docker

        with contextlib.suppress(docker.errors.ImageNotFound):
            image_id = self.client.images.get(ref).id
            self.client.images.remove(image_id, force=True)

    def copy_from_image(self, image: str, path: str, destination: Path) -> Path:
        import io
        import tarfile

        import docker

        try:
            container = self.client.containers.create(image)
        except docker.errors.ImageNotFound:
            raise UsageError(f"image {image} does not exist in {self.describe()}") from None
        try:
            try:
                stream, _ = container.get_archive(path)
            except docker.errors.NotFound:
                raise UsageError(f"image {image} has no {path}") from None
            data = io.BytesIO(b"".join(stream))
            destination.mkdir(parents=True, exist_ok=True)
            with tarfile.open(fileobj=data) as archive:
                # The "data" filter refuses links and paths that leave the destination.
                if hasattr(tarfile, "data_filter"):
                    archive.extractall(destination, filter="data")
                else:  # pragma: no cover - Python < 3.10.12
                    archive.extractall(destination)
        finally:
            with contextlib.suppress(Exception):
                container.remove(force=True)
        return destination / Path(path).name

    def prune_build_stages(self) -> None:
        """Remove the untagged build-stage images the classic builder keeps as cache."""
        self.client.images.prune(filters={"dangling": True, "label": "io.mlops-ci.stage=build"})


class DockerContainer(RunningContainer):
    def __init__(self, engine: DockerEngine, container: Any, host_port: int) -> None:
        super().__init__(engine, container.id, host_port)
        self.container = container
        self._stopped = False

    def is_running(self) -> bool:
        self.container.reload()
        return self.container.status in ("created", "running", "restarting")

    def state(self) -> ContainerState:
        self.container.reload()
        state = self.container.attrs.get("State") or {}
        return ContainerState(bool(state.get("Running")), state.get("ExitCode"), bool(state.get("OOMKilled")))

    def stats(self) -> ContainerStats:
        data = self.container.stats(stream=False)
        memory = data.get("memory_stats") or {}
        usage = memory.get("usage")
        cache = (
            (memory.get("stats") or {}).get("inactive_file") or (memory.get("stats") or {}).get("cache") or 0
        )
        cpu = data.get("cpu_stats") or {}
        pre = data.get("precpu_stats") or {}
        cpu_percent = None
        try:
            delta = cpu["cpu_usage"]["total_usage"] - pre["cpu_usage"]["total_usage"]
            system = cpu["system_cpu_usage"] - pre["system_cpu_usage"]
            if system > 0:
                cpu_percent = delta / system * cpu.get("online_cpus", 1) * 100.0
        except (KeyError, TypeError):
            pass
        return ContainerStats(
            int(usage - cache) if usage is not None else None, memory.get("limit"), cpu_percent
        )

    def logs(self, *, tail: int = 200) -> str:
        try:
            return self.container.logs(tail=tail).decode("utf-8", "replace")
        except Exception:  # noqa: BLE001 - logs are best effort
            return ""

    def stop(self, *, timeout_s: float = 10.0) -> int | None:
        if self._stopped:
            return None
        self._stopped = True
        code = None
        try:
            self.container.stop(timeout=int(timeout_s))
            code = self.container.wait(timeout=timeout_s + 5).get("StatusCode")
        finally:
            with contextlib.suppress(Exception):  # already gone
                self.container.remove(force=True)
        return code
