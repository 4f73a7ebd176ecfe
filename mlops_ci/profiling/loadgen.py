"""Load generators: closed-loop, keep-alive, one request body sent over and over.

- ``wrk`` (C, epoll) when installed: tens of thousands of requests per second from one
  thread, so it is rarely the bottleneck. POST bodies go through a Lua script that reads
  the body file named in an environment variable, and a ``done`` hook prints the
  latency percentiles and error counts as one JSON line.
- ``python``: an asyncio client (uvloop when installed) with one keep-alive connection
  per concurrent user; a few thousand requests per second per core, and it keeps every
  latency sample (the comparison needs samples).

``ceiling()`` measures what the generator and the machine can do against a trivial
endpoint (the server's ``/v2/health/live``): results near it say more about the
generator than about the model.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import shutil
import subprocess
import tempfile
import time
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from mlops_ci.errors import UsageError
from mlops_ci.profiling.errors import GeneratorUnavailable
from mlops_ci.profiling.payload import Request

GENERATORS = ("auto", "wrk", "python")
HEALTH_PATH = "/v2/health/live"

_WRK_SCRIPT = r"""
-- Written by mlops-ci: send the request described by MLOPS_CI_WRK_* and report as JSON.
local body_path = os.getenv("MLOPS_CI_WRK_BODY")
wrk.method = os.getenv("MLOPS_CI_WRK_METHOD")
wrk.path = os.getenv("MLOPS_CI_WRK_PATH")
if body_path and body_path ~= "" then
  local handle = assert(io.open(body_path, "rb"))
  wrk.body = handle:read("*a")
  handle:close()
  wrk.headers["Content-Type"] = os.getenv("MLOPS_CI_WRK_CONTENT_TYPE")
end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '\nMLOPS_CI_WRK {"requests": %d, "duration_us": %d, "connect": %d, "read": %d, "write": %d, '
    .. '"status": %d, "timeout": %d, "mean_us": %.1f, "p50_us": %d, "p90_us": %d, "p95_us": %d, '
    .. '"p99_us": %d, "max_us": %d}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean, latency:percentile(50), latency:percentile(90), latency:percentile(95),
    latency:percentile(99), latency.max))
