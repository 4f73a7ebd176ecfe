"""The server under load, behind one small interface:

- ``ContainerTarget``: the serving image run by the container engine with a CPU and a
  memory limit (the only target that can be limited, and that can run out of memory);
- ``ServeTarget``: `mlops-ci serve` in a subprocess (no container engine);
- ``EndpointTarget``: a URL someone else runs.

Resource use is read from the server's Prometheus ``/metrics`` (``process_cpu_seconds_total``,
``process_resident_memory_bytes``, ``process_resident_memory_max_bytes``), the same way for
all three; a server without them still gets latency and throughput measured.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlops_ci.errors import MlopsCiError
from mlops_ci.profiling.errors import EndpointNotReady
from mlops_ci.retry import RetriesExhausted, RetryableError, RetryPolicy, call_with_retries

log = logging.getLogger(__name__)

READY_PATH = "/v2/health/ready"


class TargetStartError(MlopsCiError):
    """The server did not become ready; ``oom_killed`` when it ran out of memory."""

    def __init__(self, message: str, *, oom_killed: bool = False) -> None:
        super().__init__(message)
        self.oom_killed = oom_killed


@dataclass(frozen=True)
class Usage:
    """The server process's counters at one moment (None: not exposed)."""

    cpu_seconds: float | None
    rss_bytes: int | None
    rss_max_bytes: int | None


@dataclass(frozen=True)
class TargetState:
    running: bool
    oom_killed: bool = False
    exit_code: int | None = None


class Target(ABC):
    kind = "target"

    def __init__(self, url: str, *, cpus: float | None = None, memory_bytes: int | None = None) -> None:
        self.url = url.rstrip("/")
        self.cpus = cpus
        self.memory_bytes = memory_bytes

    def usage(self) -> Usage | None:
        return read_usage(self.url)

    @abstractmethod
    def state(self) -> TargetState: ...

    def stop(self) -> None:  # noqa: B027 - an endpoint has nothing to stop
        """Stop what this target started."""

    def logs(self) -> str:
        return ""

    def __enter__(self) -> Target:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


# -- /metrics ----------------------------------------------------------------------------


def read_usage(url: str, *, timeout_s: float = 5.0) -> Usage | None:
    try:
        with urllib.request.urlopen(url.rstrip("/") + "/metrics", timeout=timeout_s) as response:
            if response.status != 200:
                return None
            text = response.read().decode("utf-8", "replace")
    except (urllib.error.URLError, OSError, ValueError):
        return None
    values: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("process_"):
            name, _, raw = line.partition(" ")
            with contextlib.suppress(ValueError):
                values[name] = float(raw.strip())
    if not values:
        return None
    rss = values.get("process_resident_memory_bytes")
    peak = values.get("process_resident_memory_max_bytes")
    return Usage(
        values.get("process_cpu_seconds_total"),
        int(rss) if rss is not None else None,
        int(peak) if peak is not None else None,
    )


