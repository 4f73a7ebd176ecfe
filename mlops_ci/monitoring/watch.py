"""One drift check from start to end: read the recent data and the reference (given, or
found through the model version), score the predictions, test every feature, write the
reports and, when asked, start the training pipeline (at most once per cooldown).

The drift step builds a ``DriftRequest`` from its options and maps the ``DriftOutcome`` to
its result; nothing here knows about flags or step results.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from mlops_ci.errors import UsageError
from mlops_ci.monitoring.detect import DriftReport, FeatureRule
from mlops_ci.platforms.base import Platform, Published, RetrainRequest

if TYPE_CHECKING:
    from mlops_ci.monitoring.data import Window
    from mlops_ci.monitoring.reference import ModelVersionRef
    from mlops_ci.tracking.store import TrackingStore

log = logging.getLogger(__name__)

RETRAIN_AT_TAG = "mlops_ci.retrain.started_at"
RETRAIN_REASON_TAG = "mlops_ci.retrain.reason"
RETRAIN_URL_TAG = "mlops_ci.retrain.url"
# Fewer rows than this on either side and a feature's test says nothing; it is skipped.
MIN_ROWS_PER_TEST = 30


@dataclass(frozen=True)
class RetrainPlan:
    """How to start the training pipeline (checked by the caller): ``target`` says where and
    how; the check fills in the reason, the data window, the model and the drifted
    features. ``always`` starts it whatever the check finds (a schedule); else only on
    drift, and not again within ``cooldown_hours`` of a drift-started one (0: no cooldown)."""

    target: RetrainRequest
    always: bool = False
    cooldown_hours: float = 24.0


@dataclass(frozen=True)
class DriftRequest:
    """A drift check. ``model_uri``: the model whose reference and predictions to use; with
    ``reference`` given it is only for the predictions (``model_optional``: a model that
    cannot be found is then a warning, not an error). ``*_label``: how messages name the
    current and reference data."""

    current: tuple[Path, ...]
    out_dir: Path
    project_dir: Path
    reference: tuple[Path, ...] = ()
    model_uri: str | None = None
    model_optional: bool = False
    window_days: float | None = None
    time_column: str | None = None
    features: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    alpha: float = 0.05
    psi: float = 0.1
    wasserstein: float = 0.3
    rules: Mapping[str, FeatureRule] = field(default_factory=dict)
    min_rows: int = 100
    predictions: bool = True
    store_reference: bool = False
    reference_sample_rows: int = 20000
    title: str = "Drift"
    retrain: RetrainPlan | None = None
    current_label: str = "current"
    reference_label: str = "reference"


@dataclass(frozen=True)
class DriftOutcome:
    """``report`` is None when the current data had fewer than ``min_rows`` rows (not
    tested). ``dispatched``: what became of the retraining (None: not started, not asked)."""

    report: DriftReport | None
    current_rows: int
    reference_rows: int
    window_start: str | None
    window_end: str | None
    paths: Mapping[str, Path] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    dispatched: Published | None = None


def watch(
    request: DriftRequest, *, store: TrackingStore | None = None, platform: Platform | None = None
) -> DriftOutcome:
    """Run the check. ``store``: the model registry (needed with ``request.model_uri``);
    ``platform``: the code host the training pipeline lives on, connected to its API
    (needed with ``request.retrain``)."""
    from mlops_ci.monitoring import data, detect, report

    if request.retrain is not None and platform is None:
        raise ValueError("`platform` is needed to start retraining")
    if request.model_uri and store is None:
        raise ValueError("`store` is needed to find the model version")
    current = data.load(
        request.current,
        label=request.current_label,
        window_days=request.window_days,
        time_column=request.time_column,
    )
    reference_frame, reference_source, model, client, warnings = _reference(request, store)
    current_frame = current.frame
    columns = detect.feature_columns(
        reference_frame, current_frame, features=list(request.features), exclude=list(request.exclude)
    )
    for warning in warnings:
        log.warning("%s", warning)
    if request.predictions and model is not None:
        reference_frame, current_frame = _add_predictions(model, reference_frame, current_frame, columns)
    if request.store_reference and model is not None:
        from mlops_ci.monitoring.reference import store_sample

        uri = store_sample(client, store, model, reference_frame, rows=request.reference_sample_rows)
        log.info("stored a reference sample with %s: %s", model.uri, uri)
    elif request.store_reference:
        log.warning("no model version to store the reference sample with; nothing stored")

    if len(current_frame) < request.min_rows:
        dispatched = None
        if request.retrain is not None and request.retrain.always:
            dispatched = dispatch_retraining(
                platform, request.retrain, reason="scheduled retraining", window=current.window
            )
        return DriftOutcome(
            None,
            current_rows=len(current_frame),
            reference_rows=len(reference_frame),
            window_start=current.window.start,
            window_end=current.window.end,
            warnings=tuple(warnings),
            dispatched=dispatched,
        )

    found = detect.detect(
        reference_frame,
        current_frame,
        columns=columns,
        alpha=request.alpha,
        psi=request.psi,
        wasserstein=request.wasserstein,
        rules=dict(request.rules),
        min_rows=min(request.min_rows, MIN_ROWS_PER_TEST),
        window=current.window,
        reference_source=reference_source,
        current_source=", ".join(str(p) for p in request.current),
    )
    paths = report.write_reports(found, reference_frame, current_frame, request.out_dir, title=request.title)
    plan = request.retrain
    dispatched: Published | None = None
    if plan is not None and (plan.always or found.drifted):
        reason = retrain_reason(found, always=plan.always)
        recent = None if plan.always else recent_retraining(store, client, model, plan.cooldown_hours)
        if recent is not None:
            dispatched = Published("cooldown", done=False, kind="dispatch", reason=recent)
        else:
            dispatched = dispatch_retraining(
                platform, plan, reason=reason, found=found, window=current.window, model=model
            )
            if dispatched.done and not plan.always:
                remember_retraining(store, client, model, reason, dispatched)
    return DriftOutcome(
        found,
        current_rows=found.current_rows,
        reference_rows=found.reference_rows,
        window_start=found.window.start,
        window_end=found.window.end,
        paths=paths,
        warnings=tuple(warnings),
        dispatched=dispatched,
    )


def _reference(request: DriftRequest, store: TrackingStore | None):
    """The reference frame, where it came from, the model version and its registry client
    (None without a model), and warnings about the reference."""
    from mlops_ci.monitoring import data

    if request.reference:
        frame = data.load(request.reference, label=request.reference_label).frame
        source = ", ".join(str(p) for p in request.reference)
        model = client = None
        if request.model_uri:
            try:
                model, client = find_model(request.model_uri, store)
            except UsageError as exc:
                if not request.model_optional:
                    raise
                # Only for the predictions: a model without a champion yet is no reason to stop.
                log.warning("predictions not compared: %s", exc)
        return frame, source, model, client, []
    from mlops_ci.monitoring.reference import load_reference

    if not request.model_uri:
        raise ValueError("`model_uri` is needed without `reference`")
    model, client = find_model(request.model_uri, store)
    loaded = load_reference(client, store, model, project_dir=request.project_dir)
    return loaded.frame, loaded.source, model, client, list(loaded.warnings)


def find_model(uri: str, store: TrackingStore):
    """The model version ``uri`` names and a registry client (drift and quality)."""
    from mlops_ci.monitoring.reference import resolve_version
    from mlops_ci.tracking.store import connect

    client = connect(store)
    return resolve_version(client, store, uri), client


def _add_predictions(model: ModelVersionRef, reference, current, columns):
    """Score the side that has no predictions when the other has them (or neither has)."""
    from mlops_ci.monitoring.data import PREDICTION
    from mlops_ci.monitoring.reference import score

    ref_has, cur_has = PREDICTION in reference.columns, PREDICTION in current.columns
    if ref_has and cur_has:
        return reference, current
    try:
        if not ref_has:
            reference = reference.assign(**{PREDICTION: score(model, reference, columns)})
        if not cur_has:
            current = current.assign(**{PREDICTION: score(model, current, columns)})
    except Exception as exc:  # noqa: BLE001 - prediction drift is optional; say why it is missing
        log.warning("predictions not compared: %s could not score the data (%s)", model.uri, str(exc)[:200])
        reference = reference.drop(columns=[PREDICTION], errors="ignore")
        current = current.drop(columns=[PREDICTION], errors="ignore")
    return reference, current


# --- retraining --------------------------------------------------------------------------


def retrain_reason(found: DriftReport, *, always: bool) -> str:
    if found.drifted:
        parts = []
        if found.drifted_features:
            parts.append(f"drift in {', '.join(found.drifted_features)}")
        if found.prediction_drift:
            parts.append("prediction drift")
        reason = "; ".join(parts)
        return f"scheduled retraining; {reason}" if always else reason
    return "scheduled retraining; no drift found"


def recent_retraining(store: TrackingStore | None, client, model, hours: float) -> str | None:
    """Why not to start again: a monitoring-started retraining (drift or quality decay)
    within the cooldown (None: go)."""
    from mlops_ci.tracking.store import tracking_errors

    if model is None or client is None or not hours:
        return None
    with tracking_errors(store):
        tags = client.get_registered_model(model.name).tags or {}
    started = tags.get(RETRAIN_AT_TAG)
    if not started:
        return None
    try:
        at = datetime.fromisoformat(started)
    except ValueError:
        return None
    if datetime.now(timezone.utc) - at < timedelta(hours=hours):
        where = f" ({tags[RETRAIN_URL_TAG]})" if tags.get(RETRAIN_URL_TAG) else ""
        return (
            f"retraining was already started at {started}{where} for {tags.get(RETRAIN_REASON_TAG, 'drift')}; "
            f"not again within the {hours:g} h cooldown (retrain-cooldown)"
        )
    return None


def remember_retraining(
    store: TrackingStore | None, client, model, reason: str, dispatched: Published
) -> None:
    from mlops_ci.result import now_iso
    from mlops_ci.tracking.store import tracking_errors

    if model is None or client is None:
        return
    with tracking_errors(store):
        client.set_registered_model_tag(model.name, RETRAIN_AT_TAG, now_iso())
        client.set_registered_model_tag(model.name, RETRAIN_REASON_TAG, reason[:1000])
        if dispatched.url:
            client.set_registered_model_tag(model.name, RETRAIN_URL_TAG, dispatched.url)


def dispatch_retraining(
    platform: Platform,
    plan: RetrainPlan,
    *,
    reason: str,
    window: Window,
    found: DriftReport | None = None,
    model: ModelVersionRef | None = None,
) -> Published:
    """Start the training pipeline ``plan`` names, with ``reason`` and the data ``window``
    (drift and quality decay both start it here)."""
    request = replace(
        plan.target,
        reason=reason,
        window_start=window.start,
        window_end=window.end,
        model=model.uri if model is not None else None,
        drifted_features=tuple(found.drifted_features) if found is not None else (),
    )
    published = platform.request_retraining(request)
    if published.done:
        log.info("started retraining (%s): %s", request.mechanism, published.url or published.id)
    else:
        log.warning("retraining not started: %s", published.reason)
    return published
