"""One entry point: a native model in, an ONNX model and its serving settings out."""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import metadata
from typing import Any

from mlops_ci.convert import UnsupportedModelError
from mlops_ci.convert.columns import InputColumn, columns_from_estimator, columns_from_frame
from mlops_ci.convert.loading import NativeModel
from mlops_ci.convert.sklearn import Conversion, convert_sklearn_model, final_estimator
from mlops_ci.serving.settings import ColumnSpec, ModelSettings, TensorSpec

ONNX_DATATYPES = {
    1: "FP32",
    2: "UINT8",
    3: "INT8",
    4: "UINT16",
    5: "INT16",
    6: "INT32",
    7: "INT64",
    8: "BYTES",
    9: "BOOL",
    10: "FP16",
    11: "FP64",
    12: "UINT32",
    13: "UINT64",
}
EXAMPLE_ROWS = 5


@dataclass(frozen=True)
class ConvertedModel:
    conversion: Conversion
    settings: ModelSettings

    @property
    def onnx_bytes(self) -> bytes:
        return self.conversion.onnx.SerializeToString()


def model_columns(native: NativeModel, frame: Any = None) -> list[InputColumn]:
    """The columns clients send: the signature's, else the input example's, else the
    holdout's (``frame``), else the estimator's feature names."""
    if native.columns:
        return list(native.columns)
    if native.input_example is not None:
        return columns_from_frame(native.input_example)
    if frame is not None:
        return columns_from_frame(frame)
    found = columns_from_estimator(native.model)
    if found:
        return found
    raise UnsupportedModelError(
        f"cannot tell the input columns of {native.uri}: log it with a signature (mlflow.models.infer_signature)"
    )


def convert(
    native: NativeModel,
    *,
    name: str,
    version: str,
    opset: int | None,
    precision: str,
    frame: Any = None,
    onnx_override: Any = None,
    lineage: dict[str, Any] | None = None,
) -> ConvertedModel:
    """``frame``: rows of the holdout (for columns when the model has no signature, and for
    the input example when it has none). ``onnx_override``: an ONNX model to use instead
    of converting (its parity is still checked against the native model)."""
    if native.is_onnx and onnx_override is None:
        # Its own input names are the columns unless the MLflow signature names them.
        conversion = passthrough(native.model, native.columns or None, converter="ONNX model")
    elif onnx_override is not None:
        conversion = passthrough(onnx_override, model_columns(native, frame), converter="given ONNX file")
    else:
        columns = model_columns(native, frame)
        conversion = convert_sklearn_model(native.model, columns, opset=opset, precision=precision, name=name)
    example = native.input_example if native.input_example is not None else frame
    settings = build_settings(
        conversion,
        native,
        name=name,
        version=version,
        example=example,
        lineage={**native.lineage, **(lineage or {})},
    )
    return ConvertedModel(conversion, settings)


def passthrough(onnx_model: Any, columns: list[InputColumn] | None, *, converter: str) -> Conversion:
    """Map an existing ONNX model's inputs to column names: one-to-one by (sanitised) name,
    or a single [N, k] input to k columns by position."""
    inputs = [(i.name, _datatype(i), _shape(i)) for i in onnx_model.graph.input]
    initializers = {init.name for init in onnx_model.graph.initializer}
    inputs = [item for item in inputs if item[0] not in initializers]
    specs: list[ColumnSpec] = []
    if columns is None:
        specs = [ColumnSpec(n, dt, n) for n, dt, _ in inputs]
    elif len(inputs) == 1 and len(columns) > 1 and len(inputs[0][2]) == 2:
        name, datatype, shape = inputs[0]
        if shape[1] not in (-1, len(columns)):
            raise UnsupportedModelError(
                f"ONNX input {name!r} has {shape[1]} columns but the model takes {len(columns)}"
            )
        specs = [ColumnSpec(c.name, datatype, name, i) for i, c in enumerate(columns)]
    else:
        by_name = {n: (n, dt) for n, dt, _ in inputs}
        by_clean = {_clean(n): (n, dt) for n, dt, _ in inputs}
        for column in columns:
            found = by_name.get(column.name) or by_clean.get(_clean(column.name))
            if found is None:
                raise UnsupportedModelError(
                    f"the ONNX model has no input for column {column.name!r} (its inputs: "
                    f"{', '.join(n for n, _, _ in inputs)})"
                )
            specs.append(ColumnSpec(column.name, found[1], found[0]))
        if len(specs) != len(inputs):
            raise UnsupportedModelError("the ONNX model's inputs do not match the model's columns one to one")
    opset = next((o.version for o in onnx_model.opset_import if o.domain in ("", "ai.onnx")), None)
    return Conversion(onnx_model, tuple(specs), converter, opset)


