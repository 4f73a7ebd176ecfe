"""The server's request handling in-process: both protocols, the signature checks and
every malformed request answered with a 4xx JSON error."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.model_fixtures import CATEGORICAL, NUMERIC, example_record, v2_request

INFER = "/v2/models/census-income/infer"


def post(app, path, body, content_type="application/json"):
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    response = app.handle("POST", path, content_type, raw)
    return response.status, json.loads(response.body)


def expected_labels(census_model_dir, records):
    """ONNX Runtime directly on the model file, fed by hand (not through the decoder)."""
    import onnxruntime as ort

    settings = json.loads((census_model_dir / "model-settings.json").read_text())
    session = ort.InferenceSession(str(census_model_dir / "model.onnx"), providers=["CPUExecutionProvider"])
    feeds = {}
    for column in settings["columns"]:
        values = [r[column["name"]] for r in records]
        dtype = object if column["datatype"] == "BYTES" else np.float32
        feeds[column["onnx_input"]] = np.array(values, dtype=dtype).reshape(-1, 1)
    label, probabilities = session.run(["label", "probabilities"], feeds)
    return list(label), probabilities


def test_column_names_map_to_renamed_onnx_inputs(census_model_dir):
    settings = json.loads((census_model_dir / "model-settings.json").read_text())
    mapping = {c["name"]: c["onnx_input"] for c in settings["columns"]}
    assert mapping["education-num"] == "education_num"
    assert mapping["native-country"] == "native_country"
    assert settings["classes"] == ["<=50K", ">50K"]
    assert settings["task"] == "classification"
    assert len(settings["input_example"]["age"]) == 5


def test_v2_infer_matches_onnx_runtime_fed_by_hand(census_app, census_model_dir):
    records = [example_record(i) for i in range(3)]
    status, body = post(census_app, INFER, {"id": "req-1", **v2_request(records)})
    assert status == 200
    assert body["id"] == "req-1" and body["model_name"] == "census-income" and body["model_version"] == "7"
    outputs = {o["name"]: o for o in body["outputs"]}
    labels, probabilities = expected_labels(census_model_dir, records)
    assert outputs["label"]["datatype"] == "BYTES" and outputs["label"]["data"] == labels
    assert outputs["probabilities"]["shape"] == [3, 2]
    np.testing.assert_allclose(outputs["probabilities"]["data"], probabilities.ravel(), rtol=1e-6)


def test_v2_accepts_flat_shapes_onnx_names_and_output_selection(census_app):
    record = example_record()
    request = v2_request([record])
    for item in request["inputs"]:
        item["shape"] = [1]
        if item["name"] == "education-num":
            item["name"] = "education_num"  # the ONNX input name is accepted too
    request["outputs"] = [{"name": "probabilities"}]
    status, body = post(census_app, INFER, request)
    assert status == 200
    assert [o["name"] for o in body["outputs"]] == ["probabilities"]


def test_versioned_path_and_metadata(census_app):
    status, body = post(
        census_app, "/v2/models/census-income/versions/7/infer", v2_request([example_record()])
    )
    assert status == 200
    response = census_app.handle("GET", "/v2/models/census-income", "", b"")
    metadata = json.loads(response.body)
    assert response.status == 200 and metadata["platform"] == "onnxruntime_onnx"
    names = [i["name"] for i in metadata["inputs"]]
    assert names == NUMERIC + CATEGORICAL
    assert {i["datatype"] for i in metadata["inputs"]} == {"FP32", "BYTES"}
    assert metadata["parameters"]["lineage"]["commit"] == "abc123"
    assert census_app.handle("GET", "/v2/models/census-income/versions/7/ready", "", b"").status == 200


@pytest.mark.parametrize("fmt", ["dataframe_split", "dataframe_records", "inputs", "instances", "csv"])
def test_invocations_formats_agree(census_app, census_model_dir, fmt):
    records = [example_record(i) for i in range(4)]
    columns = NUMERIC + CATEGORICAL
    if fmt == "dataframe_split":
        body = {"dataframe_split": {"columns": columns, "data": [[r[c] for c in columns] for r in records]}}
    elif fmt == "dataframe_records":
        body = {"dataframe_records": records}
    elif fmt == "inputs":
        body = {"inputs": {c: [r[c] for r in records] for c in columns}}
    elif fmt == "instances":
        body = {"instances": records}
    else:
        lines = [",".join(columns)] + [",".join(str(r[c]) for c in columns) for r in records]
        body = ("\n".join(lines) + "\n").encode()
    status, answer = post(
        census_app, "/invocations", body, "text/csv" if fmt == "csv" else "application/json"
    )
    assert status == 200, answer
    labels, _ = expected_labels(census_model_dir, records)
    assert answer["predictions"] == labels


def test_invocations_ignores_extra_columns_like_mlflow(census_app):
    record = {**example_record(), "class": ">50K", "id": 17}
    status, answer = post(census_app, "/invocations", {"dataframe_records": [record]})
    assert status == 200 and len(answer["predictions"]) == 1


MALFORMED_V2 = {
    "not json": (b"{not json", 400, "not valid JSON"),
    "empty body": (b"", 400, "no body"),
    "json array": (b"[1, 2]", 400, "inputs"),
    "no inputs": ({"outputs": []}, 400, "'inputs'"),
    "input without data": (
        {"inputs": [{"name": "age", "shape": [1], "datatype": "FP32"}]},
        400,
        "data is missing",
    ),
    "bad datatype": (
        {"inputs": [{"name": "age", "shape": [1], "datatype": "FLOAT", "data": [1]}]},
        400,
        "datatype",
    ),
    "bad shape": (
        {"inputs": [{"name": "age", "shape": [-1], "datatype": "FP32", "data": [1]}]},
        400,
        "shape",
    ),
    "shape and data disagree": (
        {"inputs": [{"name": "age", "shape": [2], "datatype": "FP32", "data": [1]}]},
        400,
        "holds 2",
    ),
    "id not a string": ({"id": 5, "inputs": []}, 400, "'id'"),
}


@pytest.mark.parametrize("case", MALFORMED_V2, ids=list(MALFORMED_V2))
def test_malformed_v2_requests_are_400_json(census_app, case):
    body, status, fragment = MALFORMED_V2[case]
    got, answer = post(census_app, INFER, body)
    assert got == status and fragment in answer["error"]


def with_input(change):
    request = v2_request([example_record(), example_record(1)])
    change({i["name"]: i for i in request["inputs"]}, request)
    return request


SIGNATURE_ERRORS = {
    "string in a numeric column": (lambda m, r: m["age"].update(data=["old", "young"]), "takes FP32 numbers"),
    "number in a string column": (
        lambda m, r: m["workclass"].update(datatype="FP32", data=[1, 2]),
        "is BYTES",
    ),
    "declared BYTES for a number": (
        lambda m, r: m["age"].update(datatype="BYTES", data=["1", "2"]),
        "is FP32",
    ),
    "unknown input": (
        lambda m, r: r["inputs"].append({"name": "salary", "shape": [2], "datatype": "FP32", "data": [1, 2]}),
        "unknown input 'salary'",
    ),
    "missing input": (lambda m, r: r["inputs"].remove(m["sex"]), "missing input sex"),
    "wrong rank": (lambda m, r: m["age"].update(shape=[1, 2]), "shape [rows] or [rows, 1]"),
    "row counts differ": (lambda m, r: m["age"].update(shape=[3, 1], data=[1, 2, 3]), "different row counts"),
    "nested object": (lambda m, r: m["race"].update(shape=[2], data=[{"a": 1}, "White"]), "takes strings"),
    "number out of FP32 range": (lambda m, r: m["age"].update(data=[1e300, 30]), "out of its range"),
    "unknown output": (lambda m, r: r.update(outputs=[{"name": "logits"}]), "unknown output"),
}


@pytest.mark.parametrize("case", SIGNATURE_ERRORS, ids=list(SIGNATURE_ERRORS))
def test_signature_mismatches_are_422_json(census_app, case):
    change, fragment = SIGNATURE_ERRORS[case]
    status, answer = post(census_app, INFER, with_input(change))
    assert status == 422 and fragment in answer["error"], answer


def test_null_in_a_numeric_column_is_a_missing_value(census_app):
    request = with_input(lambda m, r: m["capital-gain"].update(data=[None, 0]))
    status, answer = post(census_app, INFER, request)
    assert status == 200, answer


def test_errors_never_echo_the_request_body(census_app):
    secret = "SECRET-VALUE-12345"
    request = with_input(lambda m, r: m["age"].update(data=[secret, secret]))
    _, answer = post(census_app, INFER, request)
    assert secret not in json.dumps(answer)
    _, answer = post(census_app, "/invocations", {"dataframe_records": [{"age": secret}]})
    assert secret not in json.dumps(answer)


def test_unknown_model_version_route_and_method(census_app):
    status, answer = post(census_app, "/v2/models/other-model/infer", v2_request([example_record()]))
    assert status == 404 and "census-income" in answer["error"]
    status, answer = post(
        census_app, "/v2/models/census-income/versions/8/infer", v2_request([example_record()])
    )
    assert status == 404 and "version '7'" in answer["error"]
    assert census_app.handle("GET", "/nope", "", b"").status == 404
    response = census_app.handle("GET", INFER, "", b"")
    assert response.status == 405 and response.allow == "POST"
    assert census_app.handle("DELETE", "/invocations", "", b"").status == 405


MALFORMED_MLFLOW = {
    "two formats": ({"dataframe_records": [], "instances": []}, 400),
    "unknown key": ({"dataframe_records": [{}], "extra": 1}, 400),
    "split without data": ({"dataframe_split": {"columns": ["age"]}}, 400),
    "records not a list": ({"dataframe_records": {"age": 1}}, 400),
    "record missing a column": ({"dataframe_records": [{"age": 30}]}, 422),
    "row of wrong length": ({"dataframe_split": {"columns": NUMERIC + CATEGORICAL, "data": [[1, 2]]}}, 422),
    "params given": ({"dataframe_records": [{}], "params": {"k": 1}}, 422),
    "no rows": ({"dataframe_split": {"columns": NUMERIC, "data": []}}, 422),
}


@pytest.mark.parametrize("case", MALFORMED_MLFLOW, ids=list(MALFORMED_MLFLOW))
def test_malformed_invocations_are_4xx_mlflow_errors(census_app, case):
    body, status = MALFORMED_MLFLOW[case]
    got, answer = post(census_app, "/invocations", body)
    assert got == status and set(answer) == {"error_code", "message"}, answer


def test_unsupported_media_type_is_415(census_app):
    status, answer = post(census_app, "/invocations", b"age=1", "application/x-www-form-urlencoded")
    assert status == 415 and answer["error_code"]


def test_too_many_rows_is_413(census_app):
    records = [example_record()] * 501  # the app was started with max_batch_rows=500
    status, answer = post(census_app, "/invocations", {"dataframe_records": records})
    assert status == 413 and "at most 500" in answer["message"]


def test_not_ready_is_503(census_model_dir):
    from mlops_ci.serving.config import ServerConfig
    from mlops_ci.serving.server import load_app

    app = load_app(ServerConfig(model_dir=census_model_dir, warmup_runs=0))
    assert app.handle("GET", "/v2/health/ready", "", b"").status == 503
    assert app.handle("GET", "/ping", "", b"").status == 503
    assert app.handle("GET", "/v2/health/live", "", b"").status == 200
    status, _ = post(app, INFER, v2_request([example_record()]))
    assert status == 503


def test_openapi_document_lists_every_endpoint(census_app):
    document = json.loads(census_app.handle("GET", "/openapi.json", "", b"").body)
    assert document["openapi"].startswith("3.")
    for path in (
        "/v2/health/live",
        "/v2/models/{model_name}/infer",
        "/v2/models/{model_name}/versions/{model_version}/infer",
        "/invocations",
        "/ping",
        "/metrics",
    ):
        assert path in document["paths"]
    record = document["components"]["schemas"]["Record"]
    assert record["properties"]["education-num"] == {"type": "number", "nullable": True}
    assert record["properties"]["workclass"] == {"type": "string"}


def test_request_log_records_follow_the_published_schema(census_model_dir, tmp_path):
    import jsonschema

    from mlops_ci.result import step_result_schema  # noqa: F401 - the schemas package is importable
    from mlops_ci.serving.config import ServerConfig
    from mlops_ci.serving.server import load_app

    log_path = tmp_path / "requests.jsonl"
    app = load_app(
        ServerConfig(
            model_dir=census_model_dir, warmup_runs=0, request_log=str(log_path), request_log_sample=1.0
        )
    )
    app.ready = True
    records = [example_record(0), example_record(1)]
    assert post(app, INFER, v2_request(records))[0] == 200
    assert post(app, "/invocations", {"dataframe_records": records[:1]})[0] == 200
    assert post(app, INFER, {"inputs": []})[0] == 400  # errors are not logged
    app.request_log.close()
    lines = [json.loads(line) for line in log_path.read_text().splitlines()]
    schema = json.loads(
        (Path(__file__).resolve().parents[2] / "mlops_ci/schemas/request-log.v1.json").read_text()
    )
    assert [line["endpoint"] for line in lines] == ["v2_infer", "invocations"]
    for line in lines:
        jsonschema.validate(line, schema)
    assert lines[0]["inputs"]["education-num"] == [
        float(records[0]["education-num"]),
        float(records[1]["education-num"]),
    ]
    assert lines[0]["inputs"]["workclass"] == [records[0]["workclass"], records[1]["workclass"]]
    assert len(lines[0]["outputs"]["probabilities"]) == 2


def test_serving_imports_no_heavy_module(census_model_dir):
    import subprocess

    code = (
        "import sys\nfrom pathlib import Path\nfrom mlops_ci.serving.config import ServerConfig\n"
        "from mlops_ci.serving.server import load_app\n"
        f"app = load_app(ServerConfig(model_dir=Path({str(census_model_dir)!r})))\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('mlflow', 'pandas', 'sklearn', 'skl2onnx', 'onnx', 'scipy', 'docker', 'jinja2', 'requests'))\n"
        "ours = sorted(m for m in sys.modules if m.startswith('mlops_ci') and not m.startswith('mlops_ci.serving') and m != 'mlops_ci')\n"
        "print(heavy, ours)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[] []"
