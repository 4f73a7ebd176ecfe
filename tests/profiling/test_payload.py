"""Requests built from a model's input example."""

from __future__ import annotations

import json

import pytest

from mlops_ci.profiling.errors import NoInputExample
from mlops_ci.profiling.payload import onnx_feeds, v2_request


def test_requests_come_from_the_input_example(census_model_dir):
    from mlops_ci.serving.settings import load_settings

    settings = load_settings(census_model_dir)
    request = v2_request(settings, 7)
    body = json.loads(request.body)
    assert request.path == "/v2/models/census-income/infer"
    assert [t["name"] for t in body["inputs"]] == [c.name for c in settings.columns]
    assert all(t["shape"] == [7, 1] and len(t["data"]) == 7 for t in body["inputs"])
    feeds = onnx_feeds(settings, 512)
    assert {array.shape[0] for array in feeds.values()} == {512}


def test_a_model_without_a_complete_input_example_gets_no_request(census_model_dir):
    from dataclasses import replace

    from mlops_ci.serving.settings import load_settings

    settings = load_settings(census_model_dir)
    with pytest.raises(NoInputExample, match="has no input example") as raised:
        v2_request(replace(settings, input_example=None))
    assert raised.value.missing == () and "--" not in str(raised.value)
    first = settings.columns[0].name
    partial = {k: v for k, v in settings.input_example.items() if k != first}
    with pytest.raises(NoInputExample, match="lacks column") as raised:
        v2_request(replace(settings, input_example=partial))
    assert raised.value.missing == (first,)
