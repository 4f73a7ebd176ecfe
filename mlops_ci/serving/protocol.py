"""Request bodies to decoded inputs, and outputs to response bodies, for the two
protocols: Open Inference Protocol (V2) and MLflow's scoring format."""

from __future__ import annotations

import csv
import io
import math
from typing import Any

import numpy as np
import orjson

from mlops_ci.serving.errors import ServingError, bad_request, clip, unprocessable
from mlops_ci.serving.settings import DATATYPES, ModelSettings
from mlops_ci.serving.signature import InputDecoder, datatype_of, to_array

MLFLOW_FORMATS = ("dataframe_split", "dataframe_records", "instances", "inputs")
DUMP_OPTIONS = orjson.OPT_SERIALIZE_NUMPY
# Dimensions of one V2 tensor: ONNX Runtime and numpy allow more, no served model needs it.
MAX_RANK = 32


def parse_json(body: bytes) -> Any:
    if not body:
        raise bad_request("the request has no body; send a JSON object")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise bad_request(f"the body is not valid JSON ({_json_problem(exc)})") from None


def _json_problem(exc: orjson.JSONDecodeError) -> str:
    # orjson's message quotes the document; keep only its position.
    return f"at line {exc.lineno}, column {exc.colno}"


# -- V2 ----------------------------------------------------------------------------------


def decode_v2(
    request: Any, decoder: InputDecoder, settings: ModelSettings
) -> tuple[dict[str, np.ndarray], int, list[str] | None, str | None]:
    """Feeds, rows, the requested output names (None: all) and the request id."""
    if not isinstance(request, dict):
        raise bad_request("the body must be a JSON object with 'inputs'")
    request_id = request.get("id")
    if request_id is not None and (not isinstance(request_id, str) or len(request_id) > 256):
        raise bad_request("'id' must be a string of at most 256 characters")
    inputs = request.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise bad_request("'inputs' must be a non-empty list of tensors")
    columns: dict[str, np.ndarray] = {}
    tensors: dict[str, np.ndarray] = {}
    for position, item in enumerate(inputs):
        name, array = _v2_tensor(item, position, decoder)
        if name in columns or name in tensors:
            raise bad_request(f"input {clip(name)!r} appears twice")
        if name in decoder.columns or name in decoder.aliases:
            columns[name] = array
        else:
            tensors[name] = array
    feeds, rows = decoder.decode(columns, tensors, strict=True, checked=True)
    outputs = _v2_outputs(request.get("outputs"), settings)
    return feeds, rows, outputs, request_id


def _v2_tensor(item: Any, position: int, decoder: InputDecoder) -> tuple[str, np.ndarray]:
    if not isinstance(item, dict):
        raise bad_request(f"inputs[{position}] must be an object with name, shape, datatype and data")
    name, shape, datatype, data = item.get("name"), item.get("shape"), item.get("datatype"), item.get("data")
    if not isinstance(name, str) or not name:
        raise bad_request(f"inputs[{position}].name must be a non-empty string")
    if type(shape) is not list:
        raise bad_request(f"inputs[{position}].shape must be a list of non-negative integers")
    if len(shape) > MAX_RANK:
        raise bad_request(f"inputs[{position}].shape has {len(shape)} dimensions; at most {MAX_RANK}")
    if any(type(d) is not int or d < 0 for d in shape):
        raise bad_request(f"inputs[{position}].shape must be a list of non-negative integers")
    if datatype not in DATATYPES:
        raise bad_request(f"inputs[{position}].datatype must be one of {', '.join(DATATYPES)}")
    if data is None:
        raise bad_request(f"inputs[{position}].data is missing")
    if not isinstance(data, list):
        data = [data]
    expected = _model_datatype(name, decoder)
    if expected is None:
        raise unprocessable(
            f"unknown input {clip(name)!r}; this model takes {', '.join(decoder.column_names[:8])}"
        )
    if (datatype == "BYTES") != (expected == "BYTES"):
        raise unprocessable(f"input {clip(name)!r} is {expected} in this model; got {datatype}")

    size = math.prod(shape)  # Python integers: no overflow, whatever the dimensions
    if size == 0:
        raise unprocessable(f"inputs[{position}] holds no values (its shape has a 0); send at least one row")
    array = to_array(data, expected, name)
    if array.size != size:
        raise bad_request(f"inputs[{position}] has {array.size} values but its shape holds {clip(size, 24)}")
    if list(array.shape) != shape:
        array = array.reshape(shape)
    return name, array


def _model_datatype(name: str, decoder: InputDecoder) -> str | None:
    column = decoder.columns.get(name) or decoder.columns.get(decoder.aliases.get(name, ""))
    if column is not None:
        return column.datatype
    group = decoder.by_onnx_name.get(name)
    return group.spec.datatype if group is not None else None


def _v2_outputs(requested: Any, settings: ModelSettings) -> list[str] | None:
    if requested is None:
        return None
    if not isinstance(requested, list) or not all(
        isinstance(o, dict) and isinstance(o.get("name"), str) for o in requested
    ):
        raise bad_request("'outputs' must be a list of objects with a 'name'")
    known = [o.name for o in settings.outputs]
    names = []
    for item in requested:
        if item["name"] not in known:
            raise unprocessable(f"unknown output {clip(item['name'])!r}; this model has {', '.join(known)}")
        names.append(item["name"])
    return names or None