def build_settings(
    conversion: Conversion,
    native: NativeModel,
    *,
    name: str,
    version: str,
    example: Any,
    lineage: dict[str, Any],
) -> ModelSettings:
    graph = conversion.onnx.graph
    initializers = {init.name for init in graph.initializer}
    onnx_inputs = tuple(
        TensorSpec(i.name, _datatype(i), _shape(i)) for i in graph.input if i.name not in initializers
    )
    estimator = None if native.is_onnx else final_estimator(native.model)
    classes = getattr(estimator, "classes_", None)
    task = "classification" if classes is not None else ("regression" if estimator is not None else "other")
    outputs = tuple(_output_spec(o, task) for o in graph.output)
    if task == "other" and any(o.role == "probabilities" for o in outputs):
        task = "classification"
    return ModelSettings(
        name=name,
        version=version,
        onnx_inputs=onnx_inputs,
        columns=conversion.columns,
        outputs=outputs,
        task=task,
        classes=tuple(_plain(c) for c in classes) if classes is not None else None,
        input_example=example_columns(example, conversion.columns),
        lineage={
            **{k: v for k, v in lineage.items() if v is not None},
            "converter": conversion.converter,
            "opset": conversion.opset,
            "onnxruntime": _version("onnxruntime"),
            "mlops_ci": _version("mlops-ci"),
        },
    )


def example_columns(frame: Any, columns: tuple[ColumnSpec, ...]) -> dict[str, list[Any]] | None:
    """Up to five rows of ``frame`` as {column: [values]}, JSON-ready, typed as the model
    takes them."""
    if frame is None or not hasattr(frame, "columns"):
        return None
    names = [c.name for c in columns]
    if any(n not in frame.columns for n in names):
        return None
    head = frame[names].head(EXAMPLE_ROWS)
    example: dict[str, list[Any]] = {}
    for column in columns:
        values = head[column.name].tolist()
        if column.datatype == "BYTES":
            example[column.name] = ["" if v is None else str(v) for v in values]
        else:
            example[column.name] = [None if _is_nan(v) else _plain(v) for v in values]
    return example


def _output_spec(output: Any, task: str) -> TensorSpec:
    datatype = _datatype(output)
    shape = _shape(output)
    lowered = output.name.lower()
    if lowered in ("label", "output_label", "labels"):
        role = "label"
    elif "prob" in lowered:
        role = "probabilities"
    elif lowered in ("variable", "predictions", "prediction", "output", "value") or task == "regression":
        role = "value"
    else:
        role = "other"
    return TensorSpec(output.name, datatype, shape, role)


def _datatype(value_info: Any) -> str:
    tensor = value_info.type.tensor_type
    if not value_info.type.HasField("tensor_type"):
        raise UnsupportedModelError(
            f"ONNX value {value_info.name!r} is not a tensor (a sequence or map, e.g. a ZipMap output); "
            "convert classifiers with zipmap disabled"
        )
    datatype = ONNX_DATATYPES.get(tensor.elem_type)
    if datatype is None:
        raise UnsupportedModelError(
            f"ONNX value {value_info.name!r} has an element type the server does not serve"
        )
    return datatype


def _shape(value_info: Any) -> tuple[int, ...]:
    dims = value_info.type.tensor_type.shape.dim
    return tuple(d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else -1 for d in dims)


def _clean(name: str) -> str:
    return re.sub(r"[^0-9A-Za-z_]", "_", name)


def _plain(value: Any) -> Any:
    item = getattr(value, "item", None)
    return item() if callable(item) else value


def _is_nan(value: Any) -> bool:
    try:
        return value != value  # NaN is the only value not equal to itself
    except (TypeError, ValueError):
        return False


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None
