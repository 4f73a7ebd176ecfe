"""The HTTP/1.1 transport: an asyncio protocol over httptools' parser (uvloop when
installed). Measured against Starlette on uvicorn for the same handler it serves about
twice the requests per second (benchmarks/serving_benchmark.py), because a request costs
one parser callback chain and one write - no ASGI messages, no per-request tasks.

What it does: keep-alive and pipelining (responses in request order), ``Expect:
100-continue``, request size limits (413 before the body is read when Content-Length
says so), header size limits (431), idle and slow-request timeouts, write backpressure,
requests expected to take long handed to a thread pool (health checks stay responsive),
sampled access logging, and graceful shutdown: on SIGTERM the listener closes, readiness
turns false, idle connections close, in-flight requests finish (up to a timeout) and get
``connection: close``.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from email.utils import formatdate
from typing import Any

import httptools

from mlops_ci.serving.config import ServerConfig

log = logging.getLogger("mlops_ci.serving")
access_log = logging.getLogger("mlops_ci.serving.access")

MAX_HEADER_BYTES = 64 * 1024
SWEEP_INTERVAL_S = 1.0
LINGER_S = 2.0
REASONS = {
    100: b"Continue",
    200: b"OK",
    400: b"Bad Request",
    404: b"Not Found",
    405: b"Method Not Allowed",
    408: b"Request Timeout",
    413: b"Content Too Large",
    415: b"Unsupported Media Type",
    422: b"Unprocessable Content",
    431: b"Request Header Fields Too Large",
    500: b"Internal Server Error",
    503: b"Service Unavailable",
}
JSON = b"application/json"


class _Abort(Exception):
    """Raised from a parser callback to stop parsing after an error response was sent."""


class HttpServer:
    def __init__(self, handler: Any, config: ServerConfig) -> None:
        """``handler`` has ``handle(method, path, content_type, body) -> Response``,
        ``should_offload(path, body_length) -> seconds`` and ``metrics``."""
        self.handler = handler
        self.config = config
        self.connections: set[Connection] = set()
        self.executor = ThreadPoolExecutor(
            max_workers=config.inference_threads, thread_name_prefix="inference"
        )
        self.shutting_down = False
        self.date_header = b""
        self._server: asyncio.AbstractServer | None = None
        self._sweeper: asyncio.TimerHandle | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.inline_budget_s = config.inline_budget_ms / 1000.0
        self.access_sample = config.access_log_sample

    async def start(self, sock: Any = None) -> tuple[str, int]:
        self.loop = asyncio.get_running_loop()
        self._update_date()
        if sock is not None:
            self._server = await self.loop.create_server(lambda: Connection(self), sock=sock, backlog=2048)
        else:
            self._server = await self.loop.create_server(
                lambda: Connection(self), self.config.host, self.config.port, backlog=2048, reuse_address=True
            )
        self._sweeper = self.loop.call_later(SWEEP_INTERVAL_S, self._sweep)
        host, port = self._server.sockets[0].getsockname()[:2]
        return host, port

    def begin_shutdown(self) -> None:
        """Stop accepting; close idle connections; busy ones close after their response."""
        if self.shutting_down:
            return
        self.shutting_down = True
        if self._server is not None:
            self._server.close()
        for connection in list(self.connections):
            if connection.idle:
                connection.close()

    async def wait_drained(self, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while self.connections and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        drained = not self.connections
        for connection in list(self.connections):
            connection.transport.abort()
        if self._sweeper is not None:
            self._sweeper.cancel()
        self.executor.shutdown(wait=True, cancel_futures=False)
        return drained

    def _update_date(self) -> None:
        self.date_header = b"date: " + formatdate(usegmt=True).encode() + b"\r\n"

    def _sweep(self) -> None:
        assert self.loop is not None
        self._update_date()
        now = self.loop.time()
        for connection in list(self.connections):
            connection.check_timeouts(now)
        self._sweeper = self.loop.call_later(SWEEP_INTERVAL_S, self._sweep)


class Connection(asyncio.Protocol):
    __slots__ = (
        "server",
        "loop",
        "transport",
        "parser",
        "peer",
        "url",
        "headers_size",
        "content_type",
        "expect_continue",
        "body",
        "body_size",
        "in_message",
        "message_started",
        "last_active",
        "busy",
        "pending",
        "write_paused",
        "reading",
        "closed",
        "aborted",
    )

    def __init__(self, server: HttpServer) -> None:
        self.server = server
        self.loop = server.loop
        self.transport: Any = None
        self.parser = httptools.HttpRequestParser(self)
        self.peer = "-"
        self.url = b""
        self.headers_size = 0
        self.content_type = b""
        self.expect_continue = False
        self.body: list[bytes] = []
        self.body_size = 0
        self.in_message = False
        self.message_started = 0.0
        self.last_active = 0.0
        self.busy = False
        self.pending: deque[tuple] = deque()
        self.write_paused = False
        self.reading = True
        self.closed = False
        self.aborted = False

    # -- asyncio.Protocol --------------------------------------------------------------

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.server.connections.add(self)
        self.last_active = self.loop.time()
        peer = transport.get_extra_info("peername")
        if peer:
            self.peer = str(peer[0])
        if self.server.shutting_down:
            self.close()

    def connection_lost(self, exc: BaseException | None) -> None:
        self.closed = True
        self.server.connections.discard(self)

    def pause_writing(self) -> None:
        self.write_paused = True
        self._update_reading()

    def resume_writing(self) -> None:
        self.write_paused = False
        self._update_reading()

    def data_received(self, data: bytes) -> None:
        if self.aborted:
            return
        self.last_active = self.loop.time()
        try:
            self.parser.feed_data(data)
        except _Abort:
            pass
        except httptools.HttpParserUpgrade:
            self._fail(400, "protocol upgrades are not supported")
        except httptools.HttpParserError:
            self._fail(400, "malformed HTTP request")

    # -- httptools callbacks -----------------------------------------------------------

    def on_message_begin(self) -> None:
        self.in_message = True
        self.message_started = self.loop.time()
        self.url = b""
        self.headers_size = 0
        self.content_type = b""
        self.expect_continue = False
        self.body = []
        self.body_size = 0

    def on_url(self, url: bytes) -> None:
        self.url += url
        self.headers_size += len(url)
        if self.headers_size > MAX_HEADER_BYTES:
            self._fail(431, "request line and headers are too large")
            raise _Abort

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers_size += len(name) + len(value)
        if self.headers_size > MAX_HEADER_BYTES:
            self._fail(431, "request line and headers are too large")
            raise _Abort
        lowered = name.lower()
        if lowered == b"content-type":
            self.content_type = value
        elif lowered == b"content-length":
            try:
                length = int(value)
            except ValueError:
                length = 0
            if length > self.server.config.max_body_bytes:
                self._too_large()
        elif lowered == b"expect" and value.lower() == b"100-continue":
            self.expect_continue = True
        elif lowered == b"content-encoding" and value.lower() not in (b"identity", b""):
            self._fail(415, "compressed request bodies are not supported; send identity encoding")
            raise _Abort

    def on_headers_complete(self) -> None:
        if self.expect_continue and not self.server.shutting_down:
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def on_body(self, body: bytes) -> None:
        self.body_size += len(body)
        if self.body_size > self.server.config.max_body_bytes:
            self._too_large()
        self.body.append(body)

    def on_message_complete(self) -> None:
        self.in_message = False
        body = b"".join(self.body) if len(self.body) != 1 else self.body[0]
        self.body = []
        request = (
            self.parser.get_method().decode("ascii", "replace"),
            self.url,
            self.content_type.decode("latin-1"),
            body,
            self.parser.should_keep_alive(),
            time.perf_counter(),
        )
        if self.busy:
            self.pending.append(request)
            self._update_reading()
            return
        self._dispatch(request)

    # -- requests ----------------------------------------------------------------------

    def _dispatch(self, request: tuple) -> None:
        method, url, content_type, body, keep_alive, started = request
        path = _path(url)
        server = self.server
        server.handler.metrics.in_flight += 1
        if server.handler.should_offload(path, len(body)) <= server.inline_budget_s:
            response = server.handler.handle(method, path, content_type, body)
            self._respond(method, path, response, keep_alive, started)
            return
        self.busy = True
        self._update_reading()
        future = self.loop.run_in_executor(
            server.executor, server.handler.handle, method, path, content_type, body
        )
        future.add_done_callback(lambda f: self._offloaded(f, method, path, keep_alive, started))

    def _offloaded(
        self, future: asyncio.Future, method: str, path: str, keep_alive: bool, started: float
    ) -> None:
        self.busy = False
        response = future.result()  # handle() never raises
        if self.closed:
            self.server.handler.metrics.in_flight -= 1
            return
        self._respond(method, path, response, keep_alive, started)
        while self.pending and not self.busy and not self.closed:
            self._dispatch(self.pending.popleft())
        self._update_reading()

    def _respond(self, method: str, path: str, response: Any, keep_alive: bool, started: float) -> None:
        server = self.server
        metrics = server.handler.metrics
        metrics.in_flight -= 1
        keep_alive = keep_alive and not server.shutting_down
        headers = [
            b"HTTP/1.1 %d %s\r\n" % (response.status, REASONS.get(response.status, b"Unknown")),
            b"content-type: %s\r\ncontent-length: %d\r\n" % (response.content_type, len(response.body)),
            server.date_header,
        ]
        if response.allow:
            headers.append(b"allow: %s\r\n" % response.allow.encode())
        if not keep_alive:
            headers.append(b"connection: close\r\n")
        headers.append(b"\r\n")
        if method != "HEAD":
            headers.append(response.body)
        self.transport.write(b"".join(headers))
        elapsed = time.perf_counter() - started
        metrics.record(response.endpoint, response.status, elapsed)
        if response.reason is not None:
            metrics.record_error(response.endpoint, response.reason)
        if response.rows:
            metrics.record_inference(response.rows, response.inference_s)
        if response.status >= 500 or (server.access_sample and random.random() < server.access_sample):
            access_log.info(
                '%s "%s %s" %d %d %.3fms',
                self.peer,
                method,
                path[:200],
                response.status,
                len(response.body),
                elapsed * 1000,
            )
        if not keep_alive:
            self.close()

    # -- connection management ---------------------------------------------------------

    @property
    def idle(self) -> bool:
        return not self.busy and not self.in_message and not self.pending

    def check_timeouts(self, now: float) -> None:
        config = self.server.config
        if self.idle and now - self.last_active > config.keepalive_timeout:
            self.close()
        elif self.in_message and now - self.message_started > config.request_timeout:
            self._fail(408, "the request took too long to arrive")

    def close(self) -> None:
        if not self.closed and self.transport is not None:
            self.closed = True
            self.transport.close()

    def _update_reading(self) -> None:
        if self.closed or self.transport is None:
            return
        want = not self.busy and not self.write_paused and not self.pending
        if want != self.reading:
            self.reading = want
            if want:
                self.transport.resume_reading()
            else:
                self.transport.pause_reading()

    def _too_large(self) -> None:
        limit = self.server.config.max_body_bytes
        self._fail(413, f"the request body exceeds {limit} bytes; send smaller batches")
        raise _Abort

    def _fail(self, status: int, message: str) -> None:
        """An error before a request could be handled: answer it and close."""
        if self.aborted or self.closed:
            return
        self.aborted = True
        from mlops_ci.serving.errors import ServingError
        from mlops_ci.serving.protocol import error_body_v2

        body = error_body_v2(ServingError(status, message, "http"))
        head = (
            b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\nconnection: close\r\n\r\n"
            % (
                status,
                REASONS.get(status, b"Error"),
                len(body),
            )
        )
        self.transport.write(head + body)
        metrics = self.server.handler.metrics
        metrics.record("http", status, 0.0)
        metrics.record_error(
            "http", {400: "bad_request", 408: "timeout", 413: "too_large"}.get(status, "http")
        )
        self.close()


def _path(url: bytes) -> str:
    if not url.startswith(b"/"):
        try:
            url = httptools.parse_url(url).path or b"/"
        except httptools.HttpParserInvalidURLError:
            return "/"
    cut = url.find(b"?")
    if cut >= 0:
        url = url[:cut]
    return url.decode("latin-1")


def run_loop(main: Callable[[], Any]) -> Any:
    """Run ``main()`` on uvloop when installed, else on asyncio's default loop."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main())
    return uvloop.run(main())