end
"""


@dataclass(frozen=True)
class LoadResult:
    """One closed-loop run. ``rps`` counts successful (2xx) responses per second."""

    generator: str
    concurrency: int
    duration_s: float
    requests: int
    errors: int
    error_kinds: Mapping[str, int]
    rps: float
    mean_ms: float
    p50_ms: float
    p90_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    samples_s: np.ndarray | None = field(default=None, repr=False, compare=False)

    @property
    def attempts(self) -> int:
        socket_errors = sum(v for k, v in self.error_kinds.items() if not k.startswith("http "))
        return self.requests + socket_errors

    @property
    def error_rate(self) -> float:
        return self.errors / self.attempts if self.attempts else 1.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "generator": self.generator,
            "concurrency": self.concurrency,
            "duration_s": round(self.duration_s, 3),
            "requests": self.requests,
            "errors": self.errors,
            "error_rate": self.error_rate,
            "error_kinds": dict(self.error_kinds),
            "rps": self.rps,
            "mean_ms": self.mean_ms,
            "p50_ms": self.p50_ms,
            "p90_ms": self.p90_ms,
            "p95_ms": self.p95_ms,
            "p99_ms": self.p99_ms,
            "max_ms": self.max_ms,
        }


class LoadGenerator(ABC):
    name = "generator"

    @abstractmethod
    def run(
        self, base_url: str, request: Request, *, concurrency: int, duration_s: float, timeout_s: float = 10.0
    ) -> LoadResult:
        """Keep ``concurrency`` requests in flight for about ``duration_s`` seconds."""

    def describe(self) -> str:
        return self.name

    def ceiling(self, base_url: str, *, concurrency: int, duration_s: float) -> LoadResult:
        """The most this generator measures on this machine: GET on a trivial endpoint."""
        return self.run(base_url, Request("GET", HEALTH_PATH), concurrency=concurrency, duration_s=duration_s)


def find_generator(preference: str, env: Mapping[str, str] | None = None) -> LoadGenerator:
    env = os.environ if env is None else env
    if preference not in GENERATORS:
        raise UsageError(f"the load generator must be one of {', '.join(GENERATORS)}, got {preference!r}")
    wrk = shutil.which("wrk", path=env.get("PATH", os.defpath))
    if preference == "wrk" and wrk is None:
        raise GeneratorUnavailable("wrk")
    if preference in ("auto", "wrk") and wrk is not None:
        return WrkGenerator(wrk)
    return AsyncioGenerator()


# -- wrk ----------------------------------------------------------------------------------


class WrkGenerator(LoadGenerator):
    name = "wrk"

    def __init__(self, executable: str) -> None:
        self.executable = executable

    def describe(self) -> str:
        done = subprocess.run([self.executable, "-v"], capture_output=True, text=True)
        first = (done.stdout or done.stderr).strip().splitlines()
        return first[0].split(" Copyright")[0] if first else "wrk"

    def run(
        self, base_url: str, request: Request, *, concurrency: int, duration_s: float, timeout_s: float = 10.0
    ) -> LoadResult:
        _check_run_args(concurrency, duration_s)
        # wrk takes whole seconds; it runs at least one.
        seconds = max(1, math.ceil(duration_s - 1e-9))
        threads = max(1, min(concurrency, (os.cpu_count() or 2) // 2))
        url = _join(base_url, "/")
        with tempfile.TemporaryDirectory(prefix="mlops-ci-wrk-") as folder:
            script = Path(folder) / "request.lua"
            script.write_text(_WRK_SCRIPT, encoding="utf-8")
            body = Path(folder) / "body"
            body.write_bytes(request.body)
            env = {
                **os.environ,
                "MLOPS_CI_WRK_METHOD": request.method,
                "MLOPS_CI_WRK_PATH": _path_of(base_url, request.path),
                "MLOPS_CI_WRK_BODY": str(body) if request.body else "",
                "MLOPS_CI_WRK_CONTENT_TYPE": request.content_type,
            }
            command = [
                self.executable,
                "-t",
                str(threads),
                "-c",
                str(concurrency),
                "-d",
                f"{seconds}s",
                "--timeout",
                f"{max(1, math.ceil(timeout_s))}s",
                "-s",
                str(script),
                url,
            ]
            try:
                done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=seconds + 60)
            except subprocess.TimeoutExpired:
                raise RuntimeError(f"wrk did not finish within {seconds + 60} s") from None
        line = next((x for x in done.stdout.splitlines() if x.startswith("MLOPS_CI_WRK ")), None)
        if done.returncode != 0 or line is None:
            problem = (done.stderr or done.stdout).strip().splitlines()
            raise RuntimeError(f"wrk failed ({done.returncode}): {problem[-1] if problem else 'no output'}")
        data = json.loads(line.split(" ", 1)[1])
        duration = data["duration_us"] / 1e6
        kinds = {key: int(data[key]) for key in ("connect", "read", "write", "timeout") if int(data[key]) > 0}
        if data["status"]:
            kinds["http non-2xx"] = int(data["status"])
        errors = sum(kinds.values())
        ok = max(0, int(data["requests"]) - int(data["status"]))
        return LoadResult(
            generator=self.name,
            concurrency=concurrency,
            duration_s=duration,
            requests=int(data["requests"]),
            errors=errors,
            error_kinds=kinds,
            rps=ok / duration if duration > 0 else 0.0,
            mean_ms=data["mean_us"] / 1e3,
            p50_ms=data["p50_us"] / 1e3,
            p90_ms=data["p90_us"] / 1e3,
            p95_ms=data["p95_us"] / 1e3,
            p99_ms=data["p99_us"] / 1e3,
            max_ms=data["max_us"] / 1e3,
        )


# -- asyncio ------------------------------------------------------------------------------


class AsyncioGenerator(LoadGenerator):
    name = "python"

    def describe(self) -> str:
        try:
            import uvloop  # noqa: F401

            return "python asyncio client (uvloop)"
        except ImportError:
            return "python asyncio client"

    def run(
        self, base_url: str, request: Request, *, concurrency: int, duration_s: float, timeout_s: float = 10.0
    ) -> LoadResult:
        _check_run_args(concurrency, duration_s)
        return _run_loop(
            _closed_loop(
                base_url, request, concurrency=concurrency, duration_s=duration_s, timeout_s=timeout_s
            ),
            self.name,
            concurrency,
        )

    def sequence(self, base_url: str, request: Request, *, count: int, timeout_s: float = 10.0) -> LoadResult:
        """``count`` requests one after the other on one keep-alive connection (latency
        samples for comparisons)."""
        if count < 1:
            raise ValueError(f"`count` must be at least 1, got {count}")
        return _run_loop(
            _closed_loop(base_url, request, concurrency=1, max_requests=count, timeout_s=timeout_s),
            self.name,
            1,
        )


def _run_loop(coroutine: Any, name: str, concurrency: int) -> LoadResult:
    try:
        import uvloop

        loop = uvloop.new_event_loop()
    except ImportError:
        loop = asyncio.new_event_loop()
    try:
        latencies, statuses, kinds, elapsed = loop.run_until_complete(coroutine)
    finally:
        loop.close()
    samples = np.asarray(latencies, dtype=np.float64) / 1e9
    ok = sum(count for status, count in statuses.items() if 200 <= status < 300)
    bad = {f"http {status}": count for status, count in sorted(statuses.items()) if not 200 <= status < 300}
    kinds = {**dict(kinds), **bad}
    if samples.size:
        p50, p90, p95, p99 = np.quantile(samples, [0.5, 0.9, 0.95, 0.99]) * 1e3
        mean, top = float(samples.mean() * 1e3), float(samples.max() * 1e3)
    else:
        p50 = p90 = p95 = p99 = mean = top = float("nan")
    return LoadResult(
        generator=name,
        concurrency=concurrency,
        duration_s=elapsed,
        requests=int(sum(statuses.values())),
        errors=int(sum(kinds.values())),
        error_kinds=kinds,
        rps=ok / elapsed if elapsed > 0 else 0.0,
        mean_ms=mean,
        p50_ms=float(p50),
        p90_ms=float(p90),
        p95_ms=float(p95),
        p99_ms=float(p99),
        max_ms=top,
        samples_s=samples,
    )


async def _closed_loop(
    base_url: str,
    request: Request,
    *,
    concurrency: int,
    duration_s: float | None = None,
    max_requests: int | None = None,
    timeout_s: float,
) -> tuple[list[int], Counter, Counter, float]:
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"endpoint {base_url!r} must be an http(s) URL such as http://127.0.0.1:8080")
    host = parts.hostname
    port = parts.port or (443 if parts.scheme == "https" else 80)
    path = _path_of(base_url, request.path)
    head = [f"{request.method} {path} HTTP/1.1", f"Host: {parts.netloc}", "Connection: keep-alive"]
    if request.body or request.method in ("POST", "PUT"):
        head += [f"Content-Type: {request.content_type}", f"Content-Length: {len(request.body)}"]
    raw = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + request.body
    ssl = parts.scheme == "https" or None

    latencies: list[int] = []
    statuses: Counter = Counter()
    kinds: Counter = Counter()
    loop = asyncio.get_running_loop()
    started = loop.time()
    deadline = started + duration_s if duration_s is not None else math.inf
    remaining = [max_requests if max_requests is not None else -1]
    clock = time.perf_counter_ns

    def more() -> bool:
        if loop.time() >= deadline:
            return False
        if remaining[0] == 0:
            return False
        if remaining[0] > 0:
            remaining[0] -= 1
        return True

    async def user() -> None:
        reader = writer = None
        while more():
            try:
                if writer is None:
                    reader, writer = await asyncio.wait_for(
                        asyncio.open_connection(host, port, ssl=ssl), timeout_s
                    )
                sent = clock()
                writer.write(raw)
                status, close = await asyncio.wait_for(_read_response(reader), timeout_s)
                latencies.append(clock() - sent)
                statuses[status] += 1
                if close:
                    writer.close()
                    reader = writer = None
            except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ValueError) as exc:
                kinds[_error_kind(exc)] += 1
                if writer is not None:
                    writer.close()
                reader = writer = None
                # A refused connection returns at once: do not spin.
                await asyncio.sleep(0.01)
        if writer is not None:
            writer.close()

    await asyncio.gather(*(user() for _ in range(concurrency)))
    return latencies, statuses, kinds, loop.time() - started


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """Read one response; its status and whether the server closes the connection."""
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    lower = head.lower()
    close = b"\r\nconnection: close" in lower
    marker = lower.find(b"\r\ncontent-length:")
    if marker >= 0:
        end = lower.find(b"\r\n", marker + 2)
        length = int(lower[marker + 17 : end].strip())
        if length:
            await reader.readexactly(length)
    elif b"\r\ntransfer-encoding: chunked" in lower:
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0].strip(), 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    elif status >= 200 and status not in (204, 304):
        # No length: the body runs to the end of the connection.
        await reader.read()
        close = True
    return status, close


def _error_kind(exc: BaseException) -> str:
    if isinstance(exc, asyncio.TimeoutError):
        return "timeout"
    if isinstance(exc, ConnectionRefusedError):
        return "connect"
    if isinstance(exc, (asyncio.IncompleteReadError, ConnectionResetError, BrokenPipeError)):
        return "read"
    return type(exc).__name__


def _check_run_args(concurrency: int, duration_s: float) -> None:
    if concurrency < 1:
        raise ValueError(f"`concurrency` must be at least 1, got {concurrency}")
    if not duration_s > 0:
        raise ValueError(f"`duration_s` must be positive, got {duration_s}")


def _path_of(base_url: str, path: str) -> str:
    """The base URL's own path (a reverse proxy prefix) joined with the request's."""
    prefix = urlsplit(base_url).path.rstrip("/")
    return prefix + (path if path.startswith("/") else "/" + path)


def _join(base_url: str, path: str) -> str:
    parts = urlsplit(base_url)
    return f"{parts.scheme}://{parts.netloc}{_path_of(base_url, path)}"
