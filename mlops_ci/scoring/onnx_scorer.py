"""One batch of rows in, prediction columns out, with ONNX Runtime.

The feeds are built by the serving layer's ``InputDecoder`` (the same checks and column ->
ONNX input mapping the server applies), so a file scores exactly as the same rows sent to
the serving container would. Outputs are named for people reading the file:
``prediction`` for the label or value, ``probability_<class>`` per class.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NoReturn

import numpy as np

from mlops_ci.errors import UsageError
from mlops_ci.scoring import ScoringInputError
from mlops_ci.serving.settings import ModelSettings

PREDICTION = "prediction"


@dataclass(frozen=True)
class OutputColumn:
    """One column of the scored output: which ONNX output it comes from (and which of its
    columns, for a 2-D output), and its kind: string, int or float."""

    name: str
    onnx_output: str
    index: int | None
    kind: str


def output_columns(settings: ModelSettings) -> tuple[OutputColumn, ...]:
    columns: list[OutputColumn] = []
    primary = settings.primary_output
    for spec in settings.outputs:
        kind = "string" if spec.datatype == "BYTES" else "float" if spec.datatype.startswith("FP") else "int"
        if spec.name == primary.name and spec.role in ("label", "value"):
            columns.append(OutputColumn(PREDICTION, spec.name, None, kind))
        elif spec.role == "probabilities":
            width = (
                spec.shape[1] if len(spec.shape) == 2 and spec.shape[1] > 0 else len(settings.classes or ())
            )
            labels = list(settings.classes or range(width))
            columns += [
                OutputColumn(f"probability_{_clean(label)}", spec.name, i, "float")
                for i, label in enumerate(labels)
            ]
        elif len(spec.shape) == 2 and spec.shape[1] > 1:
            columns += [
                OutputColumn(f"{_clean(spec.name)}_{i}", spec.name, i, kind) for i in range(spec.shape[1])
            ]
        else:
            columns.append(OutputColumn(_clean(spec.name), spec.name, None, kind))
    return tuple(columns)


class OnnxScorer:
    """An ONNX Runtime session over one model. ``score`` is thread-safe: threads share the
    session, each run on its own thread with ``threads`` intra-op threads."""

    kind = "onnx"

    def __init__(self, onnx_bytes: bytes, settings: ModelSettings, *, threads: int = 1) -> None:
        import onnxruntime as ort

        from mlops_ci.serving.signature import InputDecoder

        self.settings = settings
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(onnx_bytes, options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # noqa: BLE001 - ORT raises its own exception types
            raise UsageError(
                f"ONNX Runtime cannot load the model: {str(exc).splitlines()[0][:300]}"
            ) from None
        self.decoder = InputDecoder(settings, max_rows=2**62)
        self.outputs = output_columns(settings)
        self._onnx_outputs = list(dict.fromkeys(c.onnx_output for c in self.outputs))

    @property
    def input_columns(self) -> tuple[str, ...]:
        return tuple(column.name for column in self.settings.columns)

    @property
    def output_fields(self) -> list[tuple[str, str]]:
        return output_schema_fields(self.outputs)

    def read_types(self) -> dict[str, Any]:
        """pyarrow types to parse each input column of a CSV as."""
        import pyarrow as pa

        return {
            column.name: pa.string()
            if column.datatype == "BYTES"
            else pa.float64()
            if column.datatype.startswith("FP")
            else pa.int64()
            for column in self.settings.columns
        }

    def score_arrays(
        self, columns: Mapping[str, np.ndarray], *, checked: frozenset[str] = frozenset()
    ) -> dict[str, np.ndarray]:
        """``columns``: input column -> 1-D array (strings as an object array, numbers of any
        numeric dtype, missing numbers as NaN). ``checked``: string columns known to hold
        only ``str`` (read from an Arrow string column without nulls), not checked again.
        Returns output column -> 1-D array."""
        from mlops_ci.serving.errors import ServingError
        from mlops_ci.serving.signature import to_array

        try:
            arrays = {
                column.name: columns[column.name]
                if column.datatype == "BYTES" and column.name in checked
                else to_array(columns[column.name], column.datatype, column.name)
                for column in self.settings.columns
            }
            feeds, _ = self.decoder.decode(arrays, strict=False, checked=True)
        except ServingError as exc:
            raise ScoringInputError(exc.message) from None
        results = dict(zip(self._onnx_outputs, self.session.run(self._onnx_outputs, feeds), strict=True))
        scored: dict[str, np.ndarray] = {}
        for column in self.outputs:
            values = np.asarray(results[column.onnx_output])
            if column.index is not None:
                values = values.reshape(values.shape[0], -1)[:, column.index]
            elif values.ndim > 1:
                values = values.reshape(values.shape[0])
            if column.kind == "float":
                values = values.astype(np.float64)
            scored[column.name] = values
        return scored

    def score_batch(self, batch: Any) -> dict[str, np.ndarray]:
        """A pyarrow RecordBatch (or Table) in."""
        import pyarrow as pa

        columns = {name: _numpy(batch.column(name), name) for name in self.input_columns}
        strings = frozenset(
            name
            for name in self.input_columns
            if pa.types.is_string(batch.column(name).type)
            or pa.types.is_large_string(batch.column(name).type)
        )
        return self.score_arrays(columns, checked=strings)

    def score_frame(self, frame: Any) -> dict[str, np.ndarray]:
        """A pandas DataFrame in (Spark's ``mapInPandas`` hands those over)."""
        arrays = {}
        for name in self.input_columns:
            series = frame[name]
            if series.dtype.kind in "biuf":
                arrays[name] = series.to_numpy()
            else:
                if series.isna().any():
                    _null(name, int(series.isna().to_numpy().argmax()))
                arrays[name] = series.to_numpy(dtype=object)
        return self.score_arrays(arrays)


def _numpy(array: Any, name: str) -> np.ndarray:
    import pyarrow as pa

    if pa.types.is_string(array.type) or pa.types.is_large_string(array.type):
        if array.null_count:
            _null(name, array.is_null().to_numpy(zero_copy_only=False).argmax())
        return array.to_numpy(zero_copy_only=False)
    if pa.types.is_integer(array.type) and array.null_count:
        return array.cast(pa.float64()).to_numpy(zero_copy_only=False)
    return array.to_numpy(zero_copy_only=False)


def _null(name: str, row: int) -> NoReturn:
    raise ScoringInputError(
        f"column {name!r} has a missing (null) value where the model takes a string (row {row} of a batch)"
    )


def _clean(label: Any) -> str:
    return re.sub(r"\s+", "_", str(label).strip())


ARROW_KINDS = {"string": "string", "int": "int64", "float": "float64"}


def output_schema_fields(columns: tuple[OutputColumn, ...]) -> list[tuple[str, str]]:
    """(name, pyarrow type name) of each output column."""
    return [(column.name, ARROW_KINDS[column.kind]) for column in columns]
