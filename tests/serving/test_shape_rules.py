"""The exact 4xx answer of each V2 shape rule (tests/serving/test_protocol.py checks the
status and a phrase; here the whole message, so a loosened rule that lets a bad shape
through to numpy — and a 500 — or answers with another rule's words fails)."""

from __future__ import annotations

import json

import pytest

from mlops_ci.serving.protocol import MAX_RANK
from tests.model_fixtures import example_record, v2_request

INFER = "/v2/models/census-income/infer"


def infer_with_age(app, shape, data):
    """A one-row request whose ``age`` tensor has ``shape`` and ``data``; the answer's
    status, error message and the position of ``age`` in ``inputs``."""
    request = v2_request([example_record()])
    position = next(i for i, item in enumerate(request["inputs"]) if item["name"] == "age")
    request["inputs"][position]["shape"] = shape
    request["inputs"][position]["data"] = data
    response = app.handle("POST", INFER, "application/json", json.dumps(request).encode())
    body = json.loads(response.body) if response.status != 200 else {}
    return response.status, body.get("error"), position


NON_NEGATIVE = "inputs[{p}].shape must be a list of non-negative integers"

# shape, data -> status and the exact message ({p} is the tensor's position).
CASES = {
    "[-1, -1]": ([-1, -1], [39], 400, NON_NEGATIVE),
    "[-1, 1]": ([-1, 1], [39], 400, NON_NEGATIVE),
    "[1, -1]": ([1, -1], [39], 400, NON_NEGATIVE),
    "[-2, 1]": ([-2, 1], [39], 400, NON_NEGATIVE),
    "[-1]": ([-1], [39], 400, NON_NEGATIVE),
    "[true, 1] (a bool is not an int here)": ([True, 1], [39], 400, NON_NEGATIVE),
    "[1.0, 1]": ([1.0, 1], [39], 400, NON_NEGATIVE),
    "a string": ("1,1", [39], 400, NON_NEGATIVE),
    "null": (None, [39], 400, NON_NEGATIVE),
    f"{MAX_RANK + 1} ones": (
        [1] * (MAX_RANK + 1),
        [39],
        400,
        f"inputs[{{p}}].shape has {MAX_RANK + 1} dimensions; at most {MAX_RANK}",
    ),
    "[0, 1]": ([0, 1], [], 422, "inputs[{p}] holds no values (its shape has a 0); send at least one row"),
    "[1, 1] with 2 values": ([1, 1], [39, 40], 400, "inputs[{p}] has 2 values but its shape holds 1"),
    "[2, 1] with 1 value": ([2, 1], [39], 400, "inputs[{p}] has 1 values but its shape holds 2"),
}


@pytest.mark.parametrize("name", list(CASES))
def test_each_shape_rule_answers_its_exact_message(census_app, name):
    shape, data, status, message = CASES[name]
    got, error, position = infer_with_age(census_app, shape, data)
    assert (got, error) == (status, message.format(p=position))


@pytest.mark.parametrize("shape", [[1], [1, 1]])
def test_the_shapes_just_inside_the_rules_are_accepted(census_app, shape):
    """The other side of the boundaries: a dimension of 0 or more is an integer the
    rule accepts (a 1 here, so the one-row request still fits)."""
    got, error, _ = infer_with_age(census_app, shape, [39])
    assert (got, error) == (200, None)
