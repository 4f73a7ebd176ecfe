"""The model server that runs inside the serving image (and under `mlops-ci serve`).

It imports only onnxruntime, numpy and its HTTP stack (httptools, orjson, and uvloop
when installed) - never mlflow, pandas, scikit-learn or the rest of mlops_ci - so the
image stays small and the server is ready a fraction of a second after it starts.

This ``__init__`` imports nothing: ``mlops_ci.serving.config`` is read by the CLI to
build its ``serve`` flags, and that must not load numpy or onnxruntime.

Endpoints: Open Inference Protocol (V2) REST, MLflow-compatible ``/invocations`` and
``/ping``, Prometheus ``/metrics`` and an OpenAPI document at ``/openapi.json``. See
``python -m mlops_ci.serving --help`` for the settings.
"""
