"""Routing and handlers, independent of the HTTP transport: a request (method, path,
content type, body) in, a response (status, JSON body) out. Every failure caused by a
request is a 4xx JSON error; anything else is a 500 JSON error that names no input."""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

import numpy as np
import orjson

from mlops_ci.serving import protocol
from mlops_ci.serving.errors import ServingError, clip, not_found, unprocessable
from mlops_ci.serving.metrics import Metrics
from mlops_ci.serving.model import OnnxModel
from mlops_ci.serving.openapi import openapi_document
from mlops_ci.serving.requestlog import RequestLog

log = logging.getLogger("mlops_ci.serving")

JSON = b"application/json"
TEXT = b"text/plain; version=0.0.4; charset=utf-8"
SERVER_NAME = "mlops-ci"
PLATFORM = "onnxruntime_onnx"

try:  # ONNX Runtime's own exception types for a run the graph rejects
    from onnxruntime.capi.onnxruntime_pybind11_state import Fail as _OrtFail
    from onnxruntime.capi.onnxruntime_pybind11_state import InvalidArgument as _OrtInvalidArgument

    ORT_INPUT_ERRORS: tuple[type[BaseException], ...] = (_OrtInvalidArgument, _OrtFail)
except ImportError:  # pragma: no cover - layout of other onnxruntime builds
    ORT_INPUT_ERRORS = ()


@dataclass(slots=True)
class Response:
    status: int
    body: bytes
    endpoint: str
    content_type: bytes = JSON
    reason: str | None = None
    rows: int = 0
    inference_s: float = 0.0
    allow: str | None = None