def wait_ready(
    url: str,
    *,
    timeout_s: float,
    path: str = READY_PATH,
    alive: Callable[[], bool] | None = None,
) -> float:
    """Seconds until ``url + path`` answered 200; TargetStartError on timeout or when
    ``alive()`` says the process is gone."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        if alive is not None and not alive():
            raise TargetStartError(f"the server at {url} exited before it was ready")
        with (
            contextlib.suppress(urllib.error.URLError, OSError),
            urllib.request.urlopen(url + path, timeout=2) as response,
        ):
            if response.status == 200:
                return time.monotonic() - started
        time.sleep(0.05)
    raise TargetStartError(f"the server at {url} was not ready after {timeout_s:.0f} s")


# -- containers --------------------------------------------------------------------------


class ContainerTarget(Target):
    kind = "container"

    def __init__(self, container: Any, *, cpus: float | None, memory_bytes: int | None) -> None:
        super().__init__(container.url, cpus=cpus, memory_bytes=memory_bytes)
        self.container = container

    @classmethod
    def start(
        cls,
        engine: Any,
        image: str,
        *,
        cpus: float | None,
        memory_bytes: int | None,
        env: Mapping[str, str],
        ready_timeout_s: float,
    ) -> ContainerTarget:
        from mlops_ci.container.engine import NotReadyError

        container = engine.run(image, cpus=cpus, memory=memory_bytes, env=dict(env))
        target = cls(container, cpus=cpus, memory_bytes=memory_bytes)
        try:
            container.wait_ready(timeout_s=ready_timeout_s)
        except NotReadyError as exc:
            state = target.state()
            target.stop()
            if state.oom_killed:
                raise TargetStartError(
                    f"{image} ran out of memory while starting (limit {_mib(memory_bytes)})", oom_killed=True
                ) from None
            raise TargetStartError(str(exc).splitlines()[0]) from None
        return target

    def state(self) -> TargetState:
        state = self.container.state()
        return TargetState(state.running, state.oom_killed, state.exit_code)

    def logs(self) -> str:
        return self.container.logs(tail=50)

    def stop(self) -> None:
        with contextlib.suppress(Exception):  # already gone
            self.container.stop(timeout_s=5)


# -- mlops-ci serve ----------------------------------------------------------------------


class ServeTarget(Target):
    kind = "serve"

    def __init__(self, process: subprocess.Popen, url: str, log_path: Path) -> None:
        super().__init__(url)
        self.process = process
        self.log_path = log_path

    @classmethod
    def start(
        cls, model_dir: Path, *, env: Mapping[str, str], log_path: Path, ready_timeout_s: float
    ) -> ServeTarget:
        port = free_port()
        log_path.parent.mkdir(parents=True, exist_ok=True)
        command = [
            sys.executable,
            "-m",
            "mlops_ci",
            "serve",
            str(Path(model_dir).resolve()),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ]
        with log_path.open("ab") as handle:
            process = subprocess.Popen(
                command,
                stdout=handle,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, **dict(env)},
                start_new_session=True,
            )
        target = cls(process, f"http://127.0.0.1:{port}", log_path)
        try:
            wait_ready(target.url, timeout_s=ready_timeout_s, alive=lambda: process.poll() is None)
        except TargetStartError as exc:
            target.stop()
            raise TargetStartError(f"`mlops-ci serve` did not start: {exc}; log: {log_path}") from None
        return target

    def state(self) -> TargetState:
        code = self.process.poll()
        return TargetState(code is None, False, code)

    def logs(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")[-3000:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)


# -- someone else's server ---------------------------------------------------------------


class EndpointTarget(Target):
    kind = "endpoint"

    @classmethod
    def connect(cls, url: str, *, ready_path: str, retry_timeout_s: float) -> EndpointTarget:
        """Wait (bounded retries) until the endpoint answers ``ready_path`` with 200;
        EndpointNotReady (exit 3) when it never does."""

        def attempt() -> None:
            try:
                with urllib.request.urlopen(url.rstrip("/") + ready_path, timeout=5) as response:
                    if response.status == 200:
                        return
                    raise RetryableError(f"{ready_path} answered {response.status}")
            except urllib.error.HTTPError as exc:
                raise RetryableError(f"{ready_path} answered {exc.code}") from None
            except (urllib.error.URLError, OSError) as exc:
                reason = getattr(exc, "reason", exc)
                raise RetryableError(str(reason)) from None

        policy = RetryPolicy(budget_s=retry_timeout_s, first_delay_s=0.5, max_delay_s=5.0)
        try:
            call_with_retries(attempt, policy, what=f"GET {url}{ready_path}")
        except RetriesExhausted as exc:
            raise EndpointNotReady(
                url, last=str(exc.last), attempts=exc.attempts, elapsed_s=exc.elapsed_s
            ) from None
        return cls(url)

    def state(self) -> TargetState:
        return TargetState(True)


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _mib(value: int | None) -> str:
    return f"{value / 2**20:.0f}Mi" if value else "none"
