"""`mlops-ci train`: run the user's training command inside an MLflow run, with its code,
data, parameters and environment recorded, and reuse an identical earlier run."""

from __future__ import annotations

import logging
from pathlib import Path

from mlops_ci.errors import UsageError
from mlops_ci.options import Option
from mlops_ci.result import StepResult
from mlops_ci.steps.base import Output, Step, StepContext
from mlops_ci.tracking.data_ref import DataRequest, PreparedData, Window
from mlops_ci.tracking.provenance import ProvenanceKey
from mlops_ci.tracking.training import LOG_NAME, TrainOutcome, TrainRequest
from mlops_ci.tracking.training_run import ARTIFACT_DIR

log = logging.getLogger(__name__)

OPTIONS = (
    Option(
        "command",
        "Training command, run without a shell in the project folder; {name} is "
        "replaced by parameter `name` and {seed} by the seed",
        metavar="COMMAND",
    ),
    Option(
        "data",
        "Data files or folders the training reads; fingerprinted (sha256, rows, "
        "columns) and part of the reuse key",
        kind="paths",
        metavar="PATH",
    ),
    Option(
        "data-ref",
        "New data to train on instead of `data` (a retraining): a local CSV/Parquet file, an "
        "object-store URI read through fsspec (s3://, gs://, az://, memory://...) or an MLflow "
        "artifact (runs:/<id>/<path>, mlflow-artifacts:/...). Its sha256 is recorded and a remote "
        "file is copied onto the run (up to --snapshot-max-mb); the last --holdout-fraction of its "
        "rows by time become the holdout validate scores",
        metavar="URI",
    ),
    Option(
        "window",
        "Rows of --data-ref to keep: START/END (ISO 8601, START <= time <= END in --time-column; "
        "either side may be empty)",
        metavar="START/END",
    ),
    Option(
        "time-column",
        "Column with each row's time in --data-ref (for --window and the holdout order)",
        metavar="COLUMN",
    ),
    Option(
        "holdout-fraction",
        "Share of the --data-ref rows (the newest, by --time-column) held out for validate; 0 for none",
        kind="float",
        default=0.2,
        minimum=0,
        below=1,
    ),
    Option(
        "snapshot-max-mb",
        "Largest remote --data-ref file copied onto the run; a larger one is recorded by URI and sha256 only",
        kind="float",
        default=200.0,
        minimum=0,
        metavar="MB",
    ),
    Option(
        "params",
        "Training parameters, logged to the run and passed to the command as "
        "{name} placeholders and as JSON in MLOPS_CI_PARAMS",
        kind="map",
        flag="--param",
    ),
    Option(
        "seed",
        "Random seed passed to the command as MLOPS_CI_SEED (and PYTHONHASHSEED)",
        kind="int",
        default=42,
        minimum=0,
    ),
    Option(
        "code",
        "fnmatch patterns of the code files that make up the reuse key (default: every "
        "file git would commit in the project folder, except the data)",
        kind="list",
        metavar="PATTERN",
    ),
    Option("force", "Train even when an identical earlier run can be reused", kind="bool", default=False),
    Option(
        "timeout",
        "Stop the training command after this many minutes",
        kind="float",
        minimum=0,
        metavar="MINUTES",
    ),
    Option("run-name", "MLflow run name (default: train-<short commit>)", metavar="NAME"),
    Option(
        "pass-env",
        "Environment variables the training command gets although they look like CI "
        "credentials (exact names; by default every *_TOKEN, GITHUB_TOKEN, CI_JOB_TOKEN, "
        "ACTIONS_*, CI_*PASSWORD* ... is withheld; MLFLOW_* always passes)",
        kind="list",
        metavar="NAME",
    ),
)

OUTPUTS = (
    Output("run-id", "MLflow run that holds the model (the new run, or the reused one)"),
    Output("model-uri", "URI of the logged model (models:/m-...)"),
    Output("model-id", "MLflow logged-model id"),
    Output("reused", "true when an identical earlier run was reused instead of training"),
    Output("experiment-id", "MLflow experiment id"),
    Output("fingerprint", "sha256 of code, data, parameters, seed and command: the reuse key"),
    Output("tracking-uri", "Tracking URI the run lives in (credentials removed)"),
    Output("run-url", "Link to the run in the MLflow UI (only with a tracking server)"),
    Output(
        "holdout-path", "Holdout split off --data-ref (relative to the project folder); validate scores it"
    ),
    Output("data-sha256", "sha256 of the --data-ref file as fetched"),
    Output("data-snapshot", "Where the exact bytes of --data-ref are (a runs:/ artifact for remote data)"),
    Output("window", "The --window the rows were selected by"),
)


def run(ctx: StepContext) -> StepResult:
    from mlops_ci.tracking.training import train

    outcome = train(_request(ctx))
    if outcome.reused:
        log.info(
            "train: code, data and parameters are unchanged since run %s; reusing it (--force to train anyway)",
            outcome.run_id,
        )
    return _result(outcome, ctx.project_dir)


