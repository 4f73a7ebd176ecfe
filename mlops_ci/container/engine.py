"""Container engines behind one small API, so that package, profile and deploy share it:

    engine, why = find_engine("auto", env)        # None + the reason when none is usable
    image = engine.build(context_dir, "census-income:3", log_path=...)
    digest = engine.push(image.ref, credentials)
    with engine.run(image.ref, cpus=1.0, memory="512m") as container:
        container.wait_ready()                    # seconds until /v2/health/ready said 200
        container.url, container.stats(), container.logs()
                                                  # stopped (SIGTERM) and removed on exit

Docker is reached through the docker SDK, which honours DOCKER_HOST (and DOCKER_TLS_*
/ DOCKER_CERT_PATH). buildah builds and pushes without a daemon; containers then run
with podman when it is installed.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlops_ci.errors import ExternalServiceError, MlopsCiError, UsageError

ENGINES = ("auto", "docker", "buildah", "none")
SERVING_PORT = 8080


class BuildError(MlopsCiError):
    """The image build failed; ``log_tail`` holds its last lines."""

    def __init__(self, message: str, log_tail: str = "") -> None:
        super().__init__(message)
        self.log_tail = log_tail


class NotReadyError(MlopsCiError):
    """A container did not become ready in time (or exited)."""


@dataclass(frozen=True)
class RegistryCredentials:
    registry: str
    username: str
    password: str = field(repr=False)


@dataclass(frozen=True)
class ImageInfo:
    ref: str
    id: str
    size_bytes: int
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ContainerStats:
    memory_bytes: int | None
    memory_limit_bytes: int | None
    cpu_percent: float | None


@dataclass(frozen=True)
class ContainerState:
    """Whether the container still runs, and how it ended: ``oom_killed`` when the kernel
    killed it for exceeding its memory limit."""

    running: bool
    exit_code: int | None
    oom_killed: bool


class RunningContainer(ABC):
    def __init__(self, engine: Engine, container_id: str, host_port: int) -> None:
        self.engine = engine
        self.id = container_id
        self.host_port = host_port
        self.url = f"http://127.0.0.1:{host_port}"

    def wait_ready(self, *, timeout_s: float = 60.0, path: str = "/v2/health/ready") -> float:
        """Seconds from now until ``path`` answers 200; NotReadyError on timeout or exit."""
        import urllib.error
        import urllib.request

        started = time.monotonic()
        while time.monotonic() - started < timeout_s:
            if not self.is_running():
                raise NotReadyError(
                    f"container {self.id[:12]} exited before it was ready:\n{self.logs(tail=20)}"
                )
            try:
                with urllib.request.urlopen(self.url + path, timeout=2) as response:
                    if response.status == 200:
                        return time.monotonic() - started
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.05)
        raise NotReadyError(
            f"container {self.id[:12]} was not ready after {timeout_s:.0f} s:\n{self.logs(tail=20)}"
        )

    @abstractmethod
    def is_running(self) -> bool: ...

    @abstractmethod
    def stats(self) -> ContainerStats: ...

    @abstractmethod
    def state(self) -> ContainerState: ...

    @abstractmethod
    def logs(self, *, tail: int = 200) -> str: ...

    @abstractmethod
    def stop(self, *, timeout_s: float = 10.0) -> int | None:
        """SIGTERM, wait, remove; returns the exit code."""

    def __enter__(self) -> RunningContainer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class Engine(ABC):
    name = "engine"

    @abstractmethod
    def describe(self) -> str: ...

    @abstractmethod
    def build(self, context: Path, tag: str, *, log_path: Path | None = None) -> ImageInfo: ...

    @abstractmethod
    def push(self, ref: str, credentials: RegistryCredentials | None) -> str:
        """Push ``ref``; returns the registry's manifest digest (sha256:...)."""

    @abstractmethod
    def run(
        self,
        image: str,
        *,
        port: int = 0,
        cpus: float | None = None,
        memory: str | int | None = None,
        env: Mapping[str, str] | None = None,
        name: str | None = None,
    ) -> RunningContainer:
        """Start ``image`` detached, its port 8080 published on 127.0.0.1:``port`` (0: any)."""

    @abstractmethod
    def remove_image(self, ref: str) -> None: ...

    def copy_from_image(self, image: str, path: str, destination: Path) -> Path:
        """Copy folder ``path`` out of ``image`` into ``destination`` (without running it)."""
        raise UsageError(f"copying files out of an image is not supported with {self.name}")


# -- Docker ------------------------------------------------------------------------------


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
                    _write_log(log_path, lines + [message])
                    raise BuildError(f"docker build failed: {message.strip()[:300]}", "\n".join(lines[-30:]))
                elif "aux" in chunk and "ID" in chunk["aux"]:
                    image_id = chunk["aux"]["ID"]
        except docker.errors.APIError as exc:
            _write_log(log_path, lines + [str(exc)])
            raise BuildError(
                f"docker build failed: {exc.explanation or exc}"[:400], "\n".join(lines[-30:])
            ) from None
        _write_log(log_path, lines)
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


