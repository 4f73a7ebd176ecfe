"""Property-based fuzzing: whatever a client sends, the server answers with JSON and never
with a 5xx. Runs in-process against the same handler the HTTP transport calls, plus raw
bytes against a real server process."""

from __future__ import annotations

import json
import signal
import socket
import subprocess

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers import free_port, wait_http
from tests.model_fixtures import CATEGORICAL, NUMERIC, serving_command

NAMES = st.sampled_from([*NUMERIC, *CATEGORICAL, "education_num", "salary", "", "x" * 300])
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False),
    st.text(max_size=20),
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
DATATYPES = st.sampled_from(["FP32", "FP64", "INT64", "BYTES", "BOOL", "FP16", "UINT8", "STRING", 5])
TENSOR = st.fixed_dictionaries(
    {
        "name": NAMES,
        "datatype": DATATYPES,
        "shape": st.lists(st.integers(-1, 4), max_size=3),
        "data": st.one_of(st.lists(SCALARS, max_size=6), JSON_VALUES),
    },
    optional={"parameters": JSON_VALUES},
)
V2_BODIES = st.one_of(
    JSON_VALUES,
    st.fixed_dictionaries(
        {"inputs": st.lists(TENSOR, max_size=16)}, optional={"id": JSON_VALUES, "outputs": JSON_VALUES}
    ),
)
RECORD = st.dictionaries(NAMES, SCALARS, max_size=16)
MLFLOW_BODIES = st.one_of(
    JSON_VALUES,
    st.fixed_dictionaries({"dataframe_records": st.one_of(st.lists(RECORD, max_size=3), JSON_VALUES)}),
    st.fixed_dictionaries(
        {
            "dataframe_split": st.fixed_dictionaries(
                {
                    "columns": st.lists(NAMES, max_size=16),
                    "data": st.lists(st.lists(SCALARS, max_size=16), max_size=3),
                }
            )
        }
    ),
    st.fixed_dictionaries(
        {"inputs": st.one_of(st.dictionaries(NAMES, st.lists(SCALARS, max_size=3), max_size=16), JSON_VALUES)}
    ),
    st.fixed_dictionaries(
        {"instances": st.one_of(st.lists(RECORD, max_size=3), JSON_VALUES)}, optional={"params": JSON_VALUES}
    ),
)
# The number of examples and the randomisation come from the profile (tests/conftest.py:
# "ci" under CI=true is derandomised; HYPOTHESIS_PROFILE=thorough for a long search).
FUZZ = settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def check(response) -> None:
    assert 200 <= response.status < 500, response.body[:300]
    json.loads(response.body)


@FUZZ
@given(body=V2_BODIES)
def test_v2_infer_never_answers_5xx(census_app, body):
    check(
        census_app.handle(
            "POST", "/v2/models/census-income/infer", "application/json", json.dumps(body).encode()
        )
    )


@FUZZ
@given(body=MLFLOW_BODIES)
def test_invocations_never_answer_5xx(census_app, body):
    check(census_app.handle("POST", "/invocations", "application/json", json.dumps(body).encode()))


@FUZZ
@given(
    body=st.binary(max_size=200),
    path=st.sampled_from(["/invocations", "/v2/models/census-income/infer"]),
    ctype=st.sampled_from(["application/json", "text/csv", ""]),
)
def test_raw_bodies_never_answer_5xx(census_app, body, path, ctype):
    check(census_app.handle("POST", path, ctype, body))


@FUZZ
@given(path=st.text(max_size=60), method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS"]))
def test_any_path_and_method_is_answered_without_5xx(census_app, path, method):
    check(census_app.handle(method, "/" + path, "", b""))


@pytest.fixture(scope="module")
def live_server(census_model_dir):
    port = free_port()
    process = subprocess.Popen(
        serving_command(census_model_dir, port), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    wait_http(f"http://127.0.0.1:{port}/v2/health/ready", timeout_s=30, process=process)
    yield port, process
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=20)


@FUZZ
@given(junk=st.binary(min_size=1, max_size=300))
def test_raw_bytes_on_the_socket_never_crash_the_server(live_server, junk):
    port, process = live_server
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"POST /invocations HTTP/1.1\r\n" + junk + b"\r\n\r\n")
        sock.shutdown(socket.SHUT_WR)
        answer = b""
        try:
            while chunk := sock.recv(65536):
                answer += chunk
        except (TimeoutError, ConnectionResetError):
            pass
    assert not answer.startswith(b"HTTP/1.1 5"), answer[:200]
    assert process.poll() is None
