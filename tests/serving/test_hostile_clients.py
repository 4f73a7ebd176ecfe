"""Hostile clients against a real `python -m mlops_ci.serving` process on 127.0.0.1.

Each attack runs while a normal client (a keep-alive GET /v2/health/live every 20 ms)
probes the server; the server's resident memory (VmRSS) and the probe's latencies are
printed before, during and after the attack (run with ``-s`` to see them). Assertions are
on status codes, closed connections, memory bounds and that health answered; the latency
bound (p99 < 50 ms) is asserted only by the ``slow`` test at the end. Every attack is
bounded in count and in time, and sends traffic to 127.0.0.1 only.
"""

from __future__ import annotations

import contextlib
import http.client
import re
import resource
import selectors
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import free_port, wait_http
from tests.model_fixtures import serving_command

KIB = 1024
MIB = 1024 * KIB
HEADER_TIMEOUT_S = 2.0
REQUEST_TIMEOUT_S = 5.0
WRITE_TIMEOUT_S = 2.0
LIMITS = [
    "--max-header-bytes",
    str(64 * KIB),
    "--max-headers",
    "100",
    "--max-url-bytes",
    str(8 * KIB),
    "--max-connections",
    "4096",
    "--header-timeout",
    str(HEADER_TIMEOUT_S),
    "--request-timeout",
    str(REQUEST_TIMEOUT_S),
    "--keepalive-timeout",
    "30",
    "--write-timeout",
    str(WRITE_TIMEOUT_S),
    "--write-buffer-bytes",
    str(256 * KIB),
]


# -- the server and the normal client ------------------------------------------------------


def vm_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


class Server:
    def __init__(self, process: subprocess.Popen, port: int, log: Path) -> None:
        self.process = process
        self.port = port
        self.log = log

    @property
    def rss_mb(self) -> float:
        return vm_rss_mb(self.process.pid)


@contextlib.contextmanager
def running_server(model_dir: Path, folder: Path, *flags: str) -> Iterator[Server]:
    port = free_port()
    log_path = folder / f"server-{port}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            serving_command(model_dir, port, "--warmup-runs", "2", *flags), stdout=log, stderr=log
        )
    try:
        wait_http(f"http://127.0.0.1:{port}/v2/health/ready", timeout_s=30, process=process)
        yield Server(process, port, log_path)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


@pytest.fixture(scope="module")
def server(census_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with running_server(census_model_dir, tmp_path_factory.mktemp("hostile"), *LIMITS) as running:
        yield running
    log = running.log.read_text()
    assert running.process.returncode == 0, log[-3000:]
    assert "Traceback" not in log and "Fatal error" not in log, log[-3000:]


class Probe(threading.Thread):
    """The normal client: GET /v2/health/live every 20 ms on a keep-alive connection (a
    new one when the server closed it), and the server's RSS sampled each time.

    Latency counts from when each request was due, so a stall is counted once for every
    request it delayed (not once, as a client that waits before its next request would)."""

    INTERVAL_S = 0.02

    def __init__(self, server: Server) -> None:
        super().__init__(daemon=True)
        self.server = server
        self.phase = "before"  # of the attack: before, during, after
        self.latencies: dict[str, list[float]] = {"before": [], "during": [], "after": []}
        self.failures = 0
        self.rss_peak_mb = server.rss_mb
        self.done = threading.Event()

    def run(self) -> None:
        connection: http.client.HTTPConnection | None = None
        due = time.perf_counter()
        while not self.done.is_set():
            status = None
            for _ in range(2):  # one retry: the server may have closed an idle keep-alive connection
                try:
                    if connection is None:
                        connection = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=5)
                    connection.request("GET", "/v2/health/live")
                    response = connection.getresponse()
                    response.read()
                    status = response.status
                    break
                except (OSError, http.client.HTTPException):
                    if connection is not None:
                        connection.close()
                    connection = None
            finished = time.perf_counter()
            while due <= finished:  # this request, and those that were due while it ran
                if status == 200:
                    self.latencies[self.phase].append((finished - due) * 1000)
                else:
                    self.failures += 1
                due += self.INTERVAL_S
            with contextlib.suppress(OSError, RuntimeError):
                self.rss_peak_mb = max(self.rss_peak_mb, self.server.rss_mb)
            self.done.wait(max(0.0, due - time.perf_counter()))
        if connection is not None:
            connection.close()

    @property
    def latencies_ms(self) -> list[float]:
        """During the attack (milliseconds)."""
        return self.latencies["during"]

    def percentile(self, q: float, phase: str = "during") -> float:
        ordered = sorted(self.latencies[phase])
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


