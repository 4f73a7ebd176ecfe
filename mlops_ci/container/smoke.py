"""Smoke test of a built image: run it, wait until ready, send the input example over V2
and /invocations, and compare with ONNX Runtime in this process."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlops_ci.container.base import Engine

TOLERANCE = 1e-5


@dataclass(frozen=True)
class SmokeResult:
    passed: bool
    message: str
    ready_s: float | None = None
    memory_bytes: int | None = None
    details: dict[str, Any] = field(default_factory=dict)


def smoke_test(engine: Engine, image: str, model_dir: Path, *, timeout_s: float = 60.0) -> SmokeResult:
    import numpy as np
    import requests

    from mlops_ci.convert.parity import onnx_predictions
    from mlops_ci.serving.settings import load_settings

    settings = load_settings(model_dir)
    example = settings.input_example
    if not example:
        return SmokeResult(False, "the model has no input example to send; log one with the model")
    import pandas as pd

    expected = onnx_predictions(model_dir, pd.DataFrame(example))
    with engine.run(image) as container:
        try:
            ready_s = container.wait_ready(timeout_s=timeout_s)
        except Exception as exc:  # noqa: BLE001 - reported in the check
            return SmokeResult(False, f"the container did not become ready: {str(exc)[:500]}")
        rows = len(next(iter(example.values())))
        v2_request = {
            "inputs": [
                {"name": c.name, "shape": [rows, 1], "datatype": c.datatype, "data": example[c.name]}
                for c in settings.columns
            ]
        }
        problems = []
        v2 = requests.post(f"{container.url}/v2/models/{settings.name}/infer", json=v2_request, timeout=30)
        if v2.status_code != 200:
            problems.append(f"V2 infer answered {v2.status_code}: {v2.text[:200]}")
        else:
            for output in v2.json()["outputs"]:
                got = np.asarray(output["data"]).reshape(output["shape"])
                want = expected[output["name"]]
                if not _close(got, want):
                    problems.append(f"V2 output {output['name']} differs from ONNX Runtime in-process")
        records = [{name: values[i] for name, values in example.items()} for i in range(rows)]
        mlflow = requests.post(
            f"{container.url}/invocations", json={"dataframe_records": records}, timeout=30
        )
        if mlflow.status_code != 200:
            problems.append(f"/invocations answered {mlflow.status_code}: {mlflow.text[:200]}")
        else:
            want = expected[settings.primary_output.name].reshape(rows, -1)[:, 0]
            if not _close(np.asarray(mlflow.json()["predictions"]).reshape(rows), want):
                problems.append("/invocations predictions differ from ONNX Runtime in-process")
        metrics = requests.get(f"{container.url}/metrics", timeout=10)
        if metrics.status_code != 200 or "mlops_ci_serving_requests_total" not in metrics.text:
            problems.append("/metrics does not answer with Prometheus metrics")
        stats = container.stats()
        logs = container.logs(tail=50)
    details = {"rows": rows, "image": image, "container_log_tail": logs[-2000:]}
    if problems:
        return SmokeResult(False, "; ".join(problems), ready_s, stats.memory_bytes, details)
    memory = f", {stats.memory_bytes / 1e6:.0f} MB resident" if stats.memory_bytes else ""
    return SmokeResult(
        True,
        f"ready in {ready_s:.2f} s{memory}; V2 and /invocations answered the {rows}-row input example as ONNX Runtime does in-process",
        ready_s,
        stats.memory_bytes,
        details,
    )


def _close(got: Any, want: Any) -> bool:
    import numpy as np

    got, want = np.asarray(got), np.asarray(want)
    if got.shape != want.shape:
        return False
    if want.dtype.kind in "OUS":
        return bool((got.astype(str) == want.astype(str)).all())
    return bool(np.allclose(got.astype(np.float64), want.astype(np.float64), rtol=TOLERANCE, atol=TOLERANCE))
