"""The OpenAPI 3.0 document of every endpoint, specialised to the served model (its
input columns and outputs appear as schemas), served at ``/openapi.json``."""

from __future__ import annotations

from typing import Any

from mlops_ci.serving.settings import DATATYPES, ModelSettings

JSON_TYPES = {"BYTES": {"type": "string"}, "BOOL": {"type": "boolean"}}


def _value_schema(datatype: str) -> dict[str, Any]:
    if datatype in JSON_TYPES:
        return dict(JSON_TYPES[datatype])
    if datatype.startswith(("INT", "UINT")):
        return {"type": "integer"}
    return {"type": "number", "nullable": True}


def _json(schema: dict[str, Any] | str, description: str) -> dict[str, Any]:
    if isinstance(schema, str):
        schema = {"$ref": f"#/components/schemas/{schema}"}
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*codes: int, schema: str = "V2Error") -> dict[str, Any]:
    text = {
        400: "Not a valid request of the protocol (not JSON, wrong structure)",
        404: "Unknown model or version",
        413: "Body or batch too large",
        415: "Unsupported content type",
        422: "The request does not fit the model's signature (names, shapes, datatypes)",
        503: "Not ready (loading, warming up or shutting down)",
    }
    return {str(code): _json(schema, text[code]) for code in codes}


def openapi_document(settings: ModelSettings, server_version: str) -> dict[str, Any]:
    columns = {c.name: _value_schema(c.datatype) for c in settings.columns}
    record = {"type": "object", "properties": columns, "required": list(columns)}
    name_param = {
        "name": "model_name",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "enum": [settings.name]},
    }
    version_param = {
        "name": "model_version",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "enum": [settings.version]},
    }
    health = {"200": _json("Health", "OK"), "503": _json("Health", "Not ready")}
    infer = {
        "summary": "Run the model (Open Inference Protocol V2)",
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/V2InferenceRequest"}}},
        },
        "responses": {"200": _json("V2InferenceResponse", "Predictions"), **_errors(400, 404, 413, 422, 503)},
    }
    metadata = {
        "summary": "Model metadata: inputs and outputs",
        "responses": {"200": _json("V2ModelMetadata", "Metadata"), **_errors(404)},
    }
    model_ready = {"summary": "Whether the model is ready", "responses": {**health, **_errors(404)}}
    paths: dict[str, Any] = {
        "/v2": {
            "get": {
                "summary": "Server metadata",
                "responses": {"200": _json({"type": "object"}, "Server metadata")},
            }
        },
        "/v2/health/live": {"get": {"summary": "Liveness", "responses": health}},
        "/v2/health/ready": {
            "get": {"summary": "Readiness: model loaded and warmed up", "responses": health}
        },
        "/v2/models/{model_name}": {"get": metadata, "parameters": [name_param]},
        "/v2/models/{model_name}/ready": {"get": model_ready, "parameters": [name_param]},
        "/v2/models/{model_name}/infer": {"post": infer, "parameters": [name_param]},
        "/v2/models/{model_name}/versions/{model_version}": {
            "get": metadata,
            "parameters": [name_param, version_param],
        },
        "/v2/models/{model_name}/versions/{model_version}/ready": {
            "get": model_ready,
            "parameters": [name_param, version_param],
        },
        "/v2/models/{model_name}/versions/{model_version}/infer": {
            "post": infer,
            "parameters": [name_param, version_param],
        },
        "/invocations": {
            "post": {
                "summary": "Run the model (MLflow scoring protocol)",
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/MlflowRequest"}},
                        "text/csv": {
                            "schema": {
                                "type": "string",
                                "description": "CSV with a header row of column names",
                            }
                        },
                    },
                },
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "required": ["predictions"],
                            "properties": {"predictions": {"type": "array", "items": {}}},
                        },
                        "Predictions",
                    ),
                    **_errors(400, 413, 415, 422, 503, schema="MlflowError"),
                },
            }
        },
        "/ping": {"get": {"summary": "MLflow-style health: 200 once ready", "responses": health}},
        "/health": {"get": {"summary": "Alias of /ping", "responses": health}},
        "/version": {
            "get": {
                "summary": "Server and model versions",
                "responses": {"200": _json({"type": "object"}, "Versions")},
            }
        },
        "/metrics": {
            "get": {
                "summary": "Prometheus metrics",
                "responses": {
                    "200": {
                        "description": "Prometheus text format",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    }
                },
            }
        },
        "/openapi.json": {
            "get": {
                "summary": "This document",
                "responses": {"200": _json({"type": "object"}, "OpenAPI document")},
            }
        },
    }
    tensor = {
        "type": "object",
        "required": ["name", "shape", "datatype", "data"],
        "properties": {
            "name": {
                "type": "string",
                "enum": [c.name for c in settings.columns] + [s.name for s in settings.onnx_inputs],
            },
            "shape": {"type": "array", "items": {"type": "integer", "minimum": 0}},
            "datatype": {"type": "string", "enum": list(DATATYPES)},
            "parameters": {"type": "object"},
            "data": {"type": "array", "items": {}},
        },
    }
    schemas = {
        "V2Tensor": tensor,
        "V2InferenceRequest": {
            "type": "object",
            "required": ["inputs"],
            "properties": {
                "id": {"type": "string", "maxLength": 256},
                "parameters": {"type": "object"},
                "inputs": {
                    "type": "array",
                    "minItems": 1,
                    "items": {"$ref": "#/components/schemas/V2Tensor"},
                },
                "outputs": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["name"],
                        "properties": {
                            "name": {"type": "string", "enum": [o.name for o in settings.outputs]}
                        },
                    },
                },
            },
        },
        "V2InferenceResponse": {
            "type": "object",
            "required": ["model_name", "outputs"],
            "properties": {
                "model_name": {"type": "string"},
                "model_version": {"type": "string"},
                "id": {"type": "string"},
                "outputs": {"type": "array", "items": {"$ref": "#/components/schemas/V2Tensor"}},
            },
        },
        "V2ModelMetadata": {"type": "object", "required": ["name", "platform", "inputs", "outputs"]},
        "V2Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}},
        "MlflowError": {
            "type": "object",
            "required": ["error_code", "message"],
            "properties": {"error_code": {"type": "string"}, "message": {"type": "string"}},
        },
        "Health": {"type": "object"},
        "Record": record,
        "MlflowRequest": {
            "type": "object",
            "description": "Exactly one of dataframe_split, dataframe_records, instances, inputs",
            "properties": {
                "dataframe_split": {
                    "type": "object",
                    "required": ["data"],
                    "properties": {
                        "columns": {"type": "array", "items": {"type": "string"}},
                        "data": {"type": "array", "items": {"type": "array"}},
                        "index": {"type": "array"},
                    },
                },
                "dataframe_records": {"type": "array", "items": {"$ref": "#/components/schemas/Record"}},
                "instances": {"type": "array", "items": {}},
                "inputs": {
                    "oneOf": [
                        {
                            "type": "object",
                            "properties": {n: {"type": "array", "items": s} for n, s in columns.items()},
                        },
                        {"type": "array"},
                    ]
                },
                "params": {"type": "object"},
            },
        },
    }
    return {
        "openapi": "3.0.3",
        "info": {
            "title": f"{settings.name} (version {settings.version})",
            "version": server_version,
            "description": "Served by mlops_ci.serving: Open Inference Protocol (V2) REST, MLflow-compatible "
            "/invocations, Prometheus /metrics. Errors are JSON with a 4xx status for bad requests.",
        },
        "paths": paths,
        "components": {"schemas": schemas},
    }
