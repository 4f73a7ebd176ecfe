"""Training with lineage, as one call: ``train(request)`` checks the inputs, reuses an
identical earlier run or runs the training command inside a new MLflow run, and says what
happened in a ``TrainOutcome``."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from mlops_ci.errors import SettingError, UsageError
from mlops_ci.platforms import RunContext
from mlops_ci.tracking import provenance
from mlops_ci.tracking.command import prepare_command, run_command
from mlops_ci.tracking.data_ref import DEFAULT_SNAPSHOT_LIMIT, DataRequest, PreparedData
from mlops_ci.tracking.fingerprint import (
    code_files,
    combined_data_fingerprint,
    fingerprint_code,
    fingerprint_data,
    step_fingerprint,
)
from mlops_ci.tracking.provenance import KEY_ENV, ProvenanceKey
from mlops_ci.tracking.runs import FINGERPRINT_TAG
from mlops_ci.tracking.store import LOCAL_STORE_DIR, TrackingStore

log = logging.getLogger(__name__)

FINGERPRINT_VERSION = 1
LOG_NAME = "train.log"


@dataclass(frozen=True)
class TrainRequest:
    """What to train and where: the training command and what makes up its reuse key (code,
    data, parameters, seed, command), the tracking store and experiment, and the lineage."""

    command: str | None
    params: Mapping[str, Any]
    data: tuple[Path, ...]
    seed: int
    code: tuple[str, ...]
    project_dir: Path
    log_dir: Path
    store: TrackingStore
    experiment: str
    run_context: RunContext
    env: Mapping[str, str]
    run_name: str | None = None
    # Variables the command gets although they look like credentials (see child_env).
    pass_env: tuple[str, ...] = ()
    # The key trusted jobs sign their runs with (MLOPS_CI_PROVENANCE_KEY); None without one.
    provenance_key: ProvenanceKey | None = None
    # Train even when an identical earlier run could be reused.
    force: bool = False
    timeout_s: float | None = None
    # New data that replaces ``data``: fetched, snapshotted, windowed and split (data_ref).
    data_ref: DataRequest | None = None
    # Largest remote input copied onto the run, in bytes.
    snapshot_limit: int = DEFAULT_SNAPSHOT_LIMIT


@dataclass(frozen=True)
class TrainOutcome:
    """What ``train`` did. ``result`` is ``trained`` (a new run with a model), ``reused`` (an
    identical earlier run), ``command-failed`` (the command failed, was killed or timed out:
    ``failure`` says how) or ``no-model`` (it succeeded but logged no model)."""

    result: Literal["trained", "reused", "command-failed", "no-model"]
    run_id: str
    experiment_id: str
    fingerprint: str
    tracking_uri: str
    model_uri: str | None = None
    model_id: str | None = None
    run_url: str | None = None
    log_path: Path | None = None
    elapsed_s: float = 0.0
    failure: str = ""
    # Why an identical earlier run was not reused (its provenance could not be verified).
    not_reused: str = ""
    # The run carries a provenance signature made by this job.
    signed: bool = False
    # The data reference's snapshot and split, and where the run says its exact bytes are.
    data: PreparedData | None = None
    data_snapshot: str = ""

    @property
    def reused(self) -> bool:
        return self.result == "reused"

    @property
    def has_model(self) -> bool:
        return self.result in ("trained", "reused")


def train(request: TrainRequest) -> TrainOutcome:
    """Train, or reuse the newest finished run with the same fingerprint that logged a model.
    Every input is checked before MLflow is touched."""
    prepared = None
    data_paths = request.data
    if request.data_ref is not None:
        from mlops_ci.tracking.data_ref import prepare

        prepared = prepare(request.data_ref)
        data_paths = (prepared.train_path,)
    command = prepare_command(
        request.command,
        params=request.params,
        seed=request.seed,
        project_dir=request.project_dir,
        env=request.env,
        pass_env=request.pass_env,
        data=data_paths[0] if data_paths else None,
    )
    data = [fingerprint_data(path, project_dir=request.project_dir) for path in data_paths]
    excluded = [*request.data, *data_paths, request.log_dir, request.project_dir / LOCAL_STORE_DIR]
    files = code_files(request.project_dir, include=request.code, exclude=excluded)
    if request.code and not files:
        raise SettingError(
            f"code patterns {', '.join(request.code)} match no file in {request.project_dir}; fix "
            "them or leave them unset",
            setting="code",
        )
    code_fingerprint = fingerprint_code(request.project_dir, files)
    data_fingerprint = combined_data_fingerprint(data)
    fingerprint = step_fingerprint(
        {
            "version": FINGERPRINT_VERSION,
            "code": code_fingerprint,
            "data": data_fingerprint,
            "params": {key: str(value) for key, value in request.params.items()},
            "command": request.command,
            "seed": request.seed,
        }
    )
    log.info("train: %d code files, %d data inputs, fingerprint %s", len(files), len(data), fingerprint[:12])

    from mlops_ci.tracking import runs
    from mlops_ci.tracking.store import connect, get_or_create_experiment
    from mlops_ci.tracking.training_run import TrainingRun

    store = request.store
    client = connect(store)
    experiment_id = get_or_create_experiment(client, request.experiment, store)
    found: dict[str, Any] = dict(
        experiment_id=experiment_id, fingerprint=fingerprint, tracking_uri=store.display_uri, data=prepared
    )

    if not request.force:
        trust = ReuseTrust(request.run_context.trusted, request.provenance_key, store)
        reusable = runs.find_reusable_run(client, experiment_id, fingerprint, store, accept=trust.accept)
        if reusable is not None:
            run, model = reusable
            if prepared is not None:
                from mlops_ci.tracking.data_ref import SNAPSHOT_TAG

                found["data_snapshot"] = run.data.tags.get(SNAPSHOT_TAG, "")
            return _with_model("reused", run.info.run_id, model, store, **found)
        found["not_reused"] = trust.refused

    training = TrainingRun.start(
        client,
        store,
        experiment_id=experiment_id,
        experiment_name=request.experiment,
        run_name=request.run_name,
        project_dir=request.project_dir,
        run_context=request.run_context,
        command=command,
        data=data,
        fingerprints={"step": fingerprint, "code": code_fingerprint, "data": data_fingerprint},
        code_files=len(files),
    )
    if prepared is not None:
        from mlops_ci.tracking.data_ref import record_on_run
        from mlops_ci.tracking.store import tracking_errors

        with tracking_errors(store):
            found["data_snapshot"] = record_on_run(
                client, training.run_id, prepared, snapshot_limit=request.snapshot_limit
            )
    log_path = request.log_dir / LOG_NAME
    started = time.monotonic()
    try:
        ran = run_command(
            training.command, log_path=log_path, timeout_s=request.timeout_s, on_abort=training.mark_killed
        )
    except UsageError as exc:
        training.finish("FAILED", note=str(exc))
        raise
    elapsed = time.monotonic() - started
    training.attach_log(log_path)
    finished = dict(found, log_path=log_path, elapsed_s=elapsed)
    if not ran.succeeded:
        training.finish("FAILED")
        return TrainOutcome("command-failed", training.run_id, failure=ran.describe(), **finished)
    model = training.logged_model()
    if model is None:
        training.finish("FAILED", note="the training command logged no model")
        return TrainOutcome("no-model", training.run_id, **finished)
    signed = request.run_context.trusted and request.provenance_key is not None
    if signed:
        training.sign(request.provenance_key, fingerprint=fingerprint, model=model)
    training.finish("FINISHED")
    return _with_model("trained", training.run_id, model, store, signed=signed, **finished)


class ReuseTrust:
    """Which earlier runs a job may reuse. Outside a trusted context any run with the same
    fingerprint will do (a pull request reusing another's run harms only its own, unbelieved
    results). In a trusted context the fingerprint proves nothing - any MLflow writer can set
    it, the pull request's training code included - so a run is reused only when it carries a
    valid signature by the provenance key, which only trusted jobs hold (SECURITY.md)."""

    def __init__(self, trusted: bool, key: ProvenanceKey | None, store: TrackingStore) -> None:
        self.trusted = trusted
        self.key = key
        self.store = store
        self.refused = ""

    def accept(self, run: Any, model: Any) -> bool:
        if not self.trusted:
            return True
        if self.key is None:
            self.refused = (
                f"run {run.info.run_id} has the same fingerprint, but this is a trusted context and "
                f"without {KEY_ENV} its provenance cannot be verified"
            )
        elif not self._verified(run, model):
            self.refused = (
                f"run {run.info.run_id} has the same fingerprint but no valid provenance signature (made "
                "outside a trusted job, or changed since)"
            )
        else:
            return True
        log.warning("train: not reusing %s; training again", self.refused)
        return False

    def _verified(self, run: Any, model: Any) -> bool:
        from mlops_ci.tracking.runs import model_digest

        signature = run.data.tags.get(provenance.RUN_TAG)
        if not signature:
            return False
        fields = provenance.run_fields(
            run_id=run.info.run_id,
            experiment_id=run.info.experiment_id,
            fingerprint=run.data.tags.get(FINGERPRINT_TAG, ""),
            model_id=model.model_id,
            digest=model_digest(model, self.store),
        )
        return provenance.verify(self.key, provenance.RUN_PURPOSE, fields, signature)


def _with_model(
    result: Literal["trained", "reused"], run_id: str, model: Any, store: TrackingStore, **found: Any
) -> TrainOutcome:
    from mlops_ci.tracking.runs import run_url

    return TrainOutcome(
        result,
        run_id,
        model_uri=model.model_uri,
        model_id=model.model_id,
        run_url=run_url(store, found["experiment_id"], run_id),
        **found,
    )
