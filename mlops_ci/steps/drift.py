"""`mlops-ci drift`: compare recent serving data with the deployed model's reference,
feature by feature and on the predictions, corrected for testing many features; write a
JSON, markdown and PNG report; start the training pipeline on drift (``--retrain``) or
every time (``--always``, for a schedule).

Exit codes: 0 no drift (or drift with --no-fail-on-drift), 1 drift, or the retraining
dispatch was refused, 2 bad input (missing data, different columns, bad thresholds), 3 a
service failed after retries (MLflow, GitHub, GitLab).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from mlops_ci.errors import UsageError
from mlops_ci.options import Option, alpha_option
from mlops_ci.platforms.base import Published, RetrainRequest
from mlops_ci.platforms.options import (
    CODE_HOSTS,
    api_options,
    code_host,
    refuse_secrets_in_config,
    secret_options,
)
from mlops_ci.result import Check, StepResult
from mlops_ci.steps.base import Output, Step, StepContext

if TYPE_CHECKING:
    from mlops_ci.monitoring.watch import DriftOutcome, DriftRequest, RetrainPlan

MECHANISMS = ("workflow_dispatch", "repository_dispatch", "pipeline")
THRESHOLD_SCHEMA = {
    "type": "object",
    "description": "Per-feature settings: psi and wasserstein thresholds, kind (numeric or categorical), ignore",
    "additionalProperties": {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "psi": {"type": "number", "minimum": 0},
            "wasserstein": {"type": "number", "minimum": 0},
            "kind": {"enum": ["numeric", "categorical"]},
            "ignore": {"type": "boolean"},
        },
    },
}

OPTIONS = (
    Option(
        "current",
        "Recent data: the serving request logs (requests.jsonl and its rotated files, or their folder), "
        "CSV or Parquet",
        kind="paths",
        metavar="PATH",
    ),
    Option(
        "reference",
        "Reference data, CSV or Parquet (default: the sample stored with the model version, else the "
        "training data its run recorded, found in the project)",
        kind="paths",
        metavar="PATH",
    ),
    Option(
        "model-uri",
        "Model whose reference to use and whose predictions to compare (default: models:/<model-name>@champion)",
        metavar="URI",
    ),
    Option("window-days", "Only the last N days of current data", kind="float", minimum=0, metavar="DAYS"),
    Option(
        "time-column",
        "Column with each row's time in CSV/Parquet current data (for --window-days)",
        metavar="COLUMN",
    ),
    Option(
        "features", "Compare only these columns (default: all but the target)", kind="list", metavar="COLUMN"
    ),
    Option("ignore-columns", "Columns never compared (ids, timestamps)", kind="list", metavar="COLUMN"),
    alpha_option("False-discovery rate across all features (Benjamini–Hochberg)"),
    Option(
        "psi",
        "Smallest PSI that counts as drift (per-feature overrides in thresholds:)",
        kind="float",
        default=0.1,
        minimum=0,
    ),
    Option(
        "wasserstein",
        "Smallest Wasserstein distance, in reference standard deviations, that counts as drift for a numeric feature",
        kind="float",
        default=0.3,
        minimum=0,
    ),
    Option("thresholds", "Per-feature settings", kind="map", cli=False, schema=THRESHOLD_SCHEMA),
    Option(
        "min-rows",
        "Fewest current rows worth testing; fewer: the check is skipped",
        kind="int",
        default=100,
        minimum=2,
    ),
    Option(
        "predictions",
        "Compare the predictions too (logged ones; the model scores a side that has none)",
        kind="bool",
        default=True,
    ),
    Option(
        "store-reference",
        "Store a sample of the reference with the model version, for drift checks where the training data is not",
        kind="bool",
        default=False,
    ),
    Option(
        "reference-sample-rows", "Rows in a stored reference sample", kind="int", default=20000, minimum=100
    ),
    Option("fail-on-drift", "Exit 1 when drift is found", kind="bool", default=True),
    Option("title", "Title of the report", default="Drift"),
    # retraining
    Option("retrain", "Start the training pipeline when drift is found", kind="bool", default=False),
    Option(
        "always",
        "Start the training pipeline whatever the drift check says (a scheduled retrain)",
        kind="bool",
        default=False,
    ),
    Option(
        "retrain-platform",
        "Where the training pipeline lives (default: the platform this job runs on)",
        choices=("github", "gitlab"),
    ),
    Option(
        "retrain-via",
        "How to start it (default: workflow_dispatch on GitHub, pipeline on GitLab)",
        choices=MECHANISMS,
    ),
    Option("retrain-workflow", "GitHub workflow file (or id) to dispatch, e.g. train.yml", metavar="FILE"),
    Option("retrain-ref", "Branch to run it on (default: the default branch)", metavar="BRANCH"),
    Option(
        "retrain-repository",
        "GitHub OWNER/REPO or GitLab project id/path (default: this job's)",
        metavar="REPO",
    ),
    Option(
        "retrain-event-type", "repository_dispatch event type", default="mlops-ci-retrain", metavar="TYPE"
    ),
    Option(
        "retrain-trigger-token",
        "GitLab pipeline trigger token (else the API token starts the pipeline); prefer the environment variable",
        env_aliases=("GITLAB_TRIGGER_TOKEN",),
        metavar="TOKEN",
    ),
    Option("retrain-input", "Extra workflow inputs / pipeline variables", kind="map", metavar="KEY=VALUE"),
    Option(
        "retrain-cooldown",
        "Hours after a drift-started retraining during which drift does not start another (recorded on the "
        "registered model; needs a model); 0: no cooldown",
        kind="float",
        default=24.0,
        minimum=0,
        metavar="HOURS",
    ),
    *api_options(
        github_token="GitHub token (actions: write for workflow_dispatch, contents: write for repository_dispatch)",
        gitlab_token="GitLab API token (to create a pipeline without a trigger token)",
    ),
)

OUTPUTS = (
    Output("drift", "true when a feature or the predictions drifted"),
    Output("drifted-features", "Comma-separated drifted features"),
    Output("features-tested", "Number of features tested"),
    Output("share-drifted", "Share of tested features that drifted"),
    Output("prediction-drift", "true, false, or empty when the predictions were not compared"),
    Output("reference-rows", "Rows of reference data"),
    Output("current-rows", "Rows of current data (in the window)"),
    Output("window-start", "Start of the current data's window (ISO 8601)"),
    Output("window-end", "End of the current data's window (ISO 8601)"),
    Output("report", "The markdown report"),
    Output(
        "retrain",
        "triggered, not-needed (no drift), cooldown (started recently), skipped (not asked) or failed",
    ),
    Output("retrain-url", "Where the started pipeline shows"),
)


def run(ctx: StepContext) -> StepResult:
    from mlops_ci.monitoring.watch import watch

    request = drift_request(ctx)
    platform = retrain_host(ctx) if request.retrain is not None else None
    # The store only when a model is used: resolving the embedded one creates its folder.
    store = ctx.store if request.model_uri else None
    with _naming_flags():
        outcome = watch(request, store=store, platform=platform)
    return _result(ctx.options, outcome, retrain_requested=request.retrain is not None)


def retrain_host(ctx: StepContext):
    """The code host a retraining is started on, connected (drift's and quality's)."""
    return code_host(
        retrain_platform(ctx),
        ctx.options,
        current=ctx.platform,
        env=ctx.env,
        cwd=ctx.cwd,
        out_dir=ctx.out_dir,
    )


def drift_request(ctx: StepContext) -> DriftRequest:
    """The options, checked before any data is read (a misconfigured trigger is a usage
    error, not a failed run)."""
    from mlops_ci.monitoring.watch import DriftRequest

    opts = ctx.options
    refuse_secrets_in_config(ctx.config, "drift", secret_options(OPTIONS))
    if not opts.current:
        raise UsageError("no current data: pass --current (the serving request logs, CSV or Parquet)")
    rules = _rules(opts.thresholds)
    retrain = retrain_plan(ctx, always=opts.always) if (opts.retrain or opts.always) else None
    if opts.store_reference and not (opts.model_uri or opts.model_name):
        raise UsageError("--store-reference needs a model: pass --model-uri or set model-name")
    if not opts.reference and not (opts.model_uri or opts.model_name):
        raise UsageError("no reference: pass --reference, or --model-uri / model-name to use the champion's")
    return DriftRequest(
        current=tuple(opts.current),
        reference=tuple(opts.reference or ()),
        model_uri=champion_uri(opts),
        # With --reference, a model named only by model-name is for the predictions alone.
        model_optional=bool(opts.reference) and not opts.model_uri,
        out_dir=ctx.out_dir / "drift",
        project_dir=ctx.project_dir,
        window_days=opts.window_days,
        time_column=opts.time_column,
        features=tuple(opts.features),
        exclude=tuple(c for c in [opts.target, *opts.ignore_columns] if c),
        alpha=opts.alpha,
        psi=opts.psi,
        wasserstein=opts.wasserstein,
        rules=rules,
        min_rows=opts.min_rows,
        predictions=opts.predictions,
        store_reference=opts.store_reference,
        reference_sample_rows=opts.reference_sample_rows,
        title=opts.title,
        retrain=retrain,
        current_label="--current",
        reference_label="--reference",
    )


def champion_uri(opts) -> str | None:
    """--model-uri, else the champion of model-name (None: neither; quality uses it too)."""
    from mlops_ci.tracking.registry import check_model_name

    if opts.model_uri:
        return opts.model_uri
    if opts.model_name:
        return f"models:/{check_model_name(opts.model_name)}@champion"
    return None


@contextmanager
def _naming_flags() -> Iterator[None]:
    """The monitoring errors, with the flags that fix them."""
    from mlops_ci.monitoring.data import TimeColumnNeeded
    from mlops_ci.monitoring.detect import ColumnMismatch, UnknownFeatures
    from mlops_ci.monitoring.reference import ModelNotFound, NoReference

    try:
        yield
    except TimeColumnNeeded as exc:
        raise UsageError(
            f"{exc.label}: --window-days needs --time-column to know the time of each row of {exc.file_name}"
        ) from None
    except UnknownFeatures as exc:
        raise UsageError(f"--features names columns the data lacks: {exc.missing}") from None
    except ColumnMismatch as exc:
        raise UsageError(f"{exc}; pass --features to compare a subset, or --ignore-columns") from None
    except ModelNotFound as exc:
        raise UsageError(f"{exc} or pass --reference") from None
    except NoReference as exc:
        where = ", or store a sample with --store-reference where the data is" if exc.sample_helps else ""
        raise UsageError(f"{exc}; pass --reference{where}") from None


def _rules(raw: dict[str, Any]) -> dict:
    from mlops_ci.monitoring.detect import FeatureRule

    rules = {}
    for name, settings in (raw or {}).items():
        if not isinstance(settings, dict):
            raise UsageError(f"drift.thresholds.{name} must be a mapping (psi, wasserstein, kind, ignore)")
        rules[name] = FeatureRule(
            psi=settings.get("psi"),
            wasserstein=settings.get("wasserstein"),
            kind=settings.get("kind"),
            ignore=bool(settings.get("ignore", False)),
        )
    return rules


# --- retraining --------------------------------------------------------------------------


def retrain_platform(ctx: StepContext) -> str:
    name = ctx.options.retrain_platform or (ctx.platform.name if ctx.platform.name in CODE_HOSTS else None)
    if name is None:
        raise UsageError(
            "--retrain/--always need a code host: run on GitHub Actions or GitLab CI, or pass --retrain-platform"
        )
    return name


def retrain_plan(ctx: StepContext, *, always: bool = False) -> RetrainPlan:
    """Checked before any data is read: a misconfigured trigger is a usage error. The
    quality step builds its plan here too."""
    from mlops_ci.monitoring.watch import RetrainPlan

    opts = ctx.options
    platform_name = retrain_platform(ctx)
    mechanism = opts.retrain_via or ("workflow_dispatch" if platform_name == "github" else "pipeline")
    if (platform_name == "github") != (mechanism != "pipeline"):
        raise UsageError(f"--retrain-via {mechanism} does not exist on {platform_name}")
    if mechanism == "workflow_dispatch" and not opts.retrain_workflow:
        raise UsageError(
            "--retrain-via workflow_dispatch needs --retrain-workflow (the workflow file, e.g. train.yml)"
        )
    target = RetrainRequest(
        mechanism=mechanism,
        reason="",  # the check says why
        repository=opts.retrain_repository,
        ref=opts.retrain_ref,
        workflow=opts.retrain_workflow,
        event_type=opts.retrain_event_type,
        trigger_token=opts.retrain_trigger_token,
        extra=dict(opts.retrain_input or {}),
    )
    return RetrainPlan(target, always=always, cooldown_hours=opts.retrain_cooldown)


# --- the result --------------------------------------------------------------------------


def _retrain_check(dispatched: Published | None, requested: bool, drifted: bool, always: bool) -> Check:
    if dispatched is None:
        message = (
            "not requested (--retrain / --always)"
            if not requested
            else "no drift, so no retraining was started"
        )
        return Check("retraining", "skipped", message=message, blocking=False, details={"kind": "retrain"})
    if dispatched.done:
        return Check(
            "retraining",
            "passed",
            message=f"started ({dispatched.kind}) {dispatched.url or ''}".strip(),
            details={"kind": "retrain", "url": dispatched.url},
        )
    return Check(
        "retraining", "failed", message=dispatched.reason or "not started", details={"kind": "retrain"}
    )


def _check_name(verdict) -> str:
    if verdict.prediction:
        return {"prediction": "predictions", "prediction_score": "prediction scores"}.get(
            verdict.name, verdict.name
        )
    return f"feature {verdict.name}"


def retrain_output(dispatched: Published | None, requested: bool) -> str:
    if dispatched is None:
        return "not-needed" if requested else "skipped"
    if dispatched.action == "cooldown":
        return "cooldown"
    return "triggered" if dispatched.done else "failed"


def _result(opts, outcome: DriftOutcome, *, retrain_requested: bool) -> StepResult:
    found, paths, dispatched = outcome.report, outcome.paths, outcome.dispatched
    if found is None:
        message = (
            f"only {outcome.current_rows} current rows (fewer than --min-rows {opts.min_rows}); not tested"
        )
        return _skipped(message, outcome)
    checks = []
    for verdict in found.verdicts:
        t = verdict.test
        if t.skipped:
            status = "skipped"
        elif verdict.drifted:
            status = "failed"
        else:
            status = "passed"
        checks.append(
            Check(
                _check_name(verdict),
                status,
                value=t.psi,
                p_value=verdict.adjusted_pvalue,
                threshold=verdict.psi_threshold,
                message=verdict.reason,
                blocking=opts.fail_on_drift,
                details={
                    "kind": "drift",
                    "test": t.test,
                    "statistic": t.statistic,
                    "p_value_raw": t.pvalue,
                    "wasserstein": t.wasserstein
                    if t.wasserstein is None or t.wasserstein != float("inf")
                    else None,
                    "alpha": found.alpha,
                    "unseen_share": t.unseen_share,
                },
            )
        )
    for warning in outcome.warnings:
        checks.append(
            Check("reference data", "warning", message=warning, blocking=False, details={"kind": "data"})
        )
    checks.append(_retrain_check(dispatched, retrain_requested, found.drifted, opts.always))
    summary_data = found.to_dict()
    drifted = found.drifted_features
    if found.drifted:
        summary = f"drift in {len(drifted)} of {summary_data['features_tested']} features" + (
            f" ({', '.join(drifted[:8])}{'…' if len(drifted) > 8 else ''})" if drifted else ""
        )
        if found.prediction_drift:
            summary += "; the predictions drifted"
    else:
        summary = f"no drift in {summary_data['features_tested']} features"
    summary += (
        f" ({found.current_rows:,} current vs {found.reference_rows:,} reference rows, FDR {found.alpha:g})"
    )
    refused = dispatched is not None and not dispatched.done and dispatched.action != "cooldown"
    if dispatched is not None:
        if dispatched.done:
            summary += "; retraining started"
        elif refused:
            summary += "; retraining NOT started"
        else:
            summary += "; retraining already started recently"
    failed = (found.drifted and opts.fail_on_drift) or refused
    outputs = {
        "drift": "true" if found.drifted else "false",
        "drifted-features": ",".join(drifted),
        "features-tested": str(summary_data["features_tested"]),
        "share-drifted": f"{summary_data['share_drifted']:.4f}",
        "prediction-drift": "" if found.prediction_drift is None else str(found.prediction_drift).lower(),
        "reference-rows": str(found.reference_rows),
        "current-rows": str(found.current_rows),
        "window-start": found.window.start or "",
        "window-end": found.window.end or "",
        "report": str(paths["markdown"]),
        "retrain": retrain_output(dispatched, retrain_requested),
    }
    if dispatched is not None and dispatched.done and dispatched.url:
        outputs["retrain-url"] = dispatched.url
    result = StepResult(
        step="drift",
        status="failed" if failed else "passed",
        summary=summary,
        outputs=outputs,
        checks=checks,
        artifacts=[str(p) for p in paths.values()],
    )
    result.summary_markdown = paths["markdown"].read_text(encoding="utf-8")
    return result


def _skipped(message: str, outcome: DriftOutcome) -> StepResult:
    dispatched = outcome.dispatched
    checks = [Check("drift", "skipped", message=message, blocking=False, details={"kind": "drift"})]
    if dispatched is not None:
        checks.append(_retrain_check(dispatched, True, False, True))
    return StepResult(
        step="drift",
        status="failed" if dispatched is not None and not dispatched.done else "skipped",
        summary=message,
        outputs={
            "drift": "false",
            "current-rows": str(outcome.current_rows),
            "reference-rows": str(outcome.reference_rows),
            "window-start": outcome.window_start or "",
            "window-end": outcome.window_end or "",
            "retrain": retrain_output(dispatched, dispatched is not None),
        },
        checks=checks,
    )


STEP = Step(
    name="drift",
    help="compare recent serving data with the model's reference; report drift and start retraining",
    description="Per feature: Kolmogorov–Smirnov (numeric) or chi-squared (categorical, unseen categories "
    "included) with PSI and Wasserstein as effect sizes; Benjamini–Hochberg across features; the "
    "predictions too. Current data: the serving request logs (JSON lines, rotated files, folders), CSV "
    "or Parquet, optionally the last --window-days days. Reference: --reference, else the sample stored "
    "with the model version, else its training data. Reports in <out-dir>/drift/ (JSON, markdown, PNG). "
    "--retrain starts the training workflow on drift (GitHub workflow_dispatch or repository_dispatch, "
    "GitLab pipeline trigger) with the reason and the data window; --always starts it anyway.",
    options=OPTIONS,
    run=run,
    outputs=OUTPUTS,
    shared=("target",),
)