class App:
    def __init__(
        self,
        model: OnnxModel,
        *,
        server_version: str,
        request_log: RequestLog | None = None,
        request_log_sample: float = 1.0,
    ) -> None:
        self.model = model
        self.settings = model.settings
        self.decoder = model.decoder
        self.server_version = server_version
        self.metrics = Metrics(self.settings.name, self.settings.version)
        self.request_log = request_log
        self.request_log_sample = request_log_sample
        # ready: what health checks report (false again while draining on shutdown);
        # loaded: inference is possible (in-flight requests still finish while draining).
        self.ready = False
        self.loaded = True
        self.draining = False
        self._metadata = orjson.dumps(self._model_metadata())
        self._openapi = orjson.dumps(openapi_document(self.settings, server_version))
        self._static = {
            "/v2/health/live": ("v2_live", self._live),
            "/v2/health/ready": ("v2_ready", self._ready),
            "/ping": ("ping", self._ready),
            "/health": ("ping", self._ready),
            "/v2": ("v2_server", self._server_metadata),
            "/metrics": ("metrics", self._metrics),
            "/openapi.json": ("openapi", self._openapi_doc),
            "/version": ("version", self._version),
            "/": ("index", self._index),
        }
        self._bytes_per_row = self._example_bytes_per_row()
        # V2 model paths seen: name, version, action, endpoint, and whether this server serves them.
        self._routes: dict[str, tuple[str, str | None, str, str, bool]] = {}

    # -- entry point -------------------------------------------------------------------

    def handle(self, method: str, path: str, content_type: str, body: bytes) -> Response:
        """Never raises."""
        endpoint = "other"
        try:
            if path in self._static:
                endpoint, handler = self._static[path]
                if method not in ("GET", "HEAD"):
                    return self._method_not_allowed(endpoint, "GET")
                return handler(endpoint)
            if path == "/invocations":
                endpoint = "invocations"
                if method != "POST":
                    return self._method_not_allowed(endpoint, "POST")
                return self._invocations(content_type, body)
            if path.startswith("/v2/models/"):
                return self._v2_model(method, path, content_type, body)
            raise not_found(f"no endpoint {clip(path)}; see /openapi.json")
        except ServingError as error:
            return self._error(endpoint, error, mlflow=endpoint == "invocations")
        except Exception:
            log.exception("internal error while handling %s %s", method, clip(path, 100))
            error = ServingError(500, "internal server error; the server log has the details", "internal")
            return self._error(endpoint, error, mlflow=endpoint == "invocations")

    def should_offload(self, path: str, body_length: int) -> float:
        """Estimated seconds of work for an inference request of this size (0 for others)."""
        if body_length == 0 or not (path == "/invocations" or path.endswith("/infer")):
            return 0.0
        rows = max(1, body_length // self._bytes_per_row)
        return self.model.estimated_cost_s(rows)

    # -- V2 ----------------------------------------------------------------------------

    def _v2_model(self, method: str, path: str, content_type: str, body: bytes) -> Response:
        route = self._routes.get(path)
        if route is None:
            route = self._parse_v2_path(path)
            if len(self._routes) < 256 and len(path) <= 256:
                self._routes[path] = route
        name, version, action, endpoint, served = route
        try:
            if not served:
                self._check_model(name, version)
            if action == "infer":
                if method != "POST":
                    return self._method_not_allowed(endpoint, "POST")
                return self._v2_infer(body)
            if method not in ("GET", "HEAD"):
                return self._method_not_allowed(endpoint, "GET")
            if action == "ready":
                return self._ready(endpoint)
            return Response(200, self._metadata, endpoint)
        except ServingError as error:
            return self._error(endpoint, error, mlflow=False)

    def _parse_v2_path(self, path: str) -> tuple[str, str | None, str, str, bool]:
        parts = path[len("/v2/models/") :].split("/")
        name = unquote(parts[0])
        rest = parts[1:]
        version = None
        if len(rest) >= 2 and rest[0] == "versions":
            version = unquote(rest[1])
            rest = rest[2:]
        action = rest[0] if rest else ""
        if len(rest) > 1 or action not in ("", "ready", "infer"):
            raise not_found(f"no endpoint {clip(path)}; see /openapi.json")
        endpoint = {"": "v2_metadata", "ready": "v2_model_ready", "infer": "v2_infer"}[action]
        served = name == self.settings.name and version in (None, self.settings.version)
        return name, version, action, endpoint, served

    def _check_model(self, name: str, version: str | None) -> None:
        if name != self.settings.name:
            raise not_found(
                f"model {clip(name)!r} is not served here; this server serves {self.settings.name!r}"
            )
        if version is not None and version != self.settings.version:
            raise not_found(
                f"model {self.settings.name!r} has no version {clip(version)!r} here; this server serves "
                f"version {self.settings.version!r}"
            )

    def _v2_infer(self, body: bytes) -> Response:
        self._require_ready()
        request = protocol.parse_json(body)
        feeds, rows, output_names, request_id = protocol.decode_v2(request, self.decoder, self.settings)
        outputs, elapsed = self._run(feeds, rows, output_names, "v2_infer", request_id)
        body = protocol.encode_v2(self.settings, outputs, request_id)
        return Response(200, body, "v2_infer", rows=rows, inference_s=elapsed)

    # -- MLflow --------------------------------------------------------------------------

    def _invocations(self, content_type: str, body: bytes) -> Response:
        self._require_ready()
        media = content_type.split(";")[0].strip().lower()
        if media not in ("", "application/json", "text/csv", "*/*") and not media.endswith("+json"):
            raise ServingError(415, "send application/json (or text/csv) to /invocations", "media_type")
        feeds, rows = protocol.decode_mlflow(body, media, self.decoder)
        outputs, elapsed = self._run(feeds, rows, None, "invocations")
        body = protocol.encode_mlflow(self.settings, outputs)
        return Response(200, body, "invocations", rows=rows, inference_s=elapsed)

    # -- inference -----------------------------------------------------------------------

    def _run(
        self,
        feeds: dict[str, np.ndarray],
        rows: int,
        output_names: list[str] | None,
        endpoint: str,
        request_id: str | None = None,
    ) -> dict[str, np.ndarray]:
        started = time.perf_counter()
        try:
            outputs = self.model.run(feeds, output_names)
        except ORT_INPUT_ERRORS as exc:
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise unprocessable(f"the model rejected the input: {clip(first, 200)}") from None
        elapsed = time.perf_counter() - started
        if self.request_log is not None and (
            self.request_log_sample >= 1.0 or random.random() < self.request_log_sample
        ):
            self.request_log.submit(endpoint, rows, elapsed, feeds, outputs, request_id=request_id)
        return outputs, elapsed

    def _require_ready(self) -> None:
        if not self.loaded or not (self.ready or self.draining):
            raise ServingError(
                503, "the model is not ready (starting or shutting down); retry shortly", "not_ready"
            )

    # -- small endpoints -------------------------------------------------------------------

    def _live(self, endpoint: str) -> Response:
        return Response(200, b'{"live":true}', endpoint)

    def _ready(self, endpoint: str) -> Response:
        if self.ready:
            return Response(200, b'{"ready":true}', endpoint)
        return Response(503, b'{"ready":false}', endpoint, reason="not_ready")

    def _server_metadata(self, endpoint: str) -> Response:
        body = orjson.dumps({"name": SERVER_NAME, "version": self.server_version, "extensions": []})
        return Response(200, body, endpoint)

    def _version(self, endpoint: str) -> Response:
        body = orjson.dumps(
            {
                "server": SERVER_NAME,
                "server_version": self.server_version,
                "model": self.settings.name,
                "model_version": self.settings.version,
            }
        )
        return Response(200, body, endpoint)

    def _metrics(self, endpoint: str) -> Response:
        self.metrics.ready = self.ready
        if self.request_log is not None:
            self.metrics.request_log_written = self.request_log.written
            self.metrics.request_log_dropped = self.request_log.dropped
        return Response(200, self.metrics.render().encode(), endpoint, content_type=TEXT)

    def _openapi_doc(self, endpoint: str) -> Response:
        return Response(200, self._openapi, endpoint)

    def _index(self, endpoint: str) -> Response:
        body = orjson.dumps(
            {
                "model": self.settings.name,
                "version": self.settings.version,
                "endpoints": [
                    "/v2/health/live",
                    "/v2/health/ready",
                    f"/v2/models/{self.settings.name}",
                    f"/v2/models/{self.settings.name}/infer",
                    "/invocations",
                    "/ping",
                    "/metrics",
                    "/openapi.json",
                ],
            }
        )
        return Response(200, body, endpoint)

    def _method_not_allowed(self, endpoint: str, allowed: str) -> Response:
        error = ServingError(405, f"method not allowed; use {allowed}", "method")
        response = self._error(endpoint, error, mlflow=endpoint == "invocations")
        response.allow = allowed
        return response

    def _error(self, endpoint: str, error: ServingError, *, mlflow: bool) -> Response:
        body = protocol.error_body_mlflow(error) if mlflow else protocol.error_body_v2(error)
        return Response(error.status, body, endpoint, reason=error.reason)

    # -- static documents ------------------------------------------------------------------

    def _model_metadata(self) -> dict[str, Any]:
        settings = self.settings
        single = all(
            sum(1 for c in settings.columns if c.onnx_input == spec.name) == 1
            for spec in settings.onnx_inputs
        )
        if single:
            shapes = {spec.name: spec.shape for spec in settings.onnx_inputs}
            inputs = [
                {"name": c.name, "datatype": c.datatype, "shape": list(shapes[c.onnx_input])}
                for c in settings.columns
            ]
        else:
            inputs = [spec.to_dict() for spec in settings.onnx_inputs]
            for item in inputs:
                item.pop("role", None)
        outputs = [{"name": o.name, "datatype": o.datatype, "shape": list(o.shape)} for o in settings.outputs]
        return {
            "name": settings.name,
            "versions": [settings.version],
            "platform": PLATFORM,
            "inputs": inputs,
            "outputs": outputs,
            "parameters": {
                "columns": [c.to_dict() for c in settings.columns],
                "task": settings.task,
                "classes": list(settings.classes) if settings.classes is not None else None,
                "lineage": dict(settings.lineage),
            },
        }

    def _example_bytes_per_row(self) -> int:
        example = self.settings.input_example
        if not example:
            return 64 * len(self.settings.columns)
        rows = max(1, len(next(iter(example.values()))))
        return max(16, len(orjson.dumps(example)) // rows)
