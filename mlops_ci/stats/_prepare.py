"""Checking and encoding inputs: labels become class codes, shapes are checked, and the
positive class and class order of probability columns are settled once."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from mlops_ci.stats._checks import as_1d_or_2d, check_same_rows
from mlops_ci.stats._core import Encoding, MetricSpec, Prepared


def prepare(
    metric: MetricSpec, y_true: Any, predictions: Sequence[tuple[str, Any]]
) -> tuple[Prepared, list[np.ndarray]]:
    """Inputs for one metric applied to one or more models' predictions."""
    return prepare_terms(y_true, [(metric, name, pred) for name, pred in predictions])


def prepare_terms(
    y_true: Any, items: Sequence[tuple[MetricSpec, str, Any]]
) -> tuple[Prepared, list[np.ndarray]]:
    """Inputs for several (metric, parameter name, predictions) items on the same rows.

    ``y_true`` of shape (n,) is one problem; (n, S) is a batch of S independent problems
    (for simulations), with predictions (n, S) or, for multiclass probabilities, (n, S, K).
    """
    if not items:
        raise ValueError("no metric to compute")
    tasks = {metric.task for metric, _, _ in items}
    if len(tasks) > 1:
        raise ValueError("`metric` mixes classification and regression metrics on the same `y_true`")
    regression = tasks == {"regression"}
    y = as_1d_or_2d("y_true", y_true, numeric=regression)
    if y.ndim > 2:
        raise ValueError(f"`y_true` must have one value per row (or rows x problems), got shape {y.shape}")
    if y.shape[0] == 0:
        raise ValueError("`y_true` is empty; there are no rows to score")
    batched = y.ndim == 2
    y2 = y if batched else y[:, None]

    if regression:
        preds = []
        for _metric, name, pred in items:
            array = as_1d_or_2d(name, pred, numeric=True)
            _check_shape(name, array, y)
            preds.append(array if batched else array[:, None])
        return Prepared(y=y2.astype(np.float64), enc=Encoding(), batched=batched), _dedupe(items, preds)

    pos_label = _one_param(items, "pos_label")
    labels = _one_param(items, "labels")
    arrays: list[np.ndarray] = []
    for metric, name, pred in items:
        array = as_1d_or_2d(name, pred, numeric=metric.input == "scores")
        if metric.input == "scores" and array.ndim == y.ndim + 1:
            if array.shape[:-1] != y.shape:
                raise ValueError(
                    f"`{name}` has shape {array.shape}; expected {y.shape} plus one column per class"
                )
        else:
            _check_shape(name, array, y)
        if metric.input == "labels":
            _check_kinds(name, array, y)
        arrays.append(array)

    if labels is not None:
        classes = np.asarray(labels)
        if len(np.unique(classes)) != len(classes):
            raise ValueError("`labels` must not repeat a class")
    else:
        pool = [y.ravel()] + [
            a.ravel() for (m, _, _), a in zip(items, arrays, strict=True) if m.input == "labels"
        ]
        if pos_label is not None:
            pool.append(np.asarray([pos_label]))
        classes = np.unique(np.concatenate([np.asarray(p) for p in pool]))
    width = {
        a.shape[-1]
        for (m, _, _), a in zip(items, arrays, strict=True)
        if m.input == "scores" and a.ndim == y.ndim + 1
    }
    if width:
        columns = width.pop()
        if width:
            raise ValueError("probability scores of the models have different numbers of columns")
        if labels is None:
            if len(classes) != columns:
                raise ValueError(
                    f"scores have {columns} columns but the labels have {len(classes)} classes; pass `labels` "
                    "(the class of each column)"
                )
        elif len(classes) != columns:
            raise ValueError(f"`labels` names {len(classes)} classes but the scores have {columns} columns")

    missing = np.setdiff1d(np.unique(y), classes)
    if missing.size:
        raise ValueError(f"`y_true` holds labels not in `labels`: {', '.join(map(str, missing[:5]))}")
    for (metric, name, _), array in zip(items, arrays, strict=True):
        if metric.input == "labels":
            extra = np.setdiff1d(np.unique(array), classes)
            if extra.size:
                raise ValueError(
                    f"`{name}` predicts labels not in `labels`: {', '.join(map(str, extra[:5]))}"
                )

    if pos_label is not None:
        hits = np.flatnonzero(classes == pos_label)
        if hits.size == 0:
            raise ValueError(f"`pos_label` {pos_label!r} is not one of the classes {list(classes)[:10]}")
        pos: int | None = int(hits[0])
    else:
        pos = len(classes) - 1 if len(classes) <= 2 else None
    binary_scores = any(
        m.input == "scores" and a.ndim == y.ndim for (m, _, _), a in zip(items, arrays, strict=True)
    )
    for metric, _, _ in items:
        if (
            (metric.binary_only or (metric.input == "scores" and binary_scores))
            and len(classes) > 2
            and pos_label is None
        ):
            hint = f"; use {metric.name}-macro" if metric.binary_only else "; pass one column per class"
            raise ValueError(
                f"metric {metric.name} compares a positive class with the rest but the labels have "
                f"{len(classes)} classes; pass `pos_label`{hint}"
            )
    enc = Encoding(classes=classes, pos=pos)
    codes_y = np.searchsorted(classes, y2) if _sortable(classes) else _index_of(classes, y2)
    encoded = []
    for (metric, _, _), array in zip(items, arrays, strict=True):
        a2 = array if batched or (array.ndim == y.ndim + 1 and batched) else _add_batch_axis(array, y)
        if metric.input == "labels":
            a2 = np.searchsorted(classes, a2) if _sortable(classes) else _index_of(classes, a2)
        else:
            a2 = a2.astype(np.float64)
        encoded.append(a2)
    return Prepared(y=codes_y.astype(np.int64), enc=enc, batched=batched), _dedupe(items, encoded)


