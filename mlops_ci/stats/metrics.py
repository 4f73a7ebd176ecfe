"""Metrics written so that a bootstrap can evaluate thousands of resamples at once.

A resample is a vector of row weights (how often each row was drawn). Most metrics are a
function of a few weighted sums over rows: accuracy is ``sum(w * correct) / sum(w)``, F1 is
``2 tp / (predicted positives + actual positives)`` with each count a weighted sum, R² needs
``sum(w e²)``, ``sum(w y)`` and ``sum(w y²)``. Such a metric ("linear") declares its per-row
features and a ``finish`` function of their sums, and a whole batch of resamples becomes one
matrix product. ROC AUC is a rank statistic and gets its own vectorised path (see
``_engine``). A custom metric that returns one number per call is supported too, at the cost
of one call per resample.

All arrays carry a trailing batch axis of independent problems (``S``), so a simulation of
many holdouts is one call; for a single holdout ``S`` is 1.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mlops_ci.stats._core import AGGREGATE, LINEAR, RANK, Encoding
from mlops_ci.stats._engine import Term, resample_terms
from mlops_ci.stats._prepare import prepare

INPUTS = ("labels", "scores", "values")
TASKS = ("classification", "regression")
EPS = np.finfo(np.float64).eps


@dataclass(frozen=True)
class Metric:
    """A metric: its name, direction, what it consumes, and how it is computed.

    ``input`` is ``"labels"`` (predicted classes), ``"scores"`` (predicted probabilities: of
    the positive class for binary problems, one column per class otherwise) or ``"values"``
    (regression predictions). ``params`` holds ``pos_label`` and ``labels`` when given.
    """

    name: str
    higher_is_better: bool
    input: str
    task: str
    description: str = ""
    binary_only: bool = False
    params: Mapping[str, Any] = field(default_factory=dict)

    # How the engine computes it: each subclass says (``_core.LINEAR``, ``RANK``, ``AGGREGATE``).
    kind = ""

    def with_params(self, **params: Any) -> Metric:
        from dataclasses import replace

        merged = {**self.params, **{k: v for k, v in params.items() if v is not None}}
        return replace(self, params=merged)

    def __call__(self, y_true: Any, y_pred: Any) -> float:
        """The metric on one sample (for convenience and for cross-checks)."""
        return point_estimate(y_true, y_pred, self)


@dataclass(frozen=True)
class LinearMetric(Metric):
    """``finish(sums of per-row features, total weight)``; both carry leading batch axes."""

    features: Callable[[np.ndarray, np.ndarray, Encoding], np.ndarray] | None = None
    finish: Callable[[np.ndarray, np.ndarray, Encoding], np.ndarray] | None = None
    # The per-row loss whose mean is the metric (for paired t / Wilcoxon), when there is one.
    per_row: Callable[[np.ndarray, np.ndarray, Encoding], np.ndarray] | None = None

    kind = LINEAR


@dataclass(frozen=True)
class RankMetric(Metric):
    """ROC AUC (binary, or one-vs-rest macro average over classes)."""

    kind = RANK


@dataclass(frozen=True)
class AggregateMetric(Metric):
    """A user function returning one number for a whole sample: called once per resample."""

    function: Callable[..., Any] | None = None

    kind = AGGREGATE


def point_estimate(y_true: Any, y_pred: Any, metric: Metric) -> float:
    """A metric on one sample, through the same code the bootstrap uses."""
    prep, preds = prepare(metric, y_true, [("y_pred", y_pred)])
    out = resample_terms(
        prep, [Term(metric, preds[0])], n_resamples=1, seed=np.random.SeedSequence(0), workers=1
    )
    return float(out[0].point[0])


# --- feature helpers -------------------------------------------------------------------


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.true_divide(num, den)
    return np.where(den > 0, out, np.nan)


def _stack(*columns: np.ndarray) -> np.ndarray:
    return np.stack([np.asarray(c, dtype=np.float64) for c in columns], axis=-1)


def _pos(enc: Encoding, name: str) -> int:
    if enc.pos is None:
        raise ValueError(f"metric {name} needs a positive class; pass `pos_label`")
    return enc.pos


# labels ---------------------------------------------------------------------------------


def _accuracy_features(y, p, enc):
    return _stack(y == p)


def _accuracy_finish(s, w, enc):
    return _ratio(s[..., 0], w)


def _per_class(y, p, enc, what):
    cols = []
    for k in range(enc.n_classes):
        yk, pk = y == k, p == k
        if what == "balanced":
            cols += [yk & pk, yk]
        else:
            cols += [yk & pk, pk, yk]
    return _stack(*cols)


def _balanced_features(y, p, enc):
    return _per_class(y, p, enc, "balanced")


def _balanced_finish(s, w, enc):
    k = enc.n_classes
    tp, support = s[..., 0 : 2 * k : 2], s[..., 1 : 2 * k : 2]
    recall = _ratio(tp, support)
    present = support > 0
    with np.errstate(invalid="ignore"):
        return np.where(present.any(-1), np.nansum(recall, -1) / present.sum(-1), np.nan)


def _binary_features(y, p, enc, name):
    pos = _pos(enc, name)
    yt, pt = y == pos, p == pos
    return _stack(yt & pt, pt, yt)


def _precision_finish(s, w, enc):
    return _ratio(s[..., 0], s[..., 1])


def _recall_finish(s, w, enc):
    return _ratio(s[..., 0], s[..., 2])


def _f1_finish(s, w, enc):
    return _ratio(2 * s[..., 0], s[..., 1] + s[..., 2])


def _macro_features(y, p, enc):
    return _per_class(y, p, enc, "macro")


def _macro_finish(which: str) -> Callable:
    """Macro averages the way scikit-learn computes them: over the classes that occur in
    the truth or the predictions of the (re)sample, an undefined per-class value counting 0."""

    def finish(s, w, enc):
        k = enc.n_classes
        tp, pp, real = s[..., 0 : 3 * k : 3], s[..., 1 : 3 * k : 3], s[..., 2 : 3 * k : 3]
        present = (pp + real) > 0
        if which == "precision":
            per = np.nan_to_num(_ratio(tp, pp))
        elif which == "recall":
            per = np.nan_to_num(_ratio(tp, real))
        else:
            per = np.nan_to_num(_ratio(2 * tp, pp + real))
        count = present.sum(-1)
        return np.where(count > 0, (per * present).sum(-1) / np.maximum(count, 1), np.nan)

    return finish


# scores ---------------------------------------------------------------------------------


def _probability_of_truth(y, s, enc, name):
    """P(true class) per row: binary scores are P(positive); otherwise one column per class."""
    if s.ndim == y.ndim:  # binary: probability of the positive class
        pos = _pos(enc, name)
        p = np.clip(s, 0.0, 1.0)
        return np.where(y == pos, p, 1.0 - p)
    total = s.sum(-1, keepdims=True)
    normalised = s / np.where(total > 0, total, 1.0)
    return np.take_along_axis(normalised, y[..., None].astype(np.intp), axis=-1)[..., 0]


def _log_loss_row(y, s, enc):
    p = np.clip(_probability_of_truth(y, s, enc, "log-loss"), EPS, 1 - EPS)
    return -np.log(p)


def _brier_row(y, s, enc):
    if s.ndim == y.ndim:
        pos = _pos(enc, "brier")
        return (np.clip(s, 0, 1) - (y == pos)) ** 2
    onehot = np.arange(s.shape[-1]) == y[..., None]
    return ((s - onehot) ** 2).sum(-1)


def _decoded(codes: np.ndarray, enc: Encoding) -> np.ndarray:
    return codes if enc.classes is None else enc.classes[codes]


def _mean_finish(s, w, enc):
    return _ratio(s[..., 0], w)


def _from_row(row: Callable) -> Callable:
    return lambda y, p, enc: row(y, p, enc)[..., None]


# values ---------------------------------------------------------------------------------


def _abs_error(y, p, enc):
    return np.abs(y - p)


def _sq_error(y, p, enc):
    return (y - p) ** 2


def _ape(y, p, enc):
    return np.abs(y - p) / np.maximum(np.abs(y), EPS)


def _rmse_finish(s, w, enc):
    return np.sqrt(_ratio(s[..., 0], w))


def _r2_features(y, p, enc):
    return _stack((y - p) ** 2, y, y**2)


def _r2_finish(s, w, enc):
    sse, sy, syy = s[..., 0], s[..., 1], s[..., 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        sst = syy - sy * sy / w
    # A constant truth leaves R² undefined; relative rounding below 1e-12 counts as constant.
    scale = np.maximum(syy, 1e-300)
    return np.where(sst > 1e-12 * scale, 1.0 - sse / np.where(sst > 0, sst, 1.0), np.nan)


# --- the registry ----------------------------------------------------------------------


def _linear(name, hib, input, task, features, finish, description, per_row=None, binary_only=False):
    return LinearMetric(
        name=name,
        higher_is_better=hib,
        input=input,
        task=task,
        description=description,
        binary_only=binary_only,
        features=features,
        finish=finish,
        per_row=per_row,
    )


BUILTIN: dict[str, Metric] = {
    m.name: m
    for m in (
        _linear(
            "accuracy",
            True,
            "labels",
            "classification",
            _accuracy_features,
            _accuracy_finish,
            "share of rows predicted correctly",
            per_row=lambda y, p, enc: (y != p).astype(np.float64),
        ),
        _linear(
            "balanced-accuracy",
            True,
            "labels",
            "classification",
            _balanced_features,
            _balanced_finish,
            "mean recall over the classes present",
        ),
        _linear(
            "precision",
            True,
            "labels",
            "classification",
            lambda y, p, enc: _binary_features(y, p, enc, "precision"),
            _precision_finish,
            "share of predicted positives that are positive (binary)",
            binary_only=True,
        ),
        _linear(
            "recall",
            True,
            "labels",
            "classification",
            lambda y, p, enc: _binary_features(y, p, enc, "recall"),
            _recall_finish,
            "share of positives predicted positive (binary)",
            binary_only=True,
        ),
        _linear(
            "f1",
            True,
            "labels",
            "classification",
            lambda y, p, enc: _binary_features(y, p, enc, "f1"),
            _f1_finish,
            "harmonic mean of precision and recall (binary)",
            binary_only=True,
        ),
        _linear(
            "precision-macro",
            True,
            "labels",
            "classification",
            _macro_features,
            _macro_finish("precision"),
            "precision averaged over classes",
        ),
        _linear(
            "recall-macro",
            True,
            "labels",
            "classification",
            _macro_features,
            _macro_finish("recall"),
            "recall averaged over classes",
        ),
        _linear(
            "f1-macro",
            True,
            "labels",
            "classification",
            _macro_features,
            _macro_finish("f1"),
            "F1 averaged over classes",
        ),
        RankMetric(
            name="roc-auc",
            higher_is_better=True,
            input="scores",
            task="classification",
            description="area under the ROC curve (one-vs-rest macro average for several classes)",
        ),
        _linear(
            "log-loss",
            False,
            "scores",
            "classification",
            _from_row(_log_loss_row),
            _mean_finish,
            "mean negative log-likelihood of the true class",
            per_row=_log_loss_row,
        ),
        _linear(
            "brier",
            False,
            "scores",
            "classification",
            _from_row(_brier_row),
            _mean_finish,
            "mean squared error of the predicted probabilities",
            per_row=_brier_row,
        ),
        _linear(
            "mae",
            False,
            "values",
            "regression",
            _from_row(_abs_error),
            _mean_finish,
            "mean absolute error",
            per_row=_abs_error,
        ),
        _linear(
            "mse",
            False,
            "values",
            "regression",
            _from_row(_sq_error),
            _mean_finish,
            "mean squared error",
            per_row=_sq_error,
        ),
        _linear(
            "rmse",
            False,
            "values",
            "regression",
            _from_row(_sq_error),
            _rmse_finish,
            "root mean squared error",
        ),
        _linear("r2", True, "values", "regression", _r2_features, _r2_finish, "coefficient of determination"),
        _linear(
            "mape",
            False,
            "values",
            "regression",
            _from_row(_ape),
            _mean_finish,
            "mean absolute percentage error (as a fraction)",
            per_row=_ape,
        ),
    )
}

ALIASES = {
    "auc": "roc-auc",
    "roc_auc": "roc-auc",
    "log_loss": "log-loss",
    "balanced_accuracy": "balanced-accuracy",
    "f1_macro": "f1-macro",
    "precision_macro": "precision-macro",
    "recall_macro": "recall-macro",
    "brier-score": "brier",
    "brier_score": "brier",
}


def metric_names(task: str | None = None) -> tuple[str, ...]:
    """The built-in metric names, optionally for one task."""
    return tuple(name for name, m in BUILTIN.items() if task is None or m.task == task)


def get_metric(name: str | Metric, *, pos_label: Any = None, labels: Any = None) -> Metric:
    """A built-in metric by name (``"accuracy"``, ``"roc-auc"``, ``"rmse"``...), with
    ``pos_label`` for the binary metrics and ``labels`` (the class order of probability
    columns) for multiclass scores."""
    if isinstance(name, Metric):
        metric = name
    else:
        if not isinstance(name, str):
            raise TypeError(f"`metric` must be a metric name or a Metric, got {type(name).__name__}")
        key = ALIASES.get(name, name)
        if key not in BUILTIN:
            raise ValueError(
                f"`metric` {name!r} is not a built-in metric; choose one of {', '.join(BUILTIN)}"
            )
        metric = BUILTIN[key]
    params: dict[str, Any] = {}
    if pos_label is not None:
        params["pos_label"] = pos_label
    if labels is not None:
        params["labels"] = list(labels)
    return metric.with_params(**params) if params else metric


def custom_metric(
    function: Callable[..., Any],
    *,
    name: str,
    higher_is_better: bool,
    input: str = "labels",
    task: str = "classification",
    per_row: bool = False,
) -> Metric:
    """Wrap a user function ``function(y_true, y_pred)``.

    With ``per_row=True`` it returns one value per row and the metric is their mean: fully
    vectorised. Otherwise it returns one number for a sample and the bootstrap calls it once
    per resample (slower; a sample weight is passed as ``sample_weight`` when the function
    accepts it).
    """
    from mlops_ci.stats._checks import check_choice

    if not callable(function):
        raise TypeError(f"`function` must be callable, got {type(function).__name__}")
    if not isinstance(higher_is_better, bool):
        raise TypeError(f"`higher_is_better` must be true or false, got {higher_is_better!r}")
    check_choice("input", input, INPUTS)
    check_choice("task", task, TASKS)
    if per_row:

        def call(y: np.ndarray, p: np.ndarray) -> np.ndarray:
            try:
                values = np.asarray(function(y, p), dtype=np.float64)
            except Exception as exc:
                raise ValueError(f"custom metric {name!r} raised {type(exc).__name__}: {exc}") from exc
            if values.shape != y.shape:
                raise ValueError(
                    f"custom metric {name!r} returned shape {values.shape}; a per-row metric returns one "
                    f"value per row ({len(y)})"
                )
            return values

        def row(y, p, enc):
            # The user's function sees the original labels, one problem (column) at a time.
            y, p = _decoded(y, enc), (_decoded(p, enc) if input == "labels" else p)
            if y.ndim == 1:
                return call(y, p)
            return np.stack([call(y[:, s], p[:, s]) for s in range(y.shape[1])], axis=1)

        return _linear(
            name, higher_is_better, input, task, _from_row(row), _mean_finish, "custom", per_row=row
        )
    return AggregateMetric(
        name=name,
        higher_is_better=higher_is_better,
        input=input,
        task=task,
        description="custom",
        function=function,
    )
