"""What the profile sends: V2 inference requests built from the model's input example
(the rows logged with the model), repeated to the batch size wanted, and the matching
ONNX Runtime feeds for the in-process measurements."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mlops_ci.profiling.errors import NoInputExample

if TYPE_CHECKING:
    import numpy as np

    from mlops_ci.serving.settings import ModelSettings


@dataclass(frozen=True)
class Request:
    """One HTTP request the load generators send over and over."""

    method: str
    path: str
    body: bytes = b""
    content_type: str = "application/json"


def example_rows(settings: ModelSettings) -> dict[str, list[Any]]:
    example = settings.input_example
    if not example:
        raise NoInputExample(settings.name)
    missing = [c.name for c in settings.columns if c.name not in example]
    if missing:
        raise NoInputExample(settings.name, tuple(missing))
    return {c.name: list(example[c.name]) for c in settings.columns}


def repeat_rows(columns: dict[str, list[Any]], rows: int) -> dict[str, list[Any]]:
    """Each column cycled to ``rows`` values."""
    if rows < 1:
        raise ValueError(f"`rows` must be at least 1, got {rows}")
    out = {}
    for name, values in columns.items():
        count = len(values)
        out[name] = [values[i % count] for i in range(rows)]
    return out


def infer_path(settings: ModelSettings) -> str:
    return f"/v2/models/{settings.name}/infer"


def v2_request(settings: ModelSettings, rows: int = 1) -> Request:
    """A V2 (Open Inference Protocol) request with ``rows`` rows of the input example,
    one tensor per column, as clients of the served model send it."""
    data = repeat_rows(example_rows(settings), rows)
    body = {
        "inputs": [
            {"name": c.name, "shape": [rows, 1], "datatype": c.datatype, "data": data[c.name]}
            for c in settings.columns
        ]
    }
    return Request("POST", infer_path(settings), json.dumps(body, separators=(",", ":")).encode())


def onnx_feeds(settings: ModelSettings, rows: int, *, decoder: Any = None) -> dict[str, np.ndarray]:
    """ONNX Runtime feeds with ``rows`` rows of the input example (what the server's
    decoder makes of a request, without the HTTP and JSON part)."""
    import numpy as np

    from mlops_ci.serving.signature import InputDecoder

    decoder = decoder or InputDecoder(settings, max_rows=1_000_000)
    columns = example_rows(settings)
    feeds, count = decoder.decode(columns, strict=False)
    index = np.arange(rows) % count
    return {name: np.ascontiguousarray(np.take(array, index, axis=0)) for name, array in feeds.items()}
