"""V2 tensor shapes a client may send: each rule answers a 4xx with a small error body
(never the shape echoed back), and the shape just inside each rule is accepted by it."""

from __future__ import annotations

import json

import pytest

from mlops_ci.serving.errors import MAX_MESSAGE, ServingError
from mlops_ci.serving.protocol import MAX_RANK, error_body_mlflow, error_body_v2
from tests.model_fixtures import example_record, v2_request

INFER = "/v2/models/census-income/infer"
MAX_ERROR_BODY = 1024


def infer_with_age(app, shape, data):
    """A one-row request whose ``age`` tensor has ``shape`` and ``data``."""
    request = v2_request([example_record()])
    age = next(item for item in request["inputs"] if item["name"] == "age")
    age["shape"] = shape
    age["data"] = data
    response = app.handle("POST", INFER, "application/json", json.dumps(request).encode())
    return response.status, response.body


# (shape, data) -> (status, words in the error); the pairs stand on both sides of a rule.
CASES = {
    "one row, [1, 1]": ([1, 1], [39], 200, None),
    "one row, flat [1]": ([1], [39], 200, None),
    "a negative dimension": ([-1, 1], [39], 400, "non-negative integers"),
    "[-1, -1]": ([-1, -1], [39], 400, "non-negative integers"),
    "a float dimension": ([1.0, 1], [39], 400, "non-negative integers"),
    "not a list": ("1,1", [39], 400, "non-negative integers"),
    f"{MAX_RANK} ones (the most dimensions)": ([1] * MAX_RANK, [39], 422, "shape [rows] or [rows, 1]"),
    f"{MAX_RANK + 1} ones": (
        [1] * (MAX_RANK + 1),
        [39],
        400,
        f"{MAX_RANK + 1} dimensions; at most {MAX_RANK}",
    ),
    "100 ones": ([1] * 100, [39], 400, f"100 dimensions; at most {MAX_RANK}"),
    "a million dimensions": ([1] * 1_000_000, [39], 400, f"1000000 dimensions; at most {MAX_RANK}"),
    "[2^62, 2^62, 0]": ([2**62, 2**62, 0], [], 422, "holds no values"),
    "[0, 1]": ([0, 1], [], 422, "holds no values"),
    "[2^62, 2^62] (element count past 64 bits)": ([2**62, 2**62], [39], 400, "its shape holds 2126764"),
    "[2^31, 2^31, 2^31]": ([2**31] * 3, [39], 400, "its shape holds"),
    "more values than the shape holds": ([1, 1], [39, 40], 400, "has 2 values but its shape holds 1"),
}


@pytest.mark.parametrize("name", list(CASES))
def test_tensor_shape_rules(census_app, name):
    shape, data, status, words = CASES[name]
    got, body = infer_with_age(census_app, shape, data)
    assert got == status, body[:300]
    if words is not None:
        assert words in json.loads(body)["error"]
        assert len(body) < MAX_ERROR_BODY


def test_a_deeply_nested_data_array_is_a_4xx(census_app):
    nested: list = [39]
    for _ in range(MAX_RANK * 2):
        nested = [nested]
    status, body = infer_with_age(census_app, [1], nested)
    assert 400 <= status < 500 and len(body) < MAX_ERROR_BODY


def test_error_messages_are_clipped():
    long = "x" * (10 * MAX_MESSAGE)
    error = ServingError(400, long, "bad_request")
    assert len(error.message) == MAX_MESSAGE and error.message.endswith("...")
    assert len(error_body_v2(error)) < MAX_MESSAGE + 64
    assert len(error_body_mlflow(error)) < MAX_MESSAGE + 64
    exact = ServingError(400, "y" * MAX_MESSAGE, "bad_request")
    assert exact.message == "y" * MAX_MESSAGE
