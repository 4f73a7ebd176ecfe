"""Native vs ONNX predictions on the same rows: do they agree, and does it matter?

Three questions, each its own check in the package step:
- labels: the fraction of rows where the predicted class agrees (classifiers);
- differences: the distribution of per-row absolute differences of the probabilities
  (classifiers: the largest over the classes) or of the values (regressors: relative to
  max(1, |native|)), judged by its maximum and 99th percentile;
- metrics: the model's metrics computed from each set of predictions against the
  target. A 100-tree random forest in float32 can differ by 3e-2 in probability on a few
  rows and still agree on every label and every metric; a wrong conversion cannot.
The ONNX side runs through the server's own input decoder, so parity covers exactly what
the server will do. The worst rows are reported by position in the data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

WORST_ROWS = 5
BATCH_ROWS = 4096


@dataclass(frozen=True)
class Tolerances:
    min_label_agreement: float = 0.999
    max_abs_diff: float = 0.05
    p99_abs_diff: float = 0.01
    metric: float = 0.001


@dataclass(frozen=True)
class MetricParity:
    name: str
    native: float
    onnx: float
    bounded: bool  # in [0, 1]: compared absolutely; else relative to max(1, |native|)

    @property
    def difference(self) -> float:
        return self.onnx - self.native

    @property
    def scaled_difference(self) -> float:
        scale = 1.0 if self.bounded else max(1.0, abs(self.native))
        return abs(self.difference) / scale


@dataclass(frozen=True)
class ParityReport:
    rows: int
    source: str  # "holdout" or "input example"
    task: str
    label_agreement: float | None
    disagreeing_rows: int
    diff_max: float
    diff_p99: float
    diff_p999: float
    diff_mean: float
    diff_kind: str  # "probability" or "value"
    metrics: tuple[MetricParity, ...]
    worst_rows: tuple[dict[str, Any], ...] = field(default_factory=tuple)


def onnx_predictions(model_dir: Path, frame: Any) -> dict[str, np.ndarray]:
    """All outputs of the ONNX model on ``frame``, through the server's decoder."""
    from mlops_ci.serving.model import OnnxModel
    from mlops_ci.serving.settings import load_settings

    settings = load_settings(model_dir)
    model = OnnxModel(settings, model_dir, intra_op_threads=2, max_rows=max(BATCH_ROWS, 1))
    parts: dict[str, list[np.ndarray]] = {}
    for start in range(0, len(frame), BATCH_ROWS):
        chunk = frame.iloc[start : start + BATCH_ROWS]
        columns = {}
        for column in settings.columns:
            series = chunk[column.name]
            if column.datatype == "BYTES":
                columns[column.name] = series.astype(str).to_numpy(dtype=object)
            else:
                columns[column.name] = series.to_numpy(dtype=np.float64)
        feeds, _ = model.decoder.decode(columns, strict=False)
        for name, value in model.run(feeds).items():
            parts.setdefault(name, []).append(value)
    return {name: np.concatenate(values) for name, values in parts.items()}


def compare(
    native_model: Any,
    model_dir: Path,
    settings: Any,
    frame: Any,
    target: Any = None,
    *,
    source: str = "holdout",
) -> ParityReport:
    """``frame``: the input columns; ``target``: the true values (None: metrics skipped)."""
    columns = [c.name for c in settings.columns]
    features = frame[columns]
    onnx_out = onnx_predictions(model_dir, features)
    rows = len(features)
    if settings.task == "classification":
        return _classification(native_model, features, onnx_out, settings, target, rows, source)
    return _regression(native_model, features, onnx_out, settings, target, rows, source)


