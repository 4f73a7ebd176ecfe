"""`mlops-ci register`: register a run's model, once, with its lineage, and point aliases at it."""

from __future__ import annotations

from mlops_ci.errors import UsageError
from mlops_ci.options import Option
from mlops_ci.result import StepResult, read_step_result
from mlops_ci.steps.base import Output, Step, StepContext
from mlops_ci.tracking.registry import check_alias, check_model_name

OPTIONS = (
    Option(
        "run-id",
        "Run whose model to register (default: the run of the last `mlops-ci train` in --out-dir)",
        metavar="RUN_ID",
    ),
    Option(
        "alias",
        "Aliases to point at the version; on a pull/merge request pr-<number> is added",
        kind="list",
        default=("challenger",),
        metavar="ALIAS",
    ),
)

OUTPUTS = (
    Output("model-name", "Registered model name"),
    Output("model-version", "Registered version number"),
    Output("model-uri", "models:/<name>/<version>"),
    Output("created", "true when this run created the version, false when it was registered already"),
    Output("aliases", "Comma-separated aliases now pointing at the version"),
    Output("run-id", "Run whose model was registered"),
    Output("model-version-url", "Link to the version in the MLflow UI (only with a tracking server)"),
)

# Lineage tags copied from the training run onto the version, under shorter names.
RUN_LINEAGE = {
    "mlflow.source.git.commit": "mlops_ci.commit",
    "mlflow.source.git.branch": "mlops_ci.branch",
    "mlflow.source.git.repoURL": "mlops_ci.repository_url",
    "mlops_ci.data_fingerprint": "mlops_ci.data_fingerprint",
    "mlops_ci.code_fingerprint": "mlops_ci.code_fingerprint",
    "mlops_ci.fingerprint": "mlops_ci.fingerprint",
    "mlops_ci.ci.pr": "mlops_ci.pr",
    "mlops_ci.ci.pipeline_url": "mlops_ci.pipeline_url",
}


def run(ctx: StepContext) -> StepResult:
    opts = ctx.options
    name = check_model_name(opts.model_name)
    aliases = [check_alias(alias) for alias in opts.alias]
    if ctx.run_context.pr:
        aliases.append(check_alias(f"pr-{ctx.run_context.pr}"))
    run_id = opts.run_id or _run_id_from_train_result(ctx)

    from mlops_ci.tracking import registry, runs
    from mlops_ci.tracking.store import connect

    store = ctx.store
    client = connect(store)
    run = runs.get_run(client, run_id, store)
    if run.info.status != "FINISHED":
        raise UsageError(f"run {run_id} is {run.info.status}; only a finished training run can be registered")
    model = runs.find_logged_model(client, run)
    if model is None:
        raise UsageError(f"run {run_id} logged no model; nothing to register")

    tags = {short: run.data.tags[key] for key, short in RUN_LINEAGE.items() if run.data.tags.get(key)}
    current = ctx.run_context
    tags.update(
        {
            key: value
            for key, value in {
                "mlops_ci.run_id": run_id,
                "mlops_ci.pr": current.pr,
                "mlops_ci.pipeline_url": current.pipeline_url,
                "mlops_ci.triggered_by": current.actor,
                "mlops_ci.platform": current.platform,
            }.items()
            if value
        }
    )
    description = run.data.tags.get("mlops_ci.git.message")

    version, created = registry.register_version(
        client,
        store,
        name=name,
        run_id=run_id,
        source=model.model_uri,
        model_id=model.model_id,
        tags=tags,
        description=description,
    )
    registry.set_aliases(client, store, name, version.version, aliases)
    outputs = {
        "model-name": name,
        "model-version": str(version.version),
        "model-uri": f"models:/{name}/{version.version}",
        "created": "true" if created else "false",
        "aliases": ",".join(aliases),
        "run-id": run_id,
    }
    url = runs.model_version_url(store, name, str(version.version))
    if url:
        outputs["model-version-url"] = url
    summary = (
        f"{'registered' if created else 'run already registered:'} {name} version "
        f"{version.version} from run {run_id}; aliases {', '.join(aliases)}"
    )
    return StepResult(step="register", status="passed", summary=summary, outputs=outputs)


def _run_id_from_train_result(ctx: StepContext) -> str:
    path = ctx.out_dir / "train.json"
    if not path.is_file():
        raise UsageError(f"no run to register: pass --run-id, or run `mlops-ci train` first (no {path})")
    result = read_step_result(path)
    run_id = result.outputs.get("run-id")
    if result.status not in ("passed", "skipped") or not run_id:
        raise UsageError(
            f"the last training in {path} did not produce a model (status "
            f"{result.status}); fix training, or pass --run-id"
        )
    return run_id


STEP = Step(
    name="register",
    help="register a run's model (once per run) with lineage tags, and set aliases",
    description="Register the model of a training run under --model-name. Registering the same run "
    "again returns the existing version. The version carries lineage tags (commit, PR/MR, "
    "pipeline URL, data and code fingerprints, who triggered it) and the commit message as its "
    "description; aliases (default: challenger, plus pr-<number> on a PR/MR) point at it.",
    options=OPTIONS,
    outputs=OUTPUTS,
    run=run,
)
