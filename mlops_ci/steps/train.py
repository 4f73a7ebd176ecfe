"""`mlops-ci train`: run the user's training command inside an MLflow run, with its code,
data, parameters and environment recorded, and reuse an identical earlier run."""

from __future__ import annotations

import logging
import time
from typing import Any

from mlops_ci.errors import UsageError
from mlops_ci.options import Option
from mlops_ci.result import StepResult
from mlops_ci.steps.base import Output, Step, StepContext
from mlops_ci.tracking.command import prepare_command, run_command
from mlops_ci.tracking.fingerprint import (
    code_files,
    combined_data_fingerprint,
    fingerprint_code,
    fingerprint_data,
    step_fingerprint,
)
from mlops_ci.tracking.store import LOCAL_STORE_DIR

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
)

FINGERPRINT_VERSION = 1
LOG_ARTIFACT_DIR = "mlops-ci"


def run(ctx: StepContext) -> StepResult:
    opts = ctx.options
    # Everything that can be wrong with the inputs is checked before MLflow is touched.
    command = prepare_command(
        opts.command,
        params=opts.params,
        seed=opts.seed,
        project_dir=ctx.project_dir,
        env=ctx.env,
        pass_env=opts.pass_env,
    )
    data = [fingerprint_data(path, project_dir=ctx.project_dir) for path in opts.data]
    excluded = [*opts.data, opts.out_dir, ctx.project_dir / LOCAL_STORE_DIR]
    files = code_files(ctx.project_dir, include=opts.code, exclude=excluded)
    if opts.code and not files:
        raise UsageError(
            f"train.code patterns {', '.join(opts.code)} match no file in "
            f"{ctx.project_dir}; fix them or leave train.code unset"
        )
    code_fingerprint = fingerprint_code(ctx.project_dir, files)
    data_fingerprint = combined_data_fingerprint(data)
    fingerprint = step_fingerprint(
        {
            "version": FINGERPRINT_VERSION,
            "code": code_fingerprint,
            "data": data_fingerprint,
            "params": {key: str(value) for key, value in opts.params.items()},
            "command": opts.command,
            "seed": opts.seed,
        }
    )
    log.info("train: %d code files, %d data inputs, fingerprint %s", len(files), len(data), fingerprint[:12])

    from mlops_ci.tracking import runs
    from mlops_ci.tracking.store import connect, get_or_create_experiment

    store = ctx.store
    client = connect(store)
    experiment_id = get_or_create_experiment(client, ctx.experiment_name, store)

    if not opts.force:
        reusable = runs.find_reusable_run(client, experiment_id, fingerprint, store)
        if reusable is not None:
            run, model = reusable
            log.info(
                "train: code, data and parameters are unchanged since run %s; reusing it "
                "(--force to train anyway)",
                run.info.run_id,
            )
            return _result(
                ctx,
                "skipped",
                store,
                experiment_id,
                run.info.run_id,
                model,
                fingerprint,
                reused=True,
                summary=f"reused run {run.info.run_id}: code, data and parameters unchanged",
            )

    from mlops_ci.tracking.training_run import TrainingRun

    training = TrainingRun.start(
        client,
        store,
        experiment_id=experiment_id,
        ctx=ctx,
        command=command,
        data=data,
        fingerprints={"step": fingerprint, "code": code_fingerprint, "data": data_fingerprint},
        code_files=len(files),
    )
    log_path = ctx.out_dir / "train.log"
    started = time.monotonic()
    try:
        outcome = run_command(
            training.command,
            log_path=log_path,
            timeout_s=opts.timeout * 60 if opts.timeout else None,
            on_abort=training.mark_killed,
        )
    except UsageError as exc:
        training.finish("FAILED", note=str(exc))
        raise
    elapsed = time.monotonic() - started
    training.attach_log(log_path)
    if not outcome.succeeded:
        training.finish("FAILED")
        return StepResult(
            step="train",
            status="failed",
            summary=(
                f"training command {outcome.describe()} after {elapsed:.0f} s; its output is in "
                f"{log_path} and on run {training.run_id} ({LOG_ARTIFACT_DIR}/train.log)"
            ),
            outputs={"run-id": training.run_id, "experiment-id": experiment_id, "reused": "false"},
            artifacts=[str(log_path)],
        )
    model = training.logged_model()
    if model is None:
        training.finish("FAILED", note="the training command logged no model")
        return StepResult(
            step="train",
            status="failed",
            summary=(
                f"the training command finished but logged no model to run {training.run_id}; call "
                "mlflow.<flavor>.log_model(...) or mlflow.autolog() in the training script"
            ),
            outputs={"run-id": training.run_id, "experiment-id": experiment_id, "reused": "false"},
            artifacts=[str(log_path)],
        )
    training.finish("FINISHED")
    return _result(
        ctx,
        "passed",
        store,
        experiment_id,
        training.run_id,
        model,
        fingerprint,
        reused=False,
        summary=f"trained run {training.run_id} in {elapsed:.1f} s",
        artifacts=[str(log_path)],
    )


def _result(
    ctx: StepContext,
    status: str,
    store: Any,
    experiment_id: str,
    run_id: str,
    model: Any,
    fingerprint: str,
    *,
    reused: bool,
    summary: str,
    artifacts: list[str] | None = None,
) -> StepResult:
    from mlops_ci.tracking.runs import run_url

    outputs = {
        "run-id": run_id,
        "model-uri": model.model_uri,
        "model-id": model.model_id,
        "experiment-id": experiment_id,
        "reused": "true" if reused else "false",
        "fingerprint": fingerprint,
        "tracking-uri": store.display_uri,
    }
    url = run_url(store, experiment_id, run_id)
    if url:
        outputs["run-url"] = url
    return StepResult(
        step="train", status=status, summary=summary, outputs=outputs, artifacts=artifacts or []
    )


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
