"""Live quality from labels that arrive later: join them to the request log by request id,
bootstrap the live metric over the joined rows, and test whether it is worse than the
deployed version's validation estimate by more than a declared margin; on a decay, start
the training pipeline as drift does (``watch.dispatch_retraining``, same cooldown).

The test is one-sided at level ``alpha``: the null is "live quality is no worse than the
validation estimate minus the margin"; a decay is declared when the bootstrap p-value of
that bound is at most ``alpha`` (equivalently, the whole one-sided ``1 - alpha`` interval
lies beyond the bound). The validation estimate is taken as a fixed reference: it is the
number the version was promoted on. The quality step builds a ``QualityRequest`` and maps
the ``QualityOutcome`` to its result; nothing here knows about flags or step results.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mlops_ci.errors import UsageError
from mlops_ci.monitoring.watch import RetrainPlan
from mlops_ci.platforms.base import Platform, Published

if TYPE_CHECKING:
    import pandas as pd

    from mlops_ci.tracking.store import TrackingStore

log = logging.getLogger(__name__)

LABEL = "label"


class MissingColumn(UsageError):
    """A labels file lacks the id or the label column (``role``: "id" or "label")."""

    def __init__(self, file_name: str, column: str, role: str, columns: Sequence[str]) -> None:
        super().__init__(
            f"{file_name} has no {role} column {column!r} (its columns: {', '.join(map(str, columns[:12]))})"
        )
        self.file_name, self.column, self.role = file_name, column, role


class DuplicateLabels(UsageError):
    """A request id is labelled twice: which label is true is unknown."""


class NoValidationEstimate(UsageError):
    """The deployed version's run has no validate/<metric> metric to compare with."""


@dataclass(frozen=True)
class QualityRequest:
    """A quality check. ``expected``: the validation estimate to compare with; None: read
    ``validate/<metric>`` from the run of ``model_uri``'s version. ``margin`` (>= 0, in the
    metric's units): how much worse than the estimate is tolerated before calling a decay."""

    requests: tuple[Path, ...]
    labels: tuple[Path, ...]
    id_column: str = "request_id"
    label_column: str = "label"
    metric: str = "accuracy"
    expected: float | None = None
    model_uri: str | None = None
    margin: float = 0.0
    alpha: float = 0.05
    min_rows: int = 200
    n_resamples: int = 2000
    seed: int = 0
    window_days: float | None = None
    retrain: RetrainPlan | None = None
    requests_label: str = "request log"


@dataclass(frozen=True)
class Joined:
    """The labelled predictions and what did not join. ``frame`` has ``label`` and the
    prediction columns; ``without_id``: logged rows with no request id; ``unlabelled``:
    logged ids with no label (yet); ``unmatched_labels``: labels of ids not in the log;
    ``ambiguous``: logged rows whose id the log holds more than once (not joined);
    ``missing_labels``: label rows with an empty label."""

    frame: pd.DataFrame
    logged: int
    labelled: int
    without_id: int
    unlabelled: int
    unmatched_labels: int
    ambiguous: int
    missing_labels: int

    @property
    def matched(self) -> int:
        return len(self.frame)

    def counts(self) -> dict[str, int]:
        return {
            "logged": self.logged,
            "labelled": self.labelled,
            "matched": self.matched,
            "without_id": self.without_id,
            "unlabelled": self.unlabelled,
            "unmatched_labels": self.unmatched_labels,
            "ambiguous": self.ambiguous,
            "missing_labels": self.missing_labels,
        }


@dataclass(frozen=True)
class Assessment:
    """The live metric against the validation estimate. ``low``/``high``: the two-sided
    ``1 - 2 alpha`` interval, whose bound on the worse side is the one-sided ``1 - alpha``
    bound the test uses; ``decayed``: p-value <= alpha; ``skip``: why the metric is
    undefined on these rows (None when it is defined). With a batch of periods every number
    is an array."""

    metric: str
    live: Any
    low: Any
    high: Any
    pvalue: Any
    decayed: Any
    expected: float
    margin: float
    alpha: float
    higher_is_better: bool
    n: int
    skip: Any = None

    @property
    def bound(self) -> float:
        """The quality below which (above, for losses) live quality counts as decayed."""
        return self.expected - self.margin if self.higher_is_better else self.expected + self.margin

    def headline(self) -> str:
        """ "quality decay: accuracy 0.78 [0.75, 0.80] vs 0.85 validated" (the retraining's reason)."""
        word = "quality decay" if self.decayed else "no quality decay"
        text = (
            f"{word}: {self.metric} {self.live:.4g} [{self.low:.4g}, {self.high:.4g}] vs "
            f"{self.expected:.4g} validated"
        )
        return f"{text} (margin {self.margin:g})" if self.margin else text

    def reason(self) -> str:
        return f"{self.headline()}; one-sided p = {self.pvalue:.3g} (alpha {self.alpha:g}), {self.n:,} labelled rows"