def _classification(model, features, onnx_out, settings, target, rows, source) -> ParityReport:
    label_name = next((o.name for o in settings.outputs if o.role == "label"), None)
    proba_name = next((o.name for o in settings.outputs if o.role == "probabilities"), None)
    native_labels = np.asarray(model.predict(features))
    onnx_labels = np.asarray(onnx_out[label_name]).reshape(-1) if label_name else None
    agree = None
    disagreeing = 0
    if onnx_labels is not None:
        same = native_labels.astype(str) == onnx_labels.astype(str)
        agree = float(same.mean())
        disagreeing = int((~same).sum())
    native_proba = onnx_proba = None
    per_row = np.zeros(rows)
    if proba_name and hasattr(model, "predict_proba"):
        native_proba = np.asarray(model.predict_proba(features), dtype=np.float64)
        onnx_proba = np.asarray(onnx_out[proba_name], dtype=np.float64).reshape(rows, -1)
        if onnx_proba.shape == native_proba.shape:
            per_row = np.abs(onnx_proba - native_proba).max(axis=1)
        else:
            per_row = np.full(rows, np.inf)
    metrics: list[MetricParity] = []
    if target is not None:
        from sklearn.metrics import accuracy_score, log_loss, roc_auc_score

        truth = np.asarray(target).astype(str)
        metrics.append(
            MetricParity(
                "accuracy",
                accuracy_score(truth, native_labels.astype(str)),
                accuracy_score(truth, onnx_labels.astype(str)) if onnx_labels is not None else float("nan"),
                True,
            )
        )
        if native_proba is not None and onnx_proba is not None and onnx_proba.shape == native_proba.shape:
            classes = [str(c) for c in settings.classes]
            present = set(truth)
            if len(classes) == 2 and present <= set(classes) and len(present) == 2:
                positive = truth == classes[1]
                metrics.append(
                    MetricParity(
                        "roc_auc",
                        roc_auc_score(positive, native_proba[:, 1]),
                        roc_auc_score(positive, onnx_proba[:, 1]),
                        True,
                    )
                )
            if present <= set(classes):
                metrics.append(
                    MetricParity(
                        "log_loss",
                        log_loss(truth, _normalised(native_proba), labels=classes),
                        log_loss(truth, _normalised(onnx_proba), labels=classes),
                        False,
                    )
                )
    worst = []
    for index in _worst(per_row, native_labels, onnx_labels):
        item: dict[str, Any] = {"row": int(index), "abs_diff": _float(per_row[index])}
        item["native_label"] = _plain(native_labels[index])
        if onnx_labels is not None:
            item["onnx_label"] = _plain(onnx_labels[index])
        if native_proba is not None and onnx_proba is not None and onnx_proba.shape == native_proba.shape:
            item["native_probabilities"] = [round(float(v), 6) for v in native_proba[index]]
            item["onnx_probabilities"] = [round(float(v), 6) for v in onnx_proba[index]]
        worst.append(item)
    return _report(rows, source, "classification", agree, disagreeing, per_row, "probability", metrics, worst)


def _regression(model, features, onnx_out, settings, target, rows, source) -> ParityReport:
    value_name = settings.primary_output.name
    native = np.asarray(model.predict(features), dtype=np.float64).reshape(rows, -1)
    onnx = np.asarray(onnx_out[value_name], dtype=np.float64).reshape(rows, -1)
    if native.shape != onnx.shape:
        per_row = np.full(rows, np.inf)
    else:
        per_row = (np.abs(onnx - native) / np.maximum(1.0, np.abs(native))).max(axis=1)
    metrics: list[MetricParity] = []
    if target is not None and native.shape == onnx.shape and native.shape[1] == 1:
        from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

        truth = np.asarray(target, dtype=np.float64)
        metrics.append(
            MetricParity(
                "rmse",
                float(np.sqrt(mean_squared_error(truth, native[:, 0]))),
                float(np.sqrt(mean_squared_error(truth, onnx[:, 0]))),
                False,
            )
        )
        metrics.append(
            MetricParity(
                "mae", mean_absolute_error(truth, native[:, 0]), mean_absolute_error(truth, onnx[:, 0]), False
            )
        )
        metrics.append(MetricParity("r2", r2_score(truth, native[:, 0]), r2_score(truth, onnx[:, 0]), False))
    worst = []
    for index in _worst(per_row, None, None):
        item = {"row": int(index), "abs_diff": _float(per_row[index])}
        if native.shape == onnx.shape:
            item["native"] = [round(float(v), 6) for v in native[index]]
            item["onnx"] = [round(float(v), 6) for v in onnx[index]]
        worst.append(item)
    return _report(rows, source, "regression", None, 0, per_row, "value", metrics, worst)


def _worst(per_row: np.ndarray, native_labels: Any, onnx_labels: Any) -> list[int]:
    """Rows whose labels disagree first, then the largest differences."""
    order: list[int] = []
    if native_labels is not None and onnx_labels is not None:
        order = [
            int(i) for i in np.flatnonzero(native_labels.astype(str) != onnx_labels.astype(str))[:WORST_ROWS]
        ]
    for index in np.argsort(-per_row, kind="stable"):
        if len(order) >= WORST_ROWS:
            break
        if int(index) not in order:
            order.append(int(index))
    return order


def _report(rows, source, task, agree, disagreeing, per_row, kind, metrics, worst) -> ParityReport:
    finite = np.where(np.isfinite(per_row), per_row, np.inf)
    return ParityReport(
        rows=rows,
        source=source,
        task=task,
        label_agreement=agree,
        disagreeing_rows=disagreeing,
        diff_max=_float(finite.max()) if rows else 0.0,
        diff_p99=_float(np.quantile(finite, 0.99)) if rows else 0.0,
        diff_p999=_float(np.quantile(finite, 0.999)) if rows else 0.0,
        diff_mean=_float(finite.mean()) if rows else 0.0,
        diff_kind=kind,
        metrics=tuple(metrics),
        worst_rows=tuple(worst),
    )


def _normalised(probabilities: np.ndarray) -> np.ndarray:
    """float32 probabilities sum to 1 only within rounding; log_loss warns about that."""
    clipped = np.clip(probabilities, 1e-15, 1.0)
    return clipped / clipped.sum(axis=1, keepdims=True)


def _float(value: Any) -> float:
    return float(value)


def _plain(value: Any) -> Any:
    item = getattr(value, "item", None)
    return item() if callable(item) else value
