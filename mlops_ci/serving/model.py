"""The ONNX model behind the server: an ONNX Runtime session, its outputs, and the
warm-up that runs before the server reports ready."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

from mlops_ci.serving.settings import ModelSettings
from mlops_ci.serving.signature import InputDecoder


class ModelLoadError(RuntimeError):
    """The ONNX file does not load, or does not match its settings."""


class OnnxModel:
    def __init__(
        self,
        settings: ModelSettings,
        model_dir: Path,
        *,
        intra_op_threads: int = 1,
        inter_op_threads: int = 1,
        max_rows: int = 100_000,
    ) -> None:
        self.settings = settings
        options = ort.SessionOptions()
        options.intra_op_num_threads = intra_op_threads
        options.inter_op_num_threads = inter_op_threads
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Spinning threads burn a core between requests; a server is mostly between requests.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.add_session_config_entry("session.inter_op.allow_spinning", "0")
        options.log_severity_level = 3
        path = model_dir / settings.model_file
        try:
            self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # noqa: BLE001 - ORT raises its own exception types
            raise ModelLoadError(
                f"ONNX Runtime cannot load {path}: {str(exc).splitlines()[0][:300]}"
            ) from None
        graph_inputs = {i.name for i in self.session.get_inputs()}
        graph_outputs = [o.name for o in self.session.get_outputs()]
        wanted_inputs = {spec.name for spec in settings.onnx_inputs}
        if graph_inputs != wanted_inputs:
            raise ModelLoadError(
                f"{path} takes inputs {sorted(graph_inputs)} but the settings describe {sorted(wanted_inputs)}"
            )
        missing = [o.name for o in settings.outputs if o.name not in graph_outputs]
        if missing:
            raise ModelLoadError(f"{path} has no output {missing[0]!r} that the settings describe")
        self.output_names = [o.name for o in settings.outputs]
        inner = getattr(self.session, "_sess", None)
        self._run = inner.run if inner is not None and hasattr(inner, "run") else self.session.run
        self.decoder = InputDecoder(settings, max_rows=max_rows)
        # Estimated cost of one request, from the warm-up: fixed part + per row (seconds).
        self.fixed_cost_s = 0.0
        self.row_cost_s = 0.0

    def run(
        self, feeds: dict[str, np.ndarray], output_names: list[str] | None = None
    ) -> dict[str, np.ndarray]:
        names = output_names or self.output_names
        # The C++ session directly: the Python wrapper re-validates what the decoder checked.
        results = self._run(names, feeds, None)
        return dict(zip(names, results, strict=True))

    def warm_up(self, runs: int) -> None:
        """Run the input example (one row, then all of it) so the first real request does
        not pay for lazy initialisation, and estimate what a request costs."""
        example = self.settings.input_example
        if not example or runs <= 0:
            return
        one_row = {name: values[:1] for name, values in example.items()}
        feeds_one, _ = self.decoder.decode(one_row, strict=False)
        feeds_all, rows = self.decoder.decode(example, strict=False)
        for _ in range(max(1, runs // 4)):
            self.run(feeds_one)
        started = time.perf_counter()
        for _ in range(runs):
            self.run(feeds_one)
        one = (time.perf_counter() - started) / runs
        if rows > 1:
            repeat = max(1, min(runs, 2000 // rows))
            big = {k: np.concatenate([v] * repeat) for k, v in feeds_all.items()}
            started = time.perf_counter()
            self.run(big)
            many = time.perf_counter() - started
            self.row_cost_s = max(0.0, (many - one) / max(1, rows * repeat - 1))
        self.fixed_cost_s = one

    def estimated_cost_s(self, rows: int) -> float:
        return self.fixed_cost_s + self.row_cost_s * max(0, rows - 1)
