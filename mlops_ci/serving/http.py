"""The HTTP/1.1 transport: an asyncio protocol over httptools' parser (uvloop when
installed). Measured against Starlette on uvicorn for the same handler it serves about
twice the requests per second (benchmarks/serving_benchmark.py), because a request costs
one parser callback chain and one write - no ASGI messages, no per-request tasks.

What it does: keep-alive and pipelining (responses in request order), ``Expect:
100-continue``, request size limits (413 before the body is read when Content-Length
says so), idle, header, request and write timeouts, requests expected to take long handed
to a thread pool (health checks stay responsive), sampled access logging, and graceful
shutdown: on SIGTERM the listener closes, readiness turns false, idle connections close,
in-flight requests finish (up to a timeout) and get ``connection: close``.

Hostile clients get bounded memory, per connection and in total:

- the head (request line and headers) is counted while it arrives, so an unfinished
  header is answered 431 as soon as it passes ``max_header_bytes`` (plus at most one
  16 KiB parser slice); more than ``max_headers`` fields: 431; a longer target: 414;
- data is parsed in slices of at most ``FEED_SLICE`` bytes, and parsing stops (the rest
  kept as raw bytes, reading paused) while a request runs, while answers wait in order,
  or while the client does not read: unsent responses above ``write_buffer_bytes`` pause
  reading, and after ``write_timeout`` seconds of that the connection is cut;
- at ``max_connections`` a new connection closes the longest-idle one (or gets 503);
  request bodies held by all connections together stay under ``max_buffered_bytes``;
- anything llhttp rejects (Content-Length with Transfer-Encoding, duplicate or signed
  lengths, bad chunk sizes, obs-fold, bare LF) and any transfer coding but ``chunked``:
  400 and close; an Upgrade or CONNECT request gets one answer and the connection closes.
"""

from __future__ import annotations

import asyncio
import logging
import random
import resource
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

SWEEP_INTERVAL_S = 1.0
FEED_SLICE = 16 * 1024
RESERVED_FDS = 64  # files the process needs besides its connections (model, logs, pipes)
REFUSED_LINGER_S = 0.5
REASONS = {
    100: b"Continue",
    200: b"OK",
    400: b"Bad Request",
    404: b"Not Found",
    405: b"Method Not Allowed",
    408: b"Request Timeout",
    413: b"Content Too Large",
    414: b"URI Too Long",
    415: b"Unsupported Media Type",
    422: b"Unprocessable Content",
    431: b"Request Header Fields Too Large",
    500: b"Internal Server Error",
    503: b"Service Unavailable",
}
ERROR_REASONS = {
    400: "bad_request",
    408: "timeout",
    413: "too_large",
    414: "too_large",
    431: "too_large",
    503: "overloaded",
}
JSON = b"application/json"


class _Abort(Exception):
    """Raised from a parser callback to stop parsing after an error was answered."""


