"""scikit-learn estimators and pipelines to ONNX through skl2onnx.

Layout of the ONNX inputs:
- one input per column (``[None, 1]``, float or string) when the model starts with a
  ColumnTransformer or takes string columns: clients send columns by name, and mixed
  numeric and string columns need separate tensors;
- otherwise one ``input`` tensor ``[None, n_columns]``, with the columns mapped to its
  positions.
skl2onnx renames inputs (``education-num`` becomes ``education_num``); the mapping from
the original names is recorded in the serving settings.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import metadata
from typing import Any

from mlops_ci.convert import UnsupportedModelError
from mlops_ci.convert.boosters import is_booster, require_booster_support
from mlops_ci.convert.columns import InputColumn
from mlops_ci.serving.settings import ColumnSpec

PRECISIONS = ("float32", "float64")


@dataclass(frozen=True)
class Conversion:
    onnx: Any  # onnx.ModelProto
    columns: tuple[ColumnSpec, ...]
    converter: str
    opset: int | None


def final_estimator(model: Any) -> Any:
    steps = getattr(model, "steps", None)
    while steps:
        model = steps[-1][1]
        steps = getattr(model, "steps", None)
    return model


def first_step(model: Any) -> Any:
    steps = getattr(model, "steps", None)
    while steps:
        model = steps[0][1]
        steps = getattr(model, "steps", None)
    return model


def all_estimators(model: Any) -> list[Any]:
    """Every estimator in a (nested) pipeline or column transformer."""
    found = [model]
    for attribute in ("steps", "transformers_"):
        for item in getattr(model, attribute, None) or []:
            inner = item[1]
            if inner not in ("drop", "passthrough"):
                found.extend(all_estimators(inner))
    return found


def convert_sklearn_model(
    model: Any, columns: list[InputColumn], *, opset: int | None, precision: str, name: str
) -> Conversion:
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType, StringTensorType
    from sklearn.base import is_classifier
    from sklearn.compose import ColumnTransformer

    boosters = [e for e in all_estimators(model) if is_booster(e)]
    for estimator in boosters:
        require_booster_support(estimator)
    number_type = DoubleTensorType if precision == "float64" else FloatTensorType
    number_name = "FP64" if precision == "float64" else "FP32"
    per_column = isinstance(first_step(model), ColumnTransformer) or any(c.kind == "string" for c in columns)
    if per_column:
        initial_types = [
            (c.name, StringTensorType([None, 1]) if c.kind == "string" else number_type([None, 1]))
            for c in columns
        ]
    else:
        initial_types = [("input", number_type([None, len(columns)]))]
    final = final_estimator(model)
    options = {id(final): {"zipmap": False}} if is_classifier(final) else None
    target_opset: Any = opset
    if precision == "float64" or boosters:
        # Tree ensembles keep double thresholds only from ai.onnx.ml opset 3 on; onnxmltools'
        # booster converters support up to 3.
        target_opset = {"": opset or _default_opset(), "ai.onnx.ml": 3}
    try:
        onnx_model = convert_sklearn(
            model, name=name, initial_types=initial_types, target_opset=target_opset, options=options
        )
    except Exception as exc:  # noqa: BLE001 - skl2onnx raises many types; all mean "cannot convert"
        raise _unsupported(model, exc) from None
    graph_inputs = [i.name for i in onnx_model.graph.input]
    if per_column:
        if len(graph_inputs) != len(columns):
            raise UnsupportedModelError(
                f"skl2onnx produced {len(graph_inputs)} inputs for {len(columns)} columns; the model does "
                "not use every column of its signature"
            )
        specs = tuple(
            ColumnSpec(c.name, "BYTES" if c.kind == "string" else number_name, onnx_name)
            for c, onnx_name in zip(columns, graph_inputs, strict=True)
        )
    else:
        specs = tuple(ColumnSpec(c.name, number_name, graph_inputs[0], i) for i, c in enumerate(columns))
    return Conversion(onnx_model, specs, f"skl2onnx {metadata.version('skl2onnx')}", opset)


def _default_opset() -> int:
    from skl2onnx import get_latest_tested_opset_version

    return get_latest_tested_opset_version()


def _unsupported(model: Any, exc: BaseException) -> UnsupportedModelError:
    failing = _failing_estimator(exc) or _named_in_message(str(exc)) or type(final_estimator(model)).__name__
    problem = _first_line(str(exc)) or type(exc).__name__
    versions = f"skl2onnx {metadata.version('skl2onnx')} and scikit-learn {metadata.version('scikit-learn')}"
    return UnsupportedModelError(
        f"{failing} cannot be converted to ONNX with {versions}: {problem}; use a supported estimator, "
        "other library versions, or an ONNX file converted by hand",
        estimator=failing,
    )


def _failing_estimator(exc: BaseException) -> str | None:
    """skl2onnx's converter loop keeps the operator being converted in a local variable."""
    tb = exc.__traceback__
    found = None
    while tb is not None:
        operator = tb.tb_frame.f_locals.get("operator")
        raw = getattr(operator, "raw_operator", None)
        if raw is not None:
            found = type(raw).__name__
        tb = tb.tb_next
    return found


def _named_in_message(text: str) -> str | None:
    match = re.search(r"<class '([\w.]+)'>", text)
    return match.group(1).rsplit(".", 1)[-1] if match else None


def _first_line(text: str) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    cut = line.find(" with name=")
    if cut > 0:
        line = line[:cut]
    return line[:200]
