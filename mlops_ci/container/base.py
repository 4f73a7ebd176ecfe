"""The container-engine protocol every engine implements (Docker, buildah/podman), and
the records it returns. ``container.engine`` chooses an engine; callers import from there."""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from mlops_ci.container.credentials import RegistryCredentials
from mlops_ci.errors import MlopsCiError, UsageError

SERVING_PORT = 8080


class BuildError(MlopsCiError):
    """The image build failed; ``log_tail`` holds its last lines."""

    def __init__(self, message: str, log_tail: str = "") -> None:
        super().__init__(message)
        self.log_tail = log_tail


class NotReadyError(MlopsCiError):
    """A container did not become ready in time (or exited)."""


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


def write_log(path: Path | None, lines: list[str]) -> None:
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
