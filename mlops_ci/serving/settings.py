"""``model-settings.json``: what the server needs to know besides the ONNX file.

Written by the package step next to ``model.onnx`` (in the build context and in
``<out-dir>/package/``), read by the server at start-up. Standard library only.

    {
      "schema": "mlops-ci/model-settings/v1",
      "name": "census-income", "version": "3",
      "model_file": "model.onnx",
      "task": "classification",            # classification | regression | other
      "classes": ["<=50K", ">50K"],        # classifiers only
      "onnx_inputs":  [{"name": "education_num", "datatype": "FP32", "shape": [-1, 1]}, ...],
      "columns": [                          # what clients send: the original column names
        {"name": "education-num", "datatype": "FP32",
         "onnx_input": "education_num", "index": null},   # index: position in the last
        ...                                               # dimension when several columns
      ],                                                  # share one ONNX input
      "outputs": [{"name": "label", "datatype": "BYTES", "shape": [-1], "role": "label"},
                  {"name": "probabilities", "datatype": "FP32", "shape": [-1, 2],
                   "role": "probabilities"}],
      "input_example": {"age": [39, 50], "workclass": ["State-gov", "Private"], ...},
      "lineage": {"model_uri": "models:/census-income/3", "commit": "...", ...}
    }
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SETTINGS_SCHEMA = "mlops-ci/model-settings/v1"
SETTINGS_FILE = "model-settings.json"
DATATYPES = (
    "BOOL",
    "UINT8",
    "UINT16",
    "UINT32",
    "UINT64",
    "INT8",
    "INT16",
    "INT32",
    "INT64",
    "FP16",
    "FP32",
    "FP64",
    "BYTES",
)
ROLES = ("label", "probabilities", "value", "other")
TASKS = ("classification", "regression", "other")


class SettingsError(ValueError):
    """model-settings.json is missing, unreadable or inconsistent."""


@dataclass(frozen=True)
class TensorSpec:
    name: str
    datatype: str
    shape: tuple[int, ...]
    role: str = "other"

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"name": self.name, "datatype": self.datatype, "shape": list(self.shape)}
        if self.role != "other":
            data["role"] = self.role
        return data


@dataclass(frozen=True)
class ColumnSpec:
    """One input column as clients name it, and where it goes in the ONNX graph."""

    name: str
    datatype: str
    onnx_input: str
    index: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "datatype": self.datatype,
            "onnx_input": self.onnx_input,
            "index": self.index,
        }


@dataclass(frozen=True)
class ModelSettings:
    name: str
    version: str
    onnx_inputs: tuple[TensorSpec, ...]
    columns: tuple[ColumnSpec, ...]
    outputs: tuple[TensorSpec, ...]
    model_file: str = "model.onnx"
    task: str = "other"
    classes: tuple[Any, ...] | None = None
    input_example: Mapping[str, list[Any]] | None = None
    lineage: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_settings(self)

    @property
    def primary_output(self) -> TensorSpec:
        """What MLflow's /invocations returns as ``predictions``: the label or value."""
        for role in ("label", "value"):
            for output in self.outputs:
                if output.role == role:
                    return output
        return self.outputs[0]

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": SETTINGS_SCHEMA,
            "name": self.name,
            "version": self.version,
            "model_file": self.model_file,
            "task": self.task,
            "classes": list(self.classes) if self.classes is not None else None,
            "onnx_inputs": [spec.to_dict() for spec in self.onnx_inputs],
            "columns": [column.to_dict() for column in self.columns],
            "outputs": [spec.to_dict() for spec in self.outputs],
            "input_example": dict(self.input_example) if self.input_example is not None else None,
            "lineage": dict(self.lineage),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelSettings:
        if data.get("schema") != SETTINGS_SCHEMA:
            raise SettingsError(
                f"model settings schema must be {SETTINGS_SCHEMA!r}, got {data.get('schema')!r}"
            )
        try:
            classes = data.get("classes")
            return cls(
                name=str(data["name"]),
                version=str(data["version"]),
                model_file=str(data.get("model_file") or "model.onnx"),
                task=str(data.get("task") or "other"),
                classes=tuple(classes) if classes is not None else None,
                onnx_inputs=tuple(_tensor(item) for item in data["onnx_inputs"]),
                columns=tuple(
                    ColumnSpec(
                        name=str(item["name"]),
                        datatype=str(item["datatype"]),
                        onnx_input=str(item["onnx_input"]),
                        index=None if item.get("index") is None else int(item["index"]),
                    )
                    for item in data["columns"]
                ),
                outputs=tuple(_tensor(item) for item in data["outputs"]),
                input_example=data.get("input_example"),
                lineage=dict(data.get("lineage") or {}),
            )
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, SettingsError):
                raise
            raise SettingsError(
                f"model settings are incomplete or malformed: {type(exc).__name__}: {exc}"
            ) from None

    def write(self, folder: Path) -> Path:
        path = folder / SETTINGS_FILE
        path.write_text(json.dumps(self.to_dict(), indent=2, sort_keys=False) + "\n", encoding="utf-8")
        return path


def _tensor(item: Mapping[str, Any]) -> TensorSpec:
    return TensorSpec(
        name=str(item["name"]),
        datatype=str(item["datatype"]),
        shape=tuple(int(d) for d in item["shape"]),
        role=str(item.get("role") or "other"),
    )


def check_settings(settings: ModelSettings) -> None:
    if not settings.name:
        raise SettingsError("model settings: 'name' is empty")
    if not settings.onnx_inputs or not settings.columns or not settings.outputs:
        raise SettingsError("model settings need at least one ONNX input, one column and one output")
    if settings.task not in TASKS:
        raise SettingsError(f"model settings: task must be one of {', '.join(TASKS)}, got {settings.task!r}")
    inputs = {spec.name: spec for spec in settings.onnx_inputs}
    for spec in (*settings.onnx_inputs, *settings.outputs):
        if spec.datatype not in DATATYPES:
            raise SettingsError(f"model settings: {spec.name!r} has unknown datatype {spec.datatype!r}")
        if spec.role not in ROLES:
            raise SettingsError(f"model settings: {spec.name!r} has unknown role {spec.role!r}")
    seen: set[str] = set()
    for column in settings.columns:
        if column.name in seen:
            raise SettingsError(f"model settings: column {column.name!r} appears twice")
        seen.add(column.name)
        if column.onnx_input not in inputs:
            raise SettingsError(
                f"model settings: column {column.name!r} feeds unknown ONNX input {column.onnx_input!r}"
            )
    for spec in settings.onnx_inputs:
        fed = [c for c in settings.columns if c.onnx_input == spec.name]
        if not fed:
            raise SettingsError(f"model settings: no column feeds ONNX input {spec.name!r}")
        if len(fed) > 1:
            indexes = sorted(c.index for c in fed if c.index is not None)
            if indexes != list(range(len(fed))):
                raise SettingsError(
                    f"model settings: the {len(fed)} columns of ONNX input {spec.name!r} need indexes "
                    f"0..{len(fed) - 1}"
                )


def load_settings(model_dir: Path) -> ModelSettings:
    path = model_dir / SETTINGS_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SettingsError(
            f"{path} does not exist; point the server at a folder made by `mlops-ci package`"
        ) from None
    except (OSError, ValueError) as exc:
        raise SettingsError(f"cannot read {path}: {exc}") from None
    if not isinstance(data, dict):
        raise SettingsError(f"{path} must hold a JSON object")
    settings = ModelSettings.from_dict(data)
    if not (model_dir / settings.model_file).is_file():
        raise SettingsError(f"model file {model_dir / settings.model_file} does not exist")
    return settings