@dataclass(frozen=True)
class QualityOutcome:
    """``assessment`` is None when fewer than ``min_rows`` rows joined (``skip_reason``
    says so). ``dispatched``: what became of the retraining (None: not started)."""

    joined: Joined
    expected: float
    expected_source: str
    assessment: Assessment | None
    skip_reason: str | None
    window_start: str | None
    window_end: str | None
    model: str | None = None
    dispatched: Published | None = None


# --- the statistics ----------------------------------------------------------------------


def assess(
    y_true: Any,
    predictions: Any,
    metric: str,
    *,
    expected: float,
    margin: float = 0.0,
    alpha: float = 0.05,
    n_resamples: int = 2000,
    random_state: Any = None,
) -> Assessment:
    """One-sided bootstrap test that the live ``metric`` is worse than ``expected`` by more
    than ``margin``. ``y_true``/``predictions`` of shape (n,) or (n, S) for S independent
    periods at once (the simulation tests use this)."""
    from mlops_ci.stats import bootstrap_metric, get_metric

    if not 0 < alpha < 0.5:
        raise ValueError(f"`alpha` must lie strictly between 0 and 0.5, got {alpha!r}")
    if margin < 0:
        raise ValueError(f"`margin` must be at least 0, got {margin!r}")
    chosen = get_metric(metric)
    boot = bootstrap_metric(
        y_true,
        predictions,
        chosen,
        n_resamples=n_resamples,
        confidence_level=1 - 2 * alpha,
        random_state=random_state,
    )
    hib = boot.higher_is_better
    bound = expected - margin if hib else expected + margin
    pvalue = np.asarray(boot.pvalue_at(bound, alternative="less" if hib else "greater"), dtype=np.float64)
    skipped = np.asarray(boot.skipped, dtype=bool)
    decayed = (pvalue <= alpha) & ~skipped
    batched = np.ndim(boot.statistic) > 0

    def out(a: Any) -> Any:
        return a if batched else a.reshape(-1)[0].item()

    reason = np.where(skipped, np.asarray(boot.reason, dtype=object), None)
    if not batched:
        reason = reason.reshape(-1)[0]
    return Assessment(
        metric=chosen.name,
        live=out(np.asarray(boot.statistic, dtype=np.float64)),
        low=out(np.asarray(boot.confidence_interval.low, dtype=np.float64)),
        high=out(np.asarray(boot.confidence_interval.high, dtype=np.float64)),
        pvalue=out(pvalue),
        decayed=out(decayed),
        expected=float(expected),
        margin=float(margin),
        alpha=float(alpha),
        higher_is_better=hib,
        n=boot.n,
        skip=reason,
    )


# --- the data ----------------------------------------------------------------------------


def read_labels(paths: Sequence[Path], *, id_column: str, label_column: str) -> tuple[pd.DataFrame, int]:
    """The labels by request id (columns ``REQUEST_ID`` and ``LABEL``) and the number of
    rows with an empty label (left out). Ids are read as text; an id labelled twice, in one
    file or across files, is an error naming the file."""
    import pandas as pd

    from mlops_ci.monitoring.data import REQUEST_ID, expand, read_table

    frames, missing = [], 0
    seen: dict[str, str] = {}
    for file in expand(paths, label="labels"):
        table = read_table(file)
        for column, role in ((id_column, "id"), (label_column, "label")):
            if column not in table.columns:
                raise MissingColumn(file.name, column, role, list(table.columns))
        part = table[[id_column, label_column]].rename(columns={id_column: REQUEST_ID, label_column: LABEL})
        part = part[part[REQUEST_ID].notna()]
        part[REQUEST_ID] = part[REQUEST_ID].map(_id_text)
        doubled = part[REQUEST_ID][part[REQUEST_ID].duplicated()].unique()
        if len(doubled):
            raise DuplicateLabels(
                f"{file.name} labels {len(doubled)} request id(s) more than once ({', '.join(doubled[:5])}); "
                "give one label per request id"
            )
        again = [i for i in part[REQUEST_ID] if i in seen]
        if again:
            raise DuplicateLabels(
                f"{file.name} labels request id(s) {seen[again[0]]} labels already ({', '.join(again[:5])}); "
                "give one label per request id"
            )
        seen.update(dict.fromkeys(part[REQUEST_ID], file.name))
        blank = part[LABEL].isna()
        missing += int(blank.sum())
        frames.append(part[~blank])
    labels = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    return labels.reset_index(drop=True), missing


def _id_text(value: Any) -> str:
    # CSV readers turn numeric ids into floats (1.0); an integral float is the integer's text.
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def join(logged: pd.DataFrame, labels: pd.DataFrame, *, missing_labels: int = 0) -> Joined:
    """Join ``labels`` (``REQUEST_ID``, ``LABEL``) to the request log's rows by request id;
    everything that does not join is counted, not dropped silently."""
    from mlops_ci.monitoring.data import REQUEST_ID

    if REQUEST_ID not in logged.columns:
        logged = logged.assign(**{REQUEST_ID: None})
    ids = logged[REQUEST_ID]
    has_id = ids.notna()
    doubled = ids[has_id].duplicated(keep=False)
    usable = logged[has_id][~doubled.to_numpy()]
    frame = usable.merge(labels, on=REQUEST_ID, how="inner", validate="one_to_one")
    logged_ids = set(ids[has_id])
    return Joined(
        frame=frame.reset_index(drop=True),
        logged=len(logged),
        labelled=len(labels),
        without_id=int((~has_id).sum()),
        unlabelled=len(usable) - len(frame),
        unmatched_labels=int((~labels[REQUEST_ID].isin(logged_ids)).sum()),
        ambiguous=int(doubled.sum()),
        missing_labels=missing_labels,
    )