# -- buildah (daemonless) ----------------------------------------------------------------


class BuildahEngine(Engine):
    """buildah with the vfs storage driver and chroot isolation: works unprivileged in
    CI containers. Containers run with podman when it is installed."""

    name = "buildah"

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = dict(env)
        self.base = ["buildah", "--storage-driver", "vfs"]

    def describe(self) -> str:
        done = subprocess.run(["buildah", "--version"], capture_output=True, text=True, env=self.env)
        return done.stdout.strip() or "buildah"

    def build(self, context: Path, tag: str, *, log_path: Path | None = None) -> ImageInfo:
        done = subprocess.run(
            [
                *self.base,
                "bud",
                "--isolation",
                "chroot",
                "--layers",
                "-t",
                tag,
                "-f",
                str(context / "Dockerfile"),
                str(context),
            ],
            capture_output=True,
            text=True,
            env=self.env,
        )
        lines = (done.stdout + done.stderr).splitlines()
        _write_log(log_path, lines)
        if done.returncode != 0:
            raise BuildError(
                f"buildah build failed: {(lines[-1] if lines else 'no output')[:300]}", "\n".join(lines[-30:])
            )
        info = json.loads(
            subprocess.run(
                [*self.base, "inspect", "--type", "image", tag],
                capture_output=True,
                text=True,
                env=self.env,
                check=True,
            ).stdout
        )
        image_id = info.get("FromImageID") or info.get("ImageID") or ""
        size = 0
        images = subprocess.run(
            [*self.base, "images", "--json", tag], capture_output=True, text=True, env=self.env
        )
        if images.returncode == 0 and images.stdout.strip():
            raw = json.loads(images.stdout)[0].get("size", 0) or 0
            size = raw if isinstance(raw, int) else (_parse_size(str(raw)) or 0)
        labels = (info.get("OCIv1") or {}).get("config", {}).get("Labels") or {}
        return ImageInfo(
            tag, f"sha256:{image_id}" if image_id and ":" not in image_id else image_id, size, labels
        )

    def push(self, ref: str, credentials: RegistryCredentials | None) -> str:
        with tempfile.TemporaryDirectory() as folder:
            command = [*self.base, "push", "--digestfile", f"{folder}/digest"]
            if credentials is not None:
                authfile = Path(folder) / "auth.json"
                authfile.write_text(
                    json.dumps({"auths": {credentials.registry: {"auth": _basic(credentials)}}})
                )
                authfile.chmod(0o600)
                command += ["--authfile", str(authfile)]
            if ref.startswith(("localhost", "127.0.0.1")):
                command += ["--tls-verify=false"]
            done = subprocess.run(
                [*command, ref, f"docker://{ref}"], capture_output=True, text=True, env=self.env
            )
            if done.returncode != 0:
                raise ExternalServiceError(
                    f"push of {ref} failed: {done.stderr.strip().splitlines()[-1][:300] if done.stderr.strip() else 'buildah push failed'}"
                )
            return Path(folder, "digest").read_text().strip()

    def run(self, image, *, port=0, cpus=None, memory=None, env=None, name=None) -> RunningContainer:
        if shutil.which("podman", path=self.env.get("PATH")) is None:
            raise UsageError(
                "running containers without a Docker engine needs podman; install it or set DOCKER_HOST"
            )
        host_port = port or _free_port()
        command = [
            "podman",
            "--storage-driver",
            "vfs",
            "--cgroup-manager",
            "cgroupfs",
            "--runtime",
            "runc",
            "run",
            "-d",
            "--ulimit",
            "nofile=1024:1024",
            "--ulimit",
            "nproc=1024:1024",
            "-p",
            f"127.0.0.1:{host_port}:{SERVING_PORT}",
        ]
        if cpus:
            command += ["--cpus", str(cpus)]
        if memory:
            command += ["--memory", str(memory), "--memory-swap", str(memory)]
        if name:
            command += ["--name", name]
        for key in env or {}:
            command += ["--env", key]
        done = subprocess.run(
            [*command, image], capture_output=True, text=True, env={**self.env, **dict(env or {})}
        )
        if done.returncode != 0:
            raise ExternalServiceError(f"podman could not start {image}: {done.stderr.strip()[-300:]}")
        return PodmanContainer(self, done.stdout.strip(), host_port)

    def remove_image(self, ref: str) -> None:
        subprocess.run([*self.base, "rmi", "-f", ref], capture_output=True, env=self.env)