class Watch:
    def __init__(self, name: str, server: Server) -> None:
        self.name = name
        self.server = server
        self.before_mb = server.rss_mb
        self.after_mb = 0.0
        self.probe = Probe(server)

    @property
    def growth_mb(self) -> float:
        return self.probe.rss_peak_mb - self.before_mb


@contextlib.contextmanager
def watched(name: str, server: Server) -> Iterator[Watch]:
    """Print RSS and health-check latency before, during and after an attack (0.3 s of
    probing on either side of it)."""
    watch = Watch(name, server)
    watch.probe.start()
    time.sleep(0.3)
    watch.probe.phase = "during"
    try:
        yield watch
    finally:
        # At least one health check once the attack began (a short attack may end first).
        deadline = time.monotonic() + 5
        while not watch.probe.latencies_ms and not watch.probe.failures and time.monotonic() < deadline:
            time.sleep(0.005)
        watch.probe.phase = "after"
        time.sleep(0.3)
        watch.probe.done.set()
        watch.probe.join(timeout=10)
        watch.after_mb = server.rss_mb
        probe = watch.probe
        print(
            f"\n[{name}] RSS before {watch.before_mb:.1f} MB, peak during {probe.rss_peak_mb:.1f} MB, "
            f"after {watch.after_mb:.1f} MB; health p99 before {probe.percentile(0.99, 'before'):.1f} ms, "
            f"during {probe.percentile(0.99):.1f} ms (p50 {probe.percentile(0.5):.1f}, max "
            f"{max(probe.latencies_ms, default=float('nan')):.1f}, {len(probe.latencies_ms)} answered, "
            f"{probe.failures} failed), after {probe.percentile(0.99, 'after'):.1f} ms"
        )
    assert watch.probe.latencies_ms, f"{name}: the health check never answered"
    assert watch.probe.failures == 0, f"{name}: {watch.probe.failures} health checks failed"


# -- raw socket helpers ----------------------------------------------------------------------


def readable(socks: list[socket.socket], timeout_s: float) -> list[socket.socket]:
    """The sockets with something to read within ``timeout_s``. epoll, not select(): select
    cannot watch a descriptor numbered 1024 or more, which a thousand connections reach."""
    with selectors.DefaultSelector() as selector:
        for sock in socks:
            selector.register(sock, selectors.EVENT_READ)
        return [key.fileobj for key, _ in selector.select(timeout_s)]


def read_until_closed(sock: socket.socket, timeout_s: float) -> tuple[bytes, bool]:
    """What the server sends until it closes the connection (True) or ``timeout_s`` passes."""
    deadline = time.monotonic() + timeout_s
    chunks = []
    while time.monotonic() < deadline:
        ready = readable([sock], max(0.0, deadline - time.monotonic()))
        if not ready:
            break
        try:
            chunk = sock.recv(65536)
        except (ConnectionResetError, TimeoutError):
            return b"".join(chunks), True
        if not chunk:
            return b"".join(chunks), True
        chunks.append(chunk)
    return b"".join(chunks), False


def exchange(port: int, data: bytes, timeout_s: float = 5.0) -> tuple[bytes, bool]:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as sock:
        sock.sendall(data)
        return read_until_closed(sock, timeout_s)


def statuses(answer: bytes) -> list[int]:
    """The status of each response in ``answer`` (responses follow each other directly)."""
    return [int(code) for code in re.findall(rb"HTTP/1\.1 (\d{3}) ", answer)]


# -- attacks (each bounded in count and time) ----------------------------------------------


def unfinished_header(port: int, total: int, *, seconds: float = 20.0) -> tuple[bytes, int]:
    """Stream one header value of ``total`` bytes, never ending the head; stop as soon as
    the server answers. Returns the answer and the bytes sent."""
    with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
        sock.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\nX-Big: ")
        piece = b"a" * (64 * KIB)
        sent = 0
        deadline = time.monotonic() + seconds
        while sent < total and time.monotonic() < deadline:
            if readable([sock], 0):
                break
            try:
                sock.sendall(piece)
            except OSError:
                break
            sent += len(piece)
        answer, _ = read_until_closed(sock, 3.0)
    return answer, sent


