"""The server over real HTTP: a `python -m mlops_ci.serving` process on loopback."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time

import pytest
import requests

from tests.helpers import free_port, wait_http
from tests.model_fixtures import example_record, serving_command, v2_request

INFER = "/v2/models/census-income/infer"


@pytest.fixture(scope="module")
def server(census_model_dir, tmp_path_factory):
    port = free_port()
    log_path = tmp_path_factory.mktemp("server") / "server.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            serving_command(
                census_model_dir,
                port,
                "--max-body-bytes",
                "200000",
                "--keepalive-timeout",
                "2",
                "--request-timeout",
                "2",
            ),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    wait_http(url + "/v2/health/ready", timeout_s=30, process=process)
    yield url, port
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=20) == 0, log_path.read_text()


def raw(port: int, data: bytes, *, read_until_close: bool = True, timeout: float = 5.0) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        chunks = []
        try:
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
                if not read_until_close and b"\r\n\r\n" in b"".join(chunks):
                    break
        except TimeoutError:
            pass
    return b"".join(chunks)


def test_ready_live_and_prometheus_metrics(server):
    url, _ = server
    assert requests.get(url + "/v2/health/live").json() == {"live": True}
    assert requests.get(url + "/ping").status_code == 200
    assert requests.post(url + INFER, json=v2_request([example_record()])).status_code == 200
    text = requests.get(url + "/metrics").text
    assert 'mlops_ci_serving_requests_total{endpoint="v2_infer",code="200"}' in text
    assert "mlops_ci_serving_request_duration_seconds_bucket" in text
    assert "mlops_ci_serving_batch_rows_count" in text
    assert "process_resident_memory_bytes" in text


def test_keep_alive_and_pipelined_requests_answer_in_order(server):
    _, port = server
    body = json.dumps({"dataframe_records": [example_record()]}).encode()
    one = (
        b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
        % (len(body), body)
    )
    ping = b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n"
    last = b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    answer = raw(port, one + ping + one + last)
    assert answer.count(b"HTTP/1.1 ") == 4 and answer.count(b"HTTP/1.1 200 OK") == 4
    assert (
        answer.index(b"predictions")
        < answer.index(b'{"ready":true}')
        < answer.rindex(b"predictions")
        < answer.index(b'{"live":true}')
    )


def test_body_larger_than_the_limit_is_413_before_it_is_read(server):
    url, port = server
    response = requests.post(
        url + "/invocations", data=b"x" * 300_000, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413 and "exceeds 200000 bytes" in response.json()["error"]
    # Chunked, so the size is only known while reading.
    chunks = (b"y" * 50_000 for _ in range(6))
    response = requests.post(url + INFER, data=chunks, headers={"Content-Type": "application/json"})
    assert response.status_code == 413


def test_malformed_http_and_huge_headers(server):
    _, port = server
    answer = raw(port, b"NOT HTTP AT ALL\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 400") and b'"error"' in answer
    answer = raw(port, b"GET /ping HTTP/1.1\r\nX-Big: " + b"a" * 70_000 + b"\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 431")


def test_slow_request_times_out_with_408(server):
    _, port = server
    started = time.monotonic()
    answer = raw(port, b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{", timeout=10)
    assert answer.startswith(b"HTTP/1.1 408") and time.monotonic() - started < 8


def test_expect_100_continue(server):
    _, port = server
    body = json.dumps({"dataframe_records": [example_record()]}).encode()
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(
            b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nExpect: 100-continue\r\nContent-Length: %d\r\n\r\n"
            % len(body)
        )
        assert sock.recv(100).startswith(b"HTTP/1.1 100 Continue")
        sock.sendall(body)
        assert sock.recv(65536).startswith(b"HTTP/1.1 200 OK")


def test_sigterm_lets_an_in_flight_request_finish(census_model_dir, tmp_path):
    port = free_port()
    process = subprocess.Popen(
        serving_command(census_model_dir, port), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/v2/health/ready", timeout_s=30, process=process)
        body = json.dumps({"dataframe_records": [example_record()]}).encode()
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            head = (
                b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
                % len(body)
            )
            sock.sendall(head + body[:10])  # the request is in flight
            time.sleep(0.3)
            process.send_signal(signal.SIGTERM)
            time.sleep(0.5)
            with pytest.raises(OSError):  # no new connections once stopping
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
            sock.sendall(body[10:])
            answer = sock.recv(65536)
        assert (
            answer.startswith(b"HTTP/1.1 200 OK")
            and b"connection: close" in answer
            and b"predictions" in answer
        )
        assert process.wait(timeout=20) == 0
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