# --- the check ---------------------------------------------------------------------------


def check_quality(
    request: QualityRequest, *, store: TrackingStore | None = None, platform: Platform | None = None
) -> QualityOutcome:
    """Run the check. ``store``: the registry (for the recorded validation estimate and the
    retraining cooldown); ``platform``: the code host, connected (with ``request.retrain``)."""
    from mlops_ci.monitoring import data
    from mlops_ci.stats import get_metric

    if request.retrain is not None and platform is None:
        raise ValueError("`platform` is needed to start retraining")
    if request.model_uri and store is None:
        raise ValueError("`store` is needed to find the model version")
    if request.expected is None and not request.model_uri:
        raise ValueError("`expected` or `model_uri` is needed")
    metric = get_metric(request.metric)
    logged = data.load(
        request.requests, label=request.requests_label, window_days=request.window_days, ids=True
    )
    labels, missing = read_labels(
        request.labels, id_column=request.id_column, label_column=request.label_column
    )
    model = client = None
    if request.model_uri:
        from mlops_ci.monitoring.watch import find_model

        model, client = find_model(request.model_uri, store)
    if request.expected is not None:
        expected, source = float(request.expected), "given"
    else:
        expected, source = _validation_estimate(client, store, model, metric.name)
    column = data.PREDICTION_SCORE if metric.input == "scores" else data.PREDICTION
    if column not in logged.frame.columns:
        what = "a two-class probability output" if column == data.PREDICTION_SCORE else "a one-column output"
        raise UsageError(
            f"{request.requests_label} has no {column} to compute {metric.name} on (it needs {what} logged)"
        )
    joined = join(
        logged.frame[[c for c in (data.REQUEST_ID, column) if c in logged.frame.columns]],
        labels,
        missing_labels=missing,
    )
    window = logged.window
    base = {
        "joined": joined,
        "expected": expected,
        "expected_source": source,
        "window_start": window.start,
        "window_end": window.end,
        "model": model.uri if model is not None else None,
    }
    rows = joined.frame[joined.frame[column].notna()]
    if len(rows) < request.min_rows:
        reason = (
            f"only {len(rows)} labelled predictions joined (fewer than the minimum {request.min_rows}); "
            "quality not tested"
        )
        return QualityOutcome(assessment=None, skip_reason=reason, **base)
    assessment = assess(
        _labels_like(rows[LABEL], rows[column], metric.input),
        rows[column].to_numpy(),
        metric.name,
        expected=expected,
        margin=request.margin,
        alpha=request.alpha,
        n_resamples=request.n_resamples,
        random_state=request.seed,
    )
    if assessment.skip is not None:
        return QualityOutcome(assessment=assessment, skip_reason=str(assessment.skip), **base)
    dispatched = None
    plan = request.retrain
    if plan is not None and assessment.decayed:
        from mlops_ci.monitoring.watch import dispatch_retraining, recent_retraining, remember_retraining

        reason = assessment.headline()
        recent = recent_retraining(store, client, model, plan.cooldown_hours)
        if recent is not None:
            dispatched = Published("cooldown", done=False, kind="dispatch", reason=recent)
        else:
            dispatched = dispatch_retraining(platform, plan, reason=reason, window=window, model=model)
            if dispatched.done:
                remember_retraining(store, client, model, reason, dispatched)
    return QualityOutcome(assessment=assessment, skip_reason=None, dispatched=dispatched, **base)


def _labels_like(labels: pd.Series, predictions: pd.Series, kind: str) -> np.ndarray:
    """Labels in the predictions' type: a CSV may hold 1 where the model logged "1", or
    the reverse; a label that does not convert stays as it is (and counts as wrong)."""
    if kind != "labels" or predictions.empty:
        return labels.to_numpy()
    if isinstance(predictions.iloc[0], str):
        return labels.map(_id_text).to_numpy()
    try:
        return labels.to_numpy().astype(np.asarray(predictions.tolist()).dtype)
    except (ValueError, TypeError):
        return labels.to_numpy()


def _validation_estimate(client, store: TrackingStore, model, metric: str) -> tuple[float, str]:
    from mlops_ci.tracking.store import tracking_errors
    from mlops_ci.validation.publish import metric_key

    key = metric_key("validate", metric)
    if model.run_id is None:
        raise NoValidationEstimate(f"{model.uri} has no run, so no recorded {key}")
    with tracking_errors(store):
        metrics = client.get_run(model.run_id).data.metrics
    if key not in metrics:
        raise NoValidationEstimate(
            f"the run of {model.uri} has no {key} (validate did not check {metric} on it)"
        )
    return float(metrics[key]), f"{key} of {model.uri}"