def pipelined_flood(port: int, *, seconds: float, request: bytes) -> tuple[bool, int]:
    """Send pipelined requests as fast as the server takes them and never read. Returns
    whether the server closed the connection within ``seconds`` and the bytes sent."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    sock.setblocking(False)
    batch = request * 500
    sent = 0
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            try:
                sent += sock.send(batch)
            except BlockingIOError:
                time.sleep(0.05)
            except OSError:
                return True, sent
        return False, sent
    finally:
        sock.close()


def open_idle(port: int, count: int) -> list[socket.socket]:
    return [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(count)]


def slowloris(
    port: int, *, count: int, start: bytes, drip: bytes, interval_s: float, seconds: float
) -> list[tuple[bytes, float | None]]:
    """``count`` connections send ``start`` and then ``drip`` every ``interval_s``; for each,
    what the server answered and after how many seconds it closed (None: still open)."""
    began = time.monotonic()
    socks = open_idle(port, count)
    results: list[tuple[bytes, float | None]] = [(b"", None)] * count
    open_ = set(range(count))
    for sock in socks:
        sock.sendall(start)
        sock.setblocking(False)
    answers = [b""] * count
    try:
        while open_ and time.monotonic() - began < seconds:
            ready = readable([socks[i] for i in open_], interval_s)
            for sock in ready:
                i = socks.index(sock)
                try:
                    chunk = sock.recv(65536)
                except OSError:
                    chunk = b""
                answers[i] += chunk
                if not chunk:
                    open_.discard(i)
                    results[i] = (answers[i], time.monotonic() - began)
            for i in list(open_):
                with contextlib.suppress(OSError):
                    socks[i].send(drip)
        for i in open_:
            results[i] = (answers[i], None)
    finally:
        for sock in socks:
            sock.close()
    return results


SMUGGLING = {
    "content-length and transfer-encoding": b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "two content-lengths": b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 40\r\n\r\n",
    "a content-length list": b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 5\r\n\r\n",
    "a signed content-length": b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\n",
    "a hex content-length": b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Length: 0x5\r\n\r\n",
    "a chunk size that is not hex": b"POST /invocations HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"zz\r\nabc\r\n0\r\n\r\n",
    "a negative chunk size": b"POST /invocations HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\n",
    "an overflowing chunk size": b"POST /invocations HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"fffffffffffffffff1\r\n",
    "an unknown transfer coding": b"POST /invocations HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n",
    "chunked not last": b"POST /invocations HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\n\r\n",
    "two transfer-encodings": b"POST /invocations HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
    b"Transfer-Encoding: identity\r\n\r\n",
    "space before the colon": b"POST /invocations HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\n\r\n",
    "obs-fold": b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\nX-Folded: a\r\n b\r\n\r\n",
    "obs-fold of transfer-encoding": b"POST /invocations HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:\r\n chunked\r\n\r\n",
    "a bare LF in a header": b"GET /v2/health/live HTTP/1.1\r\nHost: x\nX-A: b\r\n\r\n",
}
SMUGGLED = b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n"


# -- the suite ---------------------------------------------------------------------------------


def test_unfinished_64_mib_header_is_431_with_bounded_memory(server):
    with watched("unfinished 64 MiB header", server) as watch:
        answer, sent = unfinished_header(server.port, 64 * MIB)
    print(f"  sent {sent / MIB:.1f} MiB before the answer {answer[:40]!r}")
    assert statuses(answer) == [431]
    assert sent <= 4 * MIB, "the server read far past the header limit before answering"
    assert watch.growth_mb < 32


def test_head_size_limit_both_sides(server):
    line = b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n"
    fits = line + b"X-Pad: " + b"a" * (60 * KIB) + b"\r\nConnection: close\r\n\r\n"
    answer, closed = exchange(server.port, fits)
    assert statuses(answer) == [200] and closed
    too_big = line + b"X-Pad: " + b"a" * (65 * KIB) + b"\r\n\r\n"
    answer, closed = exchange(server.port, too_big)
    assert statuses(answer) == [431] and closed
    assert len(answer) < 1024


def test_header_count_limit_both_sides_and_30000_headers(server):
    def head(count: int) -> bytes:
        return b"GET /v2/health/live HTTP/1.1\r\n" + b"a:b\r\n" * (count - 1) + b"Connection: close\r\n\r\n"

    answer, _ = exchange(server.port, head(100))
    assert statuses(answer) == [200]
    answer, closed = exchange(server.port, head(101))
    assert statuses(answer) == [431] and closed
    with watched("30,000 headers", server):
        answer, closed = exchange(server.port, head(30_000))
    assert statuses(answer) == [431] and closed


def test_url_length_limit_both_sides(server):
    def request(length: int) -> bytes:
        path = b"/v2/health/live?" + b"q" * (length - len(b"/v2/health/live?"))
        return b"GET " + path + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"

    answer, _ = exchange(server.port, request(8 * KIB))
    assert statuses(answer) == [200]
    answer, closed = exchange(server.port, request(8 * KIB + 1))
    assert statuses(answer) == [414] and closed
    # An unfinished request line longer than the limit is answered before it ends.
    answer, closed = exchange(server.port, b"GET /" + b"q" * (100 * KIB))
    assert statuses(answer) == [414] and closed


def test_pipelined_flood_from_a_client_that_never_reads_is_closed(server):
    request = b"GET /openapi.json HTTP/1.1\r\nHost: x\r\n\r\n"
    with watched("pipelined flood, never read", server) as watch:
        outcomes = [
            pipelined_flood(server.port, seconds=WRITE_TIMEOUT_S + 8, request=request) for _ in range(2)
        ]
    for closed, sent in outcomes:
        print(f"  sent {sent / MIB:.1f} MiB of requests; closed by the server: {closed}")
    assert all(closed for closed, _ in outcomes)
    assert all(sent < 8 * MIB for _, sent in outcomes), "the server kept reading a client that does not read"
    assert watch.growth_mb < 32


def test_a_client_that_reads_late_but_within_the_write_timeout_gets_every_answer(server):
    count = 300
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", server.port))
    try:
        sock.sendall(b"GET /openapi.json HTTP/1.1\r\nHost: x\r\n\r\n" * count)
        time.sleep(WRITE_TIMEOUT_S / 2)  # not reading: the server stops reading this connection
        answer = b""
        deadline = time.monotonic() + 20
        while answer.count(b"HTTP/1.1 200 OK") < count and time.monotonic() < deadline:
            ready = readable([sock], 1.0)
            if ready:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                answer += chunk
    finally:
        sock.close()
    print(f"\n  {len(answer) / MIB:.1f} MiB of answers read late")
    assert len(answer) > 2 * 256 * KIB  # more than the write buffer: reading was paused
    assert statuses(answer) == [200] * count


def test_buffered_body_budget_both_sides(census_model_dir, tmp_path):
    flags = ["--max-body-bytes", "200000", "--max-buffered-bytes", "300000"]
    with running_server(census_model_dir, tmp_path, *LIMITS, *flags) as small:

        def head(length: int) -> bytes:
            return (
                b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"Content-Length: %d\r\n\r\n" % length
            )

        with socket.create_connection(("127.0.0.1", small.port), timeout=5) as holder:
            holder.sendall(head(150_000) + b" " * 149_999)  # held: one byte short of its body
            time.sleep(0.3)
            # 149,999 + 150,001 = 300,000 bytes: within the budget (a 400 for the JSON).
            answer, _ = exchange(small.port, head(150_001) + b" " * 150_001 + SMUGGLED)
            assert statuses(answer) == [400, 200], answer[:600]
            # 149,999 + 150,002: over it.
            answer, closed = exchange(small.port, head(150_002) + b" " * 150_002)
            assert statuses(answer) == [503] and closed
            holder.sendall(b" ")
            answer, _ = read_until_closed(holder, 1.0)
            assert statuses(answer) == [400]
        # Once the holder is answered its bytes are released.
        answer, _ = exchange(small.port, head(150_002) + b" " * 150_002 + SMUGGLED)
        assert statuses(answer) == [400, 200]


def test_a_thousand_idle_connections_do_not_lock_out_a_normal_client(server):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    count = 1000
    if soft < count + 200:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, count + 200), hard))
        count = min(count, resource.getrlimit(resource.RLIMIT_NOFILE)[0] - 200)
    with watched(f"{count} idle connections", server) as watch:
        socks = open_idle(server.port, count)
        try:
            time.sleep(1.0)
            answer, _ = exchange(server.port, b"GET /v2/health/ready HTTP/1.1\r\nConnection: close\r\n\r\n")
            assert statuses(answer) == [200]
        finally:
            for sock in socks:
                sock.close()
    assert watch.growth_mb < 64


def test_slowloris_on_headers_is_closed_by_the_header_timeout(server):
    with watched("slowloris on headers (50 connections)", server):
        results = slowloris(
            server.port,
            count=50,
            start=b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n",
            drip=b"X-a: b\r\n",
            interval_s=0.25,
            seconds=HEADER_TIMEOUT_S + 6,
        )
    closed_after = [after for _, after in results]
    print(f"  closed after {min(closed_after, default=0)}..{max(closed_after, default=0)} s")
    assert all(after is not None and after < HEADER_TIMEOUT_S + 2.5 for after in closed_after)
    assert all(statuses(answer) == [408] for answer, _ in results)


def test_slowloris_on_the_body_is_closed_by_the_request_timeout(server):
    with watched("slowloris on the body (50 connections)", server):
        results = slowloris(
            server.port,
            count=50,
            start=b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 100000\r\n\r\n{",
            drip=b" ",
            interval_s=0.25,
            seconds=REQUEST_TIMEOUT_S + 6,
        )
    closed_after = [after for _, after in results]
    print(f"  closed after {min(closed_after, default=0)}..{max(closed_after, default=0)} s")
    assert all(after is not None and after < REQUEST_TIMEOUT_S + 2.5 for after in closed_after)
    assert all(statuses(answer) == [408] for answer, _ in results)


@pytest.mark.parametrize("name", list(SMUGGLING))
def test_request_smuggling_is_400_and_close(server, name):
    answer, closed = exchange(server.port, SMUGGLING[name] + SMUGGLED)
    assert statuses(answer) == [400], answer[:300]
    assert closed
    assert len(answer) < 1024


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
        b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n",
        b"CONNECT example.org:443 HTTP/1.1\r\nHost: example.org:443\r\n\r\n",
        b"POST /invocations HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n"
        b"Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}",
    ],
    ids=["websocket", "h2c", "connect", "upgrade-with-body"],
)
def test_upgrade_and_connect_get_one_response_and_close(server, request_bytes):
    answer, closed = exchange(server.port, request_bytes + SMUGGLED)
    assert len(statuses(answer)) == 1, answer[:500]
    assert closed
    if b"Content-Length" in request_bytes:  # its body would be read as another protocol
        assert statuses(answer) == [400] and b"Upgrade" in answer


def test_connection_cap_closes_the_oldest_idle_connection(census_model_dir, tmp_path):
    with running_server(
        census_model_dir, tmp_path, *LIMITS, "--max-connections", "20", "--header-timeout", "30"
    ) as small:
        socks = open_idle(small.port, 19)  # with the probe's own connection: 20, the cap
        try:
            with watched("connection cap 20", small):
                time.sleep(0.3)
                assert not any(read_until_closed(sock, 0.05)[1] for sock in socks), "closed below the cap"
                socks += open_idle(small.port, 5)  # over the cap: the oldest idle ones make room
                time.sleep(0.3)
                closed = [read_until_closed(sock, 0.05)[1] for sock in socks]
                assert closed == [True] * 5 + [False] * 19
            # Connections in the middle of a request are not closed to make room: when no
            # connection is idle, a new one is answered 503 and closed.
            socks += open_idle(small.port, 1)
            for sock in socks[5:]:
                sock.sendall(b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n{")
            time.sleep(0.3)
            answer, closed_now = exchange(small.port, b"GET /v2/health/live HTTP/1.1\r\n\r\n")
            assert statuses(answer) == [503] and closed_now, answer
            assert not any(read_until_closed(sock, 0.05)[1] for sock in socks[5:])
        finally:
            for sock in socks:
                sock.close()


@pytest.mark.slow
def test_a_normal_client_keeps_p99_under_50_ms_through_the_attacks(server):
    with watched("all attacks, latency", server) as watch:
        unfinished_header(server.port, 64 * MIB)
        pipelined_flood(
            server.port, seconds=WRITE_TIMEOUT_S + 3, request=b"GET /openapi.json HTTP/1.1\r\n\r\n"
        )
        socks = open_idle(server.port, 500)
        slowloris(
            server.port,
            count=20,
            start=b"GET / HTTP/1.1\r\n",
            drip=b"X-a: b\r\n",
            interval_s=0.25,
            seconds=HEADER_TIMEOUT_S + 3,
        )
        for sock in socks:
            sock.close()
    assert watch.probe.percentile(0.99) < 50
