"""The input columns of a model: names as clients send them, and their types."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# MLflow ColSpec types -> our column kinds.
MLFLOW_KINDS = {
    "double": "float",
    "float": "float",
    "long": "int",
    "integer": "int",
    "boolean": "bool",
    "string": "string",
    "binary": "string",
    "datetime": "string",
}


@dataclass(frozen=True)
class InputColumn:
    name: str
    kind: str  # float | int | bool | string


def columns_from_signature(signature: Any) -> list[InputColumn] | None:
    """Columns of an MLflow signature's column-based input schema (None for tensors)."""
    if signature is None or signature.inputs is None:
        return None
    schema = signature.inputs
    if schema.is_tensor_spec() or not schema.has_input_names():
        return None
    columns = []
    for spec in schema.inputs:
        type_name = getattr(spec.type, "name", str(spec.type))
        columns.append(InputColumn(spec.name, MLFLOW_KINDS.get(type_name, "string")))
    return columns


def columns_from_frame(frame: Any) -> list[InputColumn]:
    columns = []
    for name, dtype in frame.dtypes.items():
        kind = dtype.kind
        columns.append(
            InputColumn(
                str(name),
                "float" if kind == "f" else "int" if kind in "iu" else "bool" if kind == "b" else "string",
            )
        )
    return columns


def columns_from_estimator(model: Any) -> list[InputColumn] | None:
    """Numeric columns named after ``feature_names_in_`` or x0..x<n-1> (sklearn's names)."""
    names = getattr(model, "feature_names_in_", None)
    if names is not None:
        return [InputColumn(str(n), "float") for n in names]
    count = getattr(model, "n_features_in_", None)
    if count:
        return [InputColumn(f"x{i}", "float") for i in range(int(count))]
    return None