def encode_v2(settings: ModelSettings, outputs: dict[str, np.ndarray], request_id: str | None) -> bytes:
    tensors = []
    for name, array in outputs.items():
        datatype = datatype_of(array)
        tensors.append(
            {
                "name": name,
                "datatype": datatype,
                "shape": array.shape,
                "data": array.ravel().tolist()
                if datatype == "BYTES" or datatype == "FP16"
                else array.ravel(),
            }
        )
    response: dict[str, Any] = {"model_name": settings.name, "model_version": settings.version}
    if request_id is not None:
        response["id"] = request_id
    response["outputs"] = tensors
    return orjson.dumps(response, option=DUMP_OPTIONS)


# -- MLflow scoring format ----------------------------------------------------------------


def decode_mlflow(body: bytes, content_type: str, decoder: InputDecoder) -> tuple[dict[str, np.ndarray], int]:
    if content_type.startswith("text/csv"):
        return _decode_csv(body, decoder)
    request = parse_json(body)
    if not isinstance(request, dict):
        raise bad_request(f"the body must be a JSON object with one of {', '.join(MLFLOW_FORMATS)}")
    present = [key for key in MLFLOW_FORMATS if key in request]
    unknown = [key for key in request if key not in MLFLOW_FORMATS and key != "params"]
    if len(present) != 1 or unknown:
        extra = f" (unexpected {', '.join(clip(k) for k in unknown[:3])})" if unknown else ""
        raise bad_request(f"the body must have exactly one of {', '.join(MLFLOW_FORMATS)}{extra}")
    params = request.get("params")
    if params not in (None, {}):
        if not isinstance(params, dict):
            raise bad_request("'params' must be an object")
        raise unprocessable("this model takes no params")
    key = present[0]
    payload = request[key]
    if key == "dataframe_split":
        return _decode_split(payload, decoder)
    if key == "dataframe_records":
        if not isinstance(payload, list):
            raise bad_request("'dataframe_records' must be a list of objects")
        return decoder.decode_records(payload)
    if isinstance(payload, dict):
        if key == "instances":
            return decoder.decode_records([payload])
        return decoder.decode(payload, strict=False)
    if not isinstance(payload, list) or not payload:
        raise bad_request(f"'{key}' must be a non-empty list (of rows or of objects) or an object of columns")
    if isinstance(payload[0], dict):
        return decoder.decode_records(payload)
    if isinstance(payload[0], list):
        return decoder.decode_rows(payload, None)
    if len(decoder.column_names) == 1:
        return decoder.decode({decoder.column_names[0]: payload}, strict=False)
    raise unprocessable(
        f"'{key}' holds single values but this model takes {len(decoder.column_names)} columns; send rows"
    )


def _decode_split(payload: Any, decoder: InputDecoder) -> tuple[dict[str, np.ndarray], int]:
    if not isinstance(payload, dict) or not isinstance(payload.get("data"), list):
        raise bad_request("'dataframe_split' must be an object with 'columns' and 'data' (a list of rows)")
    unknown = [k for k in payload if k not in ("columns", "data", "index")]
    if unknown:
        raise bad_request(f"'dataframe_split' has unexpected key {clip(unknown[0])!r}")
    columns = payload.get("columns")
    if columns is not None and (
        not isinstance(columns, list) or not all(isinstance(c, str) for c in columns)
    ):
        raise bad_request("'dataframe_split.columns' must be a list of strings")
    if not payload["data"]:
        raise unprocessable("the request has no rows")
    return decoder.decode_rows(payload["data"], columns)


def _decode_csv(body: bytes, decoder: InputDecoder) -> tuple[dict[str, np.ndarray], int]:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise bad_request("the CSV body is not UTF-8 text") from None
    try:
        rows = list(csv.reader(io.StringIO(text)))
    except csv.Error as exc:
        raise bad_request(f"the body is not valid CSV ({exc})") from None
    if len(rows) < 2:
        raise unprocessable("the CSV body needs a header row and at least one data row")
    header, data = rows[0], [row for row in rows[1:] if row]
    values: dict[str, list[Any]] = {}
    for j, name in enumerate(header):
        column = decoder.columns.get(name)
        if column is None:
            continue
        cells = []
        for i, row in enumerate(data):
            if len(row) != len(header):
                raise unprocessable(f"CSV row {i + 1} has {len(row)} fields; the header has {len(header)}")
            cells.append(row[j] if column.datatype == "BYTES" else _number(row[j], name, i))
        values[name] = cells
    return decoder.decode(values, strict=False)


def _number(cell: str, column: str, row: int) -> float:
    if cell.strip() == "":
        return math.nan
    try:
        return float(cell)
    except ValueError:
        raise unprocessable(
            f"CSV column {clip(column)!r} takes numbers; row {row + 1} does not hold one"
        ) from None


def encode_mlflow(settings: ModelSettings, outputs: dict[str, np.ndarray]) -> bytes:
    primary = outputs[settings.primary_output.name]
    if primary.ndim == 2 and primary.shape[1] == 1:
        primary = primary[:, 0]
    data = (
        primary.tolist()
        if primary.dtype.kind == "O" or primary.dtype == np.float16
        else np.ascontiguousarray(primary)
    )
    return orjson.dumps({"predictions": data}, option=DUMP_OPTIONS)


def error_body_v2(error: ServingError) -> bytes:
    return orjson.dumps({"error": error.message})


def error_body_mlflow(error: ServingError) -> bytes:
    code = {
        400: "BAD_REQUEST",
        404: "ENDPOINT_NOT_FOUND",
        413: "BAD_REQUEST",
        422: "INVALID_PARAMETER_VALUE",
    }.get(error.status, "BAD_REQUEST" if error.status < 500 else "INTERNAL_ERROR")
    return orjson.dumps({"error_code": code, "message": error.message})