def _request(ctx: StepContext) -> TrainRequest:
    opts = ctx.options
    return TrainRequest(
        command=opts.command,
        params=dict(opts.params),
        data=tuple(opts.data),
        seed=opts.seed,
        code=tuple(opts.code),
        project_dir=ctx.project_dir,
        log_dir=ctx.out_dir,
        store=ctx.store,
        experiment=ctx.experiment_name,
        run_context=ctx.run_context,
        env=dict(ctx.env),
        run_name=opts.run_name,
        pass_env=tuple(opts.pass_env),
        provenance_key=ProvenanceKey.from_env(ctx.env),
        force=opts.force,
        timeout_s=opts.timeout * 60 if opts.timeout else None,
        data_ref=_data_request(ctx),
        snapshot_limit=int(opts.snapshot_max_mb * 1024 * 1024),
    )


def _data_request(ctx: StepContext) -> DataRequest | None:
    opts = ctx.options
    if not opts.data_ref:
        if opts.window and Window.parse(opts.window) is not None:
            raise UsageError("--window selects rows of --data-ref; give --data-ref too")
        return None
    try:
        window = Window.parse(opts.window)
    except UsageError as exc:
        raise UsageError(f"--window: {exc}") from None
    return DataRequest(
        ref=opts.data_ref,
        project_dir=ctx.project_dir,
        snapshot_dir=ctx.out_dir / "data",
        tracking_uri=ctx.store.uri,
        window=window,
        time_column=opts.time_column,
        holdout_fraction=opts.holdout_fraction,
    )


def _describe(data: PreparedData) -> str:
    rows = f"{data.train_rows} rows of " if data.train_rows is not None else ""
    window = f" in {data.window}" if data.window is not None else ""
    holdout = f", {data.holdout_rows} held out" if data.holdout_rows else ""
    return f"{rows}{data.ref}{window}{holdout}"


def _data_outputs(data: PreparedData, snapshot: str, project_dir: Path) -> dict[str, str]:
    outputs = {"data-sha256": data.sha256}
    if snapshot:
        outputs["data-snapshot"] = snapshot
    if data.window is not None:
        outputs["window"] = str(data.window)
    if data.holdout_path is not None:
        path = data.holdout_path.resolve()
        try:
            outputs["holdout-path"] = str(path.relative_to(project_dir.resolve()))
        except ValueError:
            outputs["holdout-path"] = str(path)
    return outputs


def _result(outcome: TrainOutcome, project_dir: Path) -> StepResult:
    artifacts = [str(outcome.log_path)] if outcome.log_path else []
    if not outcome.has_model:
        if outcome.result == "command-failed":
            summary = (
                f"training command {outcome.failure} after {outcome.elapsed_s:.0f} s; its output is in "
                f"{outcome.log_path} and on run {outcome.run_id} ({ARTIFACT_DIR}/{LOG_NAME})"
            )
        else:
            summary = (
                f"the training command finished but logged no model to run {outcome.run_id}; call "
                "mlflow.<flavor>.log_model(...) or mlflow.autolog() in the training script"
            )
        outputs = {"run-id": outcome.run_id, "experiment-id": outcome.experiment_id, "reused": "false"}
        return StepResult(
            step="train", status="failed", summary=summary, outputs=outputs, artifacts=artifacts
        )
    outputs = {
        "run-id": outcome.run_id,
        "model-uri": outcome.model_uri or "",
        "model-id": outcome.model_id or "",
        "experiment-id": outcome.experiment_id,
        "reused": "true" if outcome.reused else "false",
        "fingerprint": outcome.fingerprint,
        "tracking-uri": outcome.tracking_uri,
    }
    if outcome.run_url:
        outputs["run-url"] = outcome.run_url
    if outcome.data is not None:
        outputs.update(_data_outputs(outcome.data, outcome.data_snapshot, project_dir))
    if outcome.reused:
        status, summary = "skipped", f"reused run {outcome.run_id}: code, data and parameters unchanged"
    else:
        status, summary = "passed", f"trained run {outcome.run_id} in {outcome.elapsed_s:.1f} s"
        if outcome.data is not None:
            summary += f" on {_describe(outcome.data)}"
        if outcome.signed:
            summary += " (signed by this trusted job)"
        if outcome.not_reused:
            summary += f"; not reused: {outcome.not_reused}"
    return StepResult(step="train", status=status, summary=summary, outputs=outputs, artifacts=artifacts)


STEP = Step(
    name="train",
    help="run the training command inside an MLflow run, with lineage; reuse an identical earlier run",
    description="Run the training command inside an MLflow run. The command gets MLFLOW_TRACKING_URI, "
    "MLFLOW_RUN_ID and MLFLOW_EXPERIMENT_ID, so mlflow.autolog() or log_model in an unmodified "
    "script land in that run. Git commit, CI context, data fingerprints, parameters, seed and the "
    "Python environment are recorded on the run. When code, data, parameters and command are "
    "unchanged since a finished run that logged a model, that run is reused.",
    options=OPTIONS,
    outputs=OUTPUTS,
    run=run,
)