class PodmanContainer(RunningContainer):
    def _podman(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["podman", "--storage-driver", "vfs", *args], capture_output=True, text=True)

    def is_running(self) -> bool:
        done = self._podman("inspect", "-f", "{{.State.Running}}", self.id)
        return done.stdout.strip() == "true"

    def stats(self) -> ContainerStats:
        done = self._podman("stats", "--no-stream", "--format", "json", self.id)
        try:
            data = json.loads(done.stdout)[0]
            return ContainerStats(
                _parse_size(data.get("mem_usage", "").split("/")[0]),
                None,
                float(str(data.get("cpu_percent", "0")).rstrip("%")),
            )
        except (ValueError, IndexError, KeyError):
            return ContainerStats(None, None, None)

    def state(self) -> ContainerState:
        done = self._podman(
            "inspect", "-f", "{{.State.Running}} {{.State.ExitCode}} {{.State.OOMKilled}}", self.id
        )
        parts = done.stdout.split()
        if len(parts) != 3:
            return ContainerState(False, None, False)
        return ContainerState(
            parts[0] == "true", int(parts[1]) if parts[1].lstrip("-").isdigit() else None, parts[2] == "true"
        )

    def logs(self, *, tail: int = 200) -> str:
        done = self._podman("logs", "--tail", str(tail), self.id)
        return done.stdout + done.stderr

    def stop(self, *, timeout_s: float = 10.0) -> int | None:
        self._podman("stop", "-t", str(int(timeout_s)), self.id)
        code = self._podman("inspect", "-f", "{{.State.ExitCode}}", self.id).stdout.strip()
        self._podman("rm", "-f", self.id)
        return int(code) if code.isdigit() else None


# -- choosing an engine --------------------------------------------------------------------


def find_engine(preference: str, env: Mapping[str, str]) -> tuple[Engine | None, str]:
    """The engine to use, or None and why none is usable (for the step's message)."""
    if preference not in ENGINES:
        raise UsageError(f"--engine must be one of {', '.join(ENGINES)}, got {preference!r}")
    if preference == "none":
        return None, "image building is switched off (--engine none)"
    reasons = []
    if preference in ("auto", "docker"):
        try:
            return DockerEngine.connect(env), ""
        except Exception as exc:  # noqa: BLE001 - any failure means "not reachable"
            host = env.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
            reasons.append(f"no Docker engine answers at {host} ({type(exc).__name__})")
            if preference == "docker":
                return None, reasons[0]
    if preference in ("auto", "buildah"):
        if shutil.which("buildah", path=env.get("PATH", os.defpath)):
            return BuildahEngine(env), ""
        reasons.append("buildah is not installed")
    return None, "; ".join(reasons)


def split_ref(ref: str) -> tuple[str, str]:
    """'host:5000/a/b:tag' -> ('host:5000/a/b', 'tag'); no tag -> 'latest'."""
    slash = ref.rfind("/")
    colon = ref.rfind(":")
    if colon > slash:
        return ref[:colon], ref[colon + 1 :]
    return ref, "latest"


def registry_of(ref: str) -> str:
    first = ref.split("/", 1)[0]
    if "/" in ref and ("." in first or ":" in first or first == "localhost"):
        return first
    return "docker.io"


def credentials_from_env(ref: str, env: Mapping[str, str]) -> RegistryCredentials | None:
    """MLOPS_CI_REGISTRY_USERNAME/PASSWORD; else GitLab's CI_REGISTRY_USER/PASSWORD for
    its own registry; else GITHUB_ACTOR/GITHUB_TOKEN for ghcr.io. None: the engine's own
    login (docker login) applies."""
    registry = registry_of(ref)
    user, password = env.get("MLOPS_CI_REGISTRY_USERNAME"), env.get("MLOPS_CI_REGISTRY_PASSWORD")
    if user and password:
        return RegistryCredentials(registry, user, password)
    if env.get("CI_REGISTRY") == registry and env.get("CI_REGISTRY_USER") and env.get("CI_REGISTRY_PASSWORD"):
        return RegistryCredentials(registry, env["CI_REGISTRY_USER"], env["CI_REGISTRY_PASSWORD"])
    if registry == "ghcr.io" and env.get("GITHUB_TOKEN") and env.get("GITHUB_ACTOR"):
        return RegistryCredentials(registry, env["GITHUB_ACTOR"], env["GITHUB_TOKEN"])
    return None


def _basic(credentials: RegistryCredentials) -> str:
    import base64

    return base64.b64encode(f"{credentials.username}:{credentials.password}".encode()).decode()


def _write_log(path: Path | None, lines: list[str]) -> None:
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _parse_size(text: str) -> int | None:
    text = text.strip()
    units = {"kB": 1e3, "KB": 1e3, "KiB": 1024, "MB": 1e6, "MiB": 1024**2, "GB": 1e9, "GiB": 1024**3, "B": 1}
    for unit, factor in units.items():
        if text.endswith(unit):
            try:
                return int(float(text[: -len(unit)]) * factor)
            except ValueError:
                return None
    return None
