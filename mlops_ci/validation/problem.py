"""What is being predicted: the task, the label set, the positive class, and the
predictions of both models in the forms the metrics need."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from mlops_ci.errors import SettingError
from mlops_ci.validation.models import LoadedModel, Predictions

MAX_CLASSES_FOR_LABEL_TARGET = 50


@dataclass
class Problem:
    task: str  # classification | regression
    y: np.ndarray
    classes: np.ndarray | None  # sorted labels (classification)
    pos_label: Any  # binary classification: the positive class
    candidate: Predictions
    baseline: Predictions | None

    @property
    def binary(self) -> bool:
        return self.task == "classification" and self.classes is not None and len(self.classes) == 2

    def inputs(self, which: Predictions, mask: np.ndarray | None = None) -> dict[str, Any]:
        """{labels|values, scores} for the stats API; binary scores are P(positive)."""
        sl = slice(None) if mask is None else mask
        if self.task == "regression":
            return {"values": np.asarray(which.labels, dtype=np.float64)[sl]}
        out: dict[str, Any] = {"labels": which.labels[sl]}
        if which.scores is not None:
            out["scores"] = self._aligned_scores(which)[sl]
        return out

    def _aligned_scores(self, which: Predictions) -> np.ndarray:
        """Probability columns in the order of ``classes`` (a class the model never saw gets
        probability 0); for a binary problem, the positive class's column."""
        assert which.scores is not None and self.classes is not None
        model_classes = list(np.asarray(which.classes).tolist()) if which.classes is not None else []
        columns = np.zeros((which.scores.shape[0], len(self.classes)))
        for k, label in enumerate(self.classes.tolist()):
            if label in model_classes:
                columns[:, k] = which.scores[:, model_classes.index(label)]
        if self.binary:
            return columns[:, int(np.flatnonzero(self.classes == self.pos_label)[0])]
        return columns


def infer_task(
    requested: str, holdout_y: np.ndarray, candidate: LoadedModel, labels: np.ndarray | None
) -> str:
    if requested != "auto":
        return requested
    flagged = candidate.is_classifier
    if flagged is not None:
        return "classification" if flagged else "regression"
    if holdout_y.dtype.kind in "OUSb":
        return "classification"
    if labels is not None and labels.dtype.kind in "OUSb":
        return "classification"
    if labels is not None and labels.dtype.kind == "f" and not np.all(np.equal(np.mod(labels, 1), 0)):
        return "regression"
    distinct = np.unique(holdout_y)
    integral = holdout_y.dtype.kind in "iu" or bool(np.all(np.equal(np.mod(distinct, 1), 0)))
    return "classification" if integral and len(distinct) <= 20 else "regression"


def _harmonise(arrays: dict[str, np.ndarray | None]) -> dict[str, np.ndarray | None]:
    """Labels read from a CSV and labels a model predicts may differ in type (1 vs "1"):
    when their kinds differ, compare all of them as text."""
    numeric = "biuf"
    kinds = {a.dtype.kind in numeric for a in arrays.values() if a is not None}
    if len(kinds) <= 1:
        return dict(arrays)

    def text(a: np.ndarray) -> np.ndarray:
        if a.dtype.kind == "f" and np.all(np.equal(np.mod(a, 1), 0)):
            a = a.astype(np.int64)
        return a.astype(str).astype(object)

    return {k: None if a is None else text(np.asarray(a)) for k, a in arrays.items()}


def build_problem(
    *,
    task: str,
    y: np.ndarray,
    candidate: Predictions,
    baseline: Predictions | None,
    candidate_model: LoadedModel,
    baseline_model: LoadedModel | None,
    positive_label: str | None,
) -> Problem:
    """Settle labels and the positive class; different label sets of the models are a usage
    error (they cannot be compared on one holdout)."""
    if task == "regression":
        for role, pred in (("candidate", candidate), ("baseline", baseline)):
            if pred is not None and pred.labels is not None and pred.labels.dtype.kind not in "biuf":
                raise SettingError(
                    f"the {role} predicts text labels but the task is regression", setting="task"
                )
        if y.dtype.kind not in "biuf":
            raise SettingError(
                "the target column holds text but the task is regression; check the task or the target column",
                setting="task",
            )
        return Problem("regression", y.astype(np.float64), None, None, candidate, baseline)

    a = _harmonise(
        {
            "y": y,
            "c_labels": candidate.labels,
            "b_labels": None if baseline is None else baseline.labels,
            "c_classes": _classes(candidate, candidate_model),
            "b_classes": None if baseline is None else _classes(baseline, baseline_model),
        }
    )
    y = a["y"]
    if a["c_classes"] is not None and a["b_classes"] is not None:
        c_set, b_set = set(a["c_classes"].tolist()), set(a["b_classes"].tolist())
        if c_set != b_set:
            raise SettingError(
                f"the candidate predicts the labels {_few(c_set)} but the baseline {_few(b_set)}: they cannot "
                "be compared on one holdout; retrain on the same label set or check the target column",
                setting="target",
            )
    candidate.labels, candidate.classes = a["c_labels"], a["c_classes"]
    if baseline is not None:
        baseline.labels, baseline.classes = a["b_labels"], a["b_classes"]
    pools = [np.asarray(v, dtype=object) for v in a.values() if v is not None]
    classes = np.unique(np.concatenate(pools).astype(y.dtype))
    if len(classes) > MAX_CLASSES_FOR_LABEL_TARGET:
        raise SettingError(
            f"the target has {len(classes)} distinct labels; is it a regression target? then the task is regression",
            setting="task",
        )
    y_set = set(np.unique(y).tolist())
    predictable = set(np.unique(a["c_labels"]).tolist())
    if a["c_classes"] is not None:
        predictable |= set(a["c_classes"].tolist())
    if not y_set & predictable:
        raise SettingError(
            f"the target column's labels ({_few(y_set)}) never occur in the candidate's predictions "
            f"({_few(predictable)})",
            setting="target",
        )
    pos = _positive(classes, positive_label, a["c_classes"])
    return Problem("classification", y, classes, pos, candidate, baseline)


def _classes(pred: Predictions, model: LoadedModel | None) -> np.ndarray | None:
    if pred.classes is not None:
        return np.asarray(pred.classes)
    return None if model is None else model.classes


def _positive(classes: np.ndarray, requested: str | None, model_classes: np.ndarray | None) -> Any:
    if requested is not None:
        hits = [c for c in classes if str(c) == str(requested)]
        if not hits:
            raise SettingError(
                f"positive label {requested!r} is not a label of the holdout or the models ({_few(set(classes.tolist()))})",
                setting="positive-label",
            )
        return hits[0]
    if len(classes) != 2:
        return None
    # scikit-learn's convention: the second of the sorted classes is the positive one.
    if model_classes is not None and len(model_classes) == 2:
        return model_classes[1]
    return classes[-1]


def _few(values: set[Any]) -> str:
    items = sorted(map(str, values))
    return "{" + ", ".join(items[:8]) + (", ..." if len(items) > 8 else "") + "}"
