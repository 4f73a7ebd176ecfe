"""`mlops-ci register`: register a run's model, once, with its lineage, and point aliases at it."""

from __future__ import annotations

from mlops_ci.errors import UsageError
from mlops_ci.options import Option
from mlops_ci.result import StepResult
from mlops_ci.steps.base import Output, Step, StepContext
from mlops_ci.tracking.registration import RegisterRequest
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


def run(ctx: StepContext) -> StepResult:
    from mlops_ci.tracking.registration import register

    outcome = register(_request(ctx))
    outputs = {
        "model-name": outcome.model_name,
        "model-version": outcome.version,
        "model-uri": outcome.model_uri,
        "created": "true" if outcome.created else "false",
        "aliases": ",".join(outcome.aliases),
        "run-id": outcome.run_id,
    }
    if outcome.version_url:
        outputs["model-version-url"] = outcome.version_url
    summary = (
        f"{'registered' if outcome.created else 'run already registered:'} {outcome.model_name} version "
        f"{outcome.version} from run {outcome.run_id}; aliases {', '.join(outcome.aliases)}"
    )
    return StepResult(step="register", status="passed", summary=summary, outputs=outputs)


def _request(ctx: StepContext) -> RegisterRequest:
    name = check_model_name(ctx.options.model_name)
    aliases = [check_alias(alias) for alias in ctx.options.alias]
    if ctx.run_context.pr:
        aliases.append(check_alias(f"pr-{ctx.run_context.pr}"))
    return RegisterRequest(
        model_name=name,
        run_id=ctx.options.run_id or _trained_run_id(ctx),
        aliases=tuple(aliases),
        store=ctx.store,
        run_context=ctx.run_context,
    )


def _trained_run_id(ctx: StepContext) -> str:
    """The run of the last `mlops-ci train` in the out-dir, when it produced a model."""
    trained = ctx.earlier("train")
    path = ctx.out_dir / "train.json"
    if trained is None:
        raise UsageError(f"no run to register: pass --run-id, or run `mlops-ci train` first (no {path})")
    run_id = trained.outputs.get("run-id")
    if trained.status not in ("passed", "skipped") or not run_id:
        raise UsageError(
            f"the last training in {path} did not produce a model (status "
            f"{trained.status}); fix training, or pass --run-id"
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