def connection_cap(wanted: int) -> int:
    """``wanted``, lowered to what the open-files limit allows (after raising the soft
    limit towards the hard one when needed)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = wanted + RESERVED_FDS
    if soft != resource.RLIM_INFINITY and soft < needed:
        target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return wanted
    cap = max(1, soft - RESERVED_FDS)
    log.warning(
        "the open-files limit (%d) allows %d connections, not %d; raise `ulimit -n`", soft, cap, wanted
    )
    return cap


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
        self.max_connections = config.max_connections
        self.buffered = 0  # request body bytes held by all connections
        self.accepted = 0

    async def start(self, sock: Any = None) -> tuple[str, int]:
        self.loop = asyncio.get_running_loop()
        self.max_connections = connection_cap(self.config.max_connections)
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

    def make_room(self) -> bool:
        """At the connection cap: close the longest-idle connection (one between requests
        or still sending a head); False when every connection is in a request."""
        if len(self.connections) < self.max_connections:
            return True
        victim = min(
            (c for c in self.connections if c.evictable),
            key=lambda c: (c.last_active, c.serial),
            default=None,
        )
        if victim is None:
            return False
        self.connections.discard(victim)
        victim.close(abort=True)
        return True

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
        "serial",
        "config",
        "loop",
        "transport",
        "parser",
        "peer",
        "url",
        "content_type",
        "expect_continue",
        "body",
        "body_size",
        "held",
        "in_message",
        "head_phase",
        "head_raw",
        "head_known",
        "header_count",
        "completed",
        "has_body",
        "message_started",
        "last_active",
        "busy",
        "pending",
        "unparsed",
        "write_paused",
        "paused_at",
        "reading",
        "closed",
        "closed_at",
        "failed",
    )

    def __init__(self, server: HttpServer) -> None:
        self.server = server
        server.accepted += 1
        self.serial = server.accepted  # the order of connections accepted in one loop tick
        self.config = server.config
        self.loop = server.loop
        self.transport: Any = None
        self.parser = httptools.HttpRequestParser(self)
        self.peer = "-"
        self.url = b""
        self.content_type = b""
        self.expect_continue = False
        self.body: list[bytes] = []
        self.body_size = 0
        self.held = 0  # body bytes this connection counts in server.buffered
        self.in_message = False
        self.head_phase = True  # waiting for, or reading, a request line and headers
        self.head_raw = 0  # bytes received while in the head phase
        self.head_known = 0  # bytes of the head the parser has reported
        self.header_count = 0
        self.completed = 0  # requests parsed on this connection
        self.has_body = False
        self.message_started = 0.0
        self.last_active = 0.0
        self.busy = False
        self.pending: deque[tuple] = deque()
        self.unparsed = b""
        self.write_paused = False
        self.paused_at = 0.0
        self.reading = True
        self.closed = False
        self.closed_at = 0.0
        self.failed = False  # an error was answered (or queued): parse nothing more

    # -- asyncio.Protocol --------------------------------------------------------------

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        server = self.server
        self.last_active = self.message_started = self.loop.time()
        if not server.make_room():
            self._refuse()
            return
        server.connections.add(self)
        transport.set_write_buffer_limits(high=self.config.write_buffer_bytes)
        peer = transport.get_extra_info("peername")
        if peer:
            self.peer = str(peer[0])
        if server.shutting_down:
            self.close()

    def connection_lost(self, exc: BaseException | None) -> None:
        self.closed = True
        self.server.connections.discard(self)
        self._release(self.held)
        self.pending.clear()
        self.unparsed = b""

    def pause_writing(self) -> None:
        self.write_paused = True
        self.paused_at = self.loop.time()
        self._update_reading()

    def resume_writing(self) -> None:
        self.write_paused = False
        self._resume()

    def data_received(self, data: bytes) -> None:
        if self.failed or self.closed:
            return
        self.last_active = self.loop.time()
        if self.unparsed or self.busy or self.write_paused or self.pending:
            # Reading is paused (or about to be): keep the bytes, parse them later.
            self.unparsed += data
            self._update_reading()
        elif len(data) <= FEED_SLICE:
            self._parse(data)
        else:
            self._feed(data)

    # -- parsing -----------------------------------------------------------------------

    def _must_wait(self) -> bool:
        return self.busy or self.write_paused or bool(self.pending)

    def _feed(self, data: bytes) -> None:
        """Parse ``data`` slice by slice; stop (keeping the rest) when a request must be
        answered first or the client is not reading."""
        size = len(data)
        if size <= FEED_SLICE:
            self._parse(data)
            return
        view = memoryview(data)
        offset = 0
        while offset < size and not self.failed and not self.closed:
            if self._must_wait():
                self.unparsed = bytes(view[offset:])
                self._update_reading()
                return
            piece = view[offset : offset + FEED_SLICE]
            offset += len(piece)
            self._parse(piece)

    def _parse(self, piece: Any) -> None:
        in_head = self.head_phase
        completed = self.completed
        try:
            self.parser.feed_data(piece)
        except _Abort:
            return
        except httptools.HttpParserUpgrade:
            self._upgraded()
            return
        except httptools.HttpParserError:
            self._fail(400, "malformed HTTP request")
            return
        if self.head_phase:
            if in_head and self.completed == completed:
                self.head_raw += len(piece)  # every byte of this piece belongs to the head
            if max(self.head_raw, self.head_known) > self.config.max_header_bytes:
                self._fail(431, self._head_message())

    def _upgraded(self) -> None:
        """The parser stops at an Upgrade or CONNECT request (answered, without keep-alive,
        by on_message_complete): the bytes after it are another protocol; read no more."""
        self.failed = True
        self.unparsed = b""
        self._update_reading()

    def _resume(self) -> None:
        """Answer queued requests, then parse kept bytes, while the client keeps up."""
        while self.pending and not self.busy and not self.write_paused and not self.closed:
            self._dispatch(self.pending.popleft())
        if self.unparsed and not self._must_wait() and not self.failed and not self.closed:
            data, self.unparsed = self.unparsed, b""
            if self.in_message:
                self.message_started = self.loop.time()  # its time ran while we did not read
            self._feed(data)
        self._update_reading()

    # -- httptools callbacks -----------------------------------------------------------

    def on_message_begin(self) -> None:
        self.in_message = True
        self.head_phase = True
        self.message_started = self.loop.time()
        self.url = b""
        self.head_raw = 0
        self.head_known = 0
        self.header_count = 0
        self.content_type = b""
        self.expect_continue = False
        self.has_body = False
        self.body = []
        self.body_size = 0

    def on_url(self, url: bytes) -> None:
        self.url += url
        self.head_known += len(url)
        if len(self.url) > self.config.max_url_bytes:
            self._fail(414, f"the request target is longer than {self.config.max_url_bytes} bytes")
            raise _Abort

    def on_header(self, name: bytes, value: bytes) -> None:
        self.header_count += 1
        self.head_known += len(name) + len(value) + 4
        if self.header_count > self.config.max_headers:
            self._fail(431, f"the request has more than {self.config.max_headers} header fields")
            raise _Abort
        if self.head_known > self.config.max_header_bytes:
            self._head_too_large()
        lowered = name.lower()
        if lowered == b"content-type":
            self.content_type = value
        elif lowered == b"content-length":
            try:
                length = int(value)
            except ValueError:
                length = 0
            self.has_body = length > 0
            if length > self.config.max_body_bytes:
                self._too_large()
        elif lowered == b"transfer-encoding":
            if value.strip().lower() != b"chunked":
                self._fail(400, "the only transfer coding accepted is chunked")
                raise _Abort
            self.has_body = True
        elif lowered == b"expect" and value.lower() == b"100-continue":
            self.expect_continue = True
        elif lowered == b"content-encoding" and value.lower() not in (b"identity", b""):
            self._fail(415, "compressed request bodies are not supported; send identity encoding")
            raise _Abort

    def on_headers_complete(self) -> None:
        self.head_phase = False
        if self.has_body and self.parser.should_upgrade():
            # llhttp would hand the body over as another protocol's bytes.
            self._fail(400, "protocol upgrades are not supported; send the request without Upgrade")
            raise _Abort
        if self.expect_continue and not self.server.shutting_down:
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def on_body(self, body: bytes) -> None:
        size = len(body)
        self.body_size += size
        if self.body_size > self.config.max_body_bytes:
            self._too_large()
        server = self.server
        if server.buffered + size > self.config.max_buffered_bytes:
            self._fail(503, "the server holds too many request bytes; retry shortly")
            raise _Abort
        server.buffered += size
        self.held += size
        self.body.append(body)

    def on_message_complete(self) -> None:
        self.in_message = False
        self.head_phase = True
        self.head_raw = 0
        self.completed += 1
        body = b"".join(self.body) if len(self.body) != 1 else self.body[0]
        self.body = []
        request = (
            self.parser.get_method().decode("ascii", "replace"),
            self.url,
            self.content_type.decode("latin-1"),
            body,
            self.parser.should_keep_alive() and not self.parser.should_upgrade(),
            time.perf_counter(),
        )
        if self._must_wait():
            self.pending.append(request)
            self._update_reading()
            return
        self._dispatch(request)

    # -- requests ----------------------------------------------------------------------

    def _dispatch(self, request: tuple) -> None:
        if request[0] is None:  # an error queued behind earlier requests
            self._write_error(request[1], request[2])
            return
        method, url, content_type, body, keep_alive, started = request
        path = _path(url)
        server = self.server
        server.handler.metrics.in_flight += 1
        if server.handler.should_offload(path, len(body)) <= server.inline_budget_s:
            response = server.handler.handle(method, path, content_type, body)
            self._respond(method, path, response, keep_alive, started, len(body))
            return
        self.busy = True
        self._update_reading()
        future = self.loop.run_in_executor(
            server.executor, server.handler.handle, method, path, content_type, body
        )
        future.add_done_callback(lambda f: self._offloaded(f, method, path, keep_alive, started, len(body)))

    def _offloaded(
        self, future: asyncio.Future, method: str, path: str, keep_alive: bool, started: float, size: int
    ) -> None:
        self.busy = False
        response = future.result()  # handle() never raises
        if self.closed:
            self.server.handler.metrics.in_flight -= 1
            return
        self._respond(method, path, response, keep_alive, started, size)
        self._resume()

    def _respond(
        self, method: str, path: str, response: Any, keep_alive: bool, started: float, size: int
    ) -> None:
        server = self.server
        self._release(size)
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
            self.failed = True  # whatever follows on this connection is not read
            self.pending.clear()
            self.close()

    # -- connection management ---------------------------------------------------------

    @property
    def idle(self) -> bool:
        return not self.busy and not self.in_message and not self.pending and not self.unparsed

    @property
    def evictable(self) -> bool:
        """Between requests, or still sending a head: closing it loses no answer."""
        return not self.busy and not self.pending and not self.unparsed and self.head_phase

    def check_timeouts(self, now: float) -> None:
        config = self.config
        if (self.write_paused and now - self.paused_at > config.write_timeout) or (
            self.closed and now - self.closed_at > config.write_timeout
        ):
            # The client does not read what it asked for: nothing more can be sent to it.
            self.server.handler.metrics.record_error("http", "write_timeout")
            self.close(abort=True)
        elif self.closed or not self.reading:
            return  # the timers below measure the client, not a request being answered
        elif self.in_message:
            limit = config.header_timeout if self.head_phase else config.request_timeout
            if now - self.message_started > limit:
                part = "headers" if self.head_phase else "request"
                self._fail(408, f"the {part} took too long to arrive")
        elif self.idle:
            limit = config.keepalive_timeout if self.completed else config.header_timeout
            if now - self.last_active > limit:
                self.close()

    def close(self, *, abort: bool = False) -> None:
        if self.transport is None:
            return
        if abort:
            self.closed = True
            self.transport.abort()
        elif not self.closed:
            self.closed = True
            self.closed_at = self.loop.time()
            self.transport.close()

    def _release(self, size: int) -> None:
        size = min(size, self.held)
        self.held -= size
        self.server.buffered -= size

    def _update_reading(self) -> None:
        if self.closed or self.transport is None:
            return
        want = not self._must_wait() and not self.unparsed and not self.failed
        if want != self.reading:
            self.reading = want
            if want:
                self.transport.resume_reading()
            else:
                self.transport.pause_reading()

    def _refuse(self) -> None:
        """Over the connection cap with every connection in a request: answer 503, close."""
        self.failed = True
        self.transport.write(_error_response(503, "the server has too many open connections; retry shortly"))
        self._count_error(503, "overloaded")
        self.loop.call_later(REFUSED_LINGER_S, self.transport.close)

    def _head_message(self) -> str:
        return f"the request line and headers exceed {self.config.max_header_bytes} bytes"

    def _head_too_large(self) -> None:
        self._fail(431, self._head_message())
        raise _Abort

    def _too_large(self) -> None:
        limit = self.config.max_body_bytes
        self._fail(413, f"the request body exceeds {limit} bytes; send smaller batches")
        raise _Abort

    def _fail(self, status: int, message: str) -> None:
        """An error before a request could be handled: answer it (after the answers to the
        requests before it) and close."""
        if self.failed or self.closed:
            return
        self.failed = True
        self.unparsed = b""
        if self.busy or self.pending:
            self.pending.append((None, status, message))
            self._update_reading()
            return
        self._write_error(status, message)

    def _write_error(self, status: int, message: str) -> None:
        self.transport.write(_error_response(status, message))
        self._count_error(status, ERROR_REASONS.get(status, "http"))
        self.pending.clear()
        self.close()

    def _count_error(self, status: int, reason: str) -> None:
        metrics = self.server.handler.metrics
        metrics.record("http", status, 0.0)
        metrics.record_error("http", reason)


def _error_response(status: int, message: str) -> bytes:
    from mlops_ci.serving.errors import ServingError
    from mlops_ci.serving.protocol import error_body_v2

    body = error_body_v2(ServingError(status, message, "http"))
    return (
        b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\nconnection: close\r\n\r\n%s"
        % (status, REASONS.get(status, b"Error"), len(body), body)
    )


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