def _dedupe(items: Sequence[tuple[MetricSpec, str, Any]], arrays: list[np.ndarray]) -> list[np.ndarray]:
    """The same input object gives the same encoded array object (so the engine knows two
    terms score the same predictions)."""
    seen: dict[int, np.ndarray] = {}
    out = []
    for (metric, _, pred), array in zip(items, arrays, strict=True):
        key = (id(pred), metric.input)
        out.append(seen.setdefault(hash(key), array))
    return out


def _add_batch_axis(array: np.ndarray, y: np.ndarray) -> np.ndarray:
    # (n,) -> (n, 1); (n, K) multiclass scores -> (n, 1, K)
    return array[:, None] if array.ndim == y.ndim else array[:, None, :]


def _check_shape(name: str, array: np.ndarray, y: np.ndarray) -> None:
    check_same_rows("y_true", y, **{name: array})
    if array.shape != y.shape:
        raise ValueError(f"`{name}` has shape {array.shape} but `y_true` has shape {y.shape}")


def _check_kinds(name: str, array: np.ndarray, y: np.ndarray) -> None:
    numeric = {"b", "i", "u", "f"}
    if (array.dtype.kind in numeric) != (y.dtype.kind in numeric):
        raise TypeError(
            f"`{name}` holds {'numbers' if array.dtype.kind in numeric else 'text'} but `y_true` holds "
            f"{'numbers' if y.dtype.kind in numeric else 'text'}; convert both to the same label type"
        )


def _one_param(items: Sequence[tuple[MetricSpec, str, Any]], key: str) -> Any:
    values = [m.params[key] for m, _, _ in items if key in m.params]
    if not values:
        return None
    first = values[0]
    for other in values[1:]:
        if np.asarray(other).tolist() != np.asarray(first).tolist():
            raise ValueError(f"the metrics disagree on `{key}`: {first!r} and {other!r}")
    return first


def _sortable(classes: np.ndarray) -> bool:
    """Strictly ascending classes can be looked up with a binary search."""
    try:
        return len(classes) < 2 or bool(np.all(classes[:-1] < classes[1:]))
    except TypeError:
        return False


def _index_of(classes: np.ndarray, values: np.ndarray) -> np.ndarray:
    lookup = {c: i for i, c in enumerate(classes.tolist())}
    return np.vectorize(lookup.__getitem__, otypes=[np.int64])(values)
