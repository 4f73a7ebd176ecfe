"""`mlops-ci drift`: compare recent serving data with the deployed model's reference,
feature by feature and on the predictions, corrected for testing many features; write a
JSON, markdown and PNG report; start the training pipeline on drift (``--retrain``) or
every time (``--always``, for a schedule).

Exit codes: 0 no drift (or drift with --no-fail-on-drift), 1 drift, or the retraining
dispatch was refused, 2 bad input (missing data, different columns, bad thresholds), 3 a
service failed after retries (MLflow, GitHub, GitLab).
"""

from __future__ import annotations

import logging
from typing import Any

from mlops_ci.errors import UsageError
from mlops_ci.options import Option, alpha_option
from mlops_ci.platforms.base import ApiSettings, Published, RetrainRequest
from mlops_ci.result import Check, StepResult
from mlops_ci.retry import RetryPolicy
from mlops_ci.steps.base import Output, Step, StepContext

log = logging.getLogger(__name__)

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
    Option(
        "github-token",
        "GitHub token (actions: write for workflow_dispatch, contents: write for repository_dispatch)",
        env_aliases=("GITHUB_TOKEN", "GH_TOKEN"),
        metavar="TOKEN",
    ),
    Option(
        "github-api-url",
        "GitHub REST API URL",
        env_aliases=("GITHUB_API_URL",),
        default="https://api.github.com",
        metavar="URL",
    ),
    Option(
        "gitlab-token",
        "GitLab API token (to create a pipeline without a trigger token)",
        env_aliases=("GITLAB_TOKEN",),
        metavar="TOKEN",
    ),
    Option("gitlab-url", "GitLab server URL", env_aliases=("CI_SERVER_URL",), metavar="URL"),
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
SECRET_OPTIONS = ("github-token", "gitlab-token", "retrain-trigger-token")


def run(ctx: StepContext) -> StepResult:
    from mlops_ci.monitoring import data, detect, report

    opts = ctx.options
    for name in SECRET_OPTIONS:
        if name in ctx.config.section("drift"):
            raise UsageError(
                f"{name} must not be in {ctx.config.origin} (a file that gets committed); use the environment"
            )
    if not opts.current:
        raise UsageError("no current data: pass --current (the serving request logs, CSV or Parquet)")
    rules = _rules(opts.thresholds)
    retrain = _retrain_settings(ctx) if (opts.retrain or opts.always) else None
    if opts.store_reference and not (opts.model_uri or opts.model_name):
        raise UsageError("--store-reference needs a model: pass --model-uri or set model-name")

    current = data.load(
        opts.current, option="--current", window_days=opts.window_days, time_column=opts.time_column
    )
    model_ref = None
    client = None
    warnings: list[str] = []
    if opts.reference:
        reference_frame = data.load(opts.reference, option="--reference").frame
        reference_source = ", ".join(str(p) for p in opts.reference)
        if opts.model_uri:
            model_ref, client = _model(ctx)
        elif opts.model_name:
            # Only for the predictions: a model without a champion yet is no reason to stop.
            try:
                model_ref, client = _model(ctx)
            except UsageError as exc:
                log.warning("predictions not compared: %s", exc)
    else:
        from mlops_ci.monitoring.reference import load_reference

        model_ref, client = _model(ctx)
        loaded = load_reference(client, ctx.store, model_ref, project_dir=ctx.project_dir)
        reference_frame, reference_source, warnings = loaded.frame, loaded.source, list(loaded.warnings)
    current_frame = current.frame
    exclude = [c for c in [opts.target, *opts.ignore_columns] if c]
    columns = detect.feature_columns(reference_frame, current_frame, features=opts.features, exclude=exclude)
    for warning in warnings:
        log.warning("%s", warning)

    if opts.predictions and model_ref is not None:
        reference_frame, current_frame = _add_predictions(model_ref, reference_frame, current_frame, columns)
    if opts.store_reference and model_ref is not None:
        from mlops_ci.monitoring.reference import store_sample

        uri = store_sample(client, ctx.store, model_ref, reference_frame, rows=opts.reference_sample_rows)
        log.info("stored a reference sample with %s: %s", model_ref.uri, uri)
    elif opts.store_reference:
        log.warning("--store-reference: no model version to store the reference with; nothing stored")

    if len(current_frame) < opts.min_rows:
        message = (
            f"only {len(current_frame)} current rows (fewer than --min-rows {opts.min_rows}); not tested"
        )
        dispatched = (
            _dispatch(ctx, retrain, reason="scheduled retraining", report_=None, current=current)
            if opts.always
            else None
        )
        return _skipped(message, current, len(reference_frame), dispatched)

    found = detect.detect(
        reference_frame,
        current_frame,
        columns=columns,
        alpha=opts.alpha,
        psi=opts.psi,
        wasserstein=opts.wasserstein,
        rules=rules,
        min_rows=min(opts.min_rows, 30),
        window=current.window,
        reference_source=reference_source,
        current_source=", ".join(str(p) for p in opts.current),
    )
    folder = ctx.out_dir / "drift"
    paths = report.write_reports(found, reference_frame, current_frame, folder, title=opts.title)

    dispatched: Published | None = None
    if retrain is not None and (opts.always or found.drifted):
        reason = _reason(found, always=opts.always)
        recent = None if opts.always else _recent_retraining(ctx, client, model_ref)
        if recent is not None:
            dispatched = Published("cooldown", done=False, kind="dispatch", reason=recent)
        else:
            dispatched = _dispatch(
                ctx, retrain, reason=reason, report_=found, current=current, model=model_ref
            )
            if dispatched.done and not opts.always:
                _remember_retraining(ctx, client, model_ref, reason, dispatched)
    return _result(ctx, found, paths, dispatched, warnings, retrain_requested=retrain is not None)


RETRAIN_AT_TAG = "mlops_ci.retrain.started_at"
RETRAIN_REASON_TAG = "mlops_ci.retrain.reason"
RETRAIN_URL_TAG = "mlops_ci.retrain.url"


def _recent_retraining(ctx: StepContext, client, model_ref) -> str | None:
    """Why not to start again: a drift-started retraining within the cooldown (None: go)."""
    from datetime import datetime, timedelta, timezone

    from mlops_ci.tracking.store import tracking_errors

    if model_ref is None or client is None or not ctx.options.retrain_cooldown:
        return None
    with tracking_errors(ctx.store):
        tags = client.get_registered_model(model_ref.name).tags or {}
    started = tags.get(RETRAIN_AT_TAG)
    if not started:
        return None
    try:
        at = datetime.fromisoformat(started)
    except ValueError:
        return None
    hours = ctx.options.retrain_cooldown
    if datetime.now(timezone.utc) - at < timedelta(hours=hours):
        where = f" ({tags[RETRAIN_URL_TAG]})" if tags.get(RETRAIN_URL_TAG) else ""
        return (
            f"retraining was already started at {started}{where} for {tags.get(RETRAIN_REASON_TAG, 'drift')}; "
            f"not again within the {hours:g} h cooldown (--retrain-cooldown)"
        )
    return None


def _remember_retraining(ctx: StepContext, client, model_ref, reason: str, dispatched: Published) -> None:
    from mlops_ci.result import now_iso
    from mlops_ci.tracking.store import tracking_errors

    if model_ref is None or client is None:
        return
    with tracking_errors(ctx.store):
        client.set_registered_model_tag(model_ref.name, RETRAIN_AT_TAG, now_iso())
        client.set_registered_model_tag(model_ref.name, RETRAIN_REASON_TAG, reason[:1000])
        if dispatched.url:
            client.set_registered_model_tag(model_ref.name, RETRAIN_URL_TAG, dispatched.url)


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


def _model(ctx: StepContext):
    from mlops_ci.monitoring.reference import resolve_version
    from mlops_ci.tracking.registry import check_model_name
    from mlops_ci.tracking.store import connect

    uri = ctx.options.model_uri
    if not uri:
        if not ctx.options.model_name:
            raise UsageError(
                "no reference: pass --reference, or --model-uri / model-name to use the champion's"
            )
        uri = f"models:/{check_model_name(ctx.options.model_name)}@champion"
    client = connect(ctx.store)
    return resolve_version(client, ctx.store, uri), client


def _add_predictions(model_ref, reference, current, columns):
    """Score the side that has no predictions when the other has them (or neither has)."""
    from mlops_ci.monitoring.data import PREDICTION
    from mlops_ci.monitoring.reference import score

    ref_has, cur_has = PREDICTION in reference.columns, PREDICTION in current.columns
    if ref_has and cur_has:
        return reference, current
    try:
        if not ref_has:
            reference = reference.assign(**{PREDICTION: score(model_ref, reference, columns)})
        if not cur_has:
            current = current.assign(**{PREDICTION: score(model_ref, current, columns)})
    except Exception as exc:  # noqa: BLE001 - prediction drift is optional; say why it is missing
        log.warning(
            "predictions not compared: %s could not score the data (%s)", model_ref.uri, str(exc)[:200]
        )
        reference = reference.drop(columns=[PREDICTION], errors="ignore")
        current = current.drop(columns=[PREDICTION], errors="ignore")
    return reference, current


# --- retraining --------------------------------------------------------------------------


def _retrain_settings(ctx: StepContext) -> dict[str, Any]:
    """Checked before any data is read: a misconfigured trigger is a usage error."""
    opts = ctx.options
    platform_name = opts.retrain_platform or (
        ctx.platform.name if ctx.platform.name in ("github", "gitlab") else None
    )
    if platform_name is None:
        raise UsageError(
            "--retrain/--always need a code host: run on GitHub Actions or GitLab CI, or pass --retrain-platform"
        )
    mechanism = opts.retrain_via or ("workflow_dispatch" if platform_name == "github" else "pipeline")
    if (platform_name == "github") != (mechanism != "pipeline"):
        raise UsageError(f"--retrain-via {mechanism} does not exist on {platform_name}")
    if mechanism == "workflow_dispatch" and not opts.retrain_workflow:
        raise UsageError(
            "--retrain-via workflow_dispatch needs --retrain-workflow (the workflow file, e.g. train.yml)"
        )
    return {"platform": platform_name, "mechanism": mechanism}


def _reason(found, *, always: bool) -> str:
    if found.drifted:
        parts = []
        if found.drifted_features:
            parts.append(f"drift in {', '.join(found.drifted_features)}")
        if found.prediction_drift:
            parts.append("prediction drift")
        reason = "; ".join(parts)
        return f"scheduled retraining; {reason}" if always else reason
    return "scheduled retraining; no drift found"


def _dispatch(ctx: StepContext, settings, *, reason: str, report_, current, model=None) -> Published:
    opts = ctx.options
    platform = ctx.platform
    if platform.name != settings["platform"]:
        if settings["platform"] == "github":
            from mlops_ci.platforms.github import GitHubPlatform as cls
        else:
            from mlops_ci.platforms.gitlab import GitLabPlatform as cls
        platform = cls(ctx.env, cwd=ctx.cwd, out_dir=ctx.out_dir)
    retry = RetryPolicy(budget_s=opts.retry_timeout)
    if settings["platform"] == "github":
        platform.connect(ApiSettings(token=opts.github_token, url=opts.github_api_url, retry=retry))
    else:
        platform.connect(ApiSettings(token=opts.gitlab_token, url=opts.gitlab_url, retry=retry))
    request = RetrainRequest(
        mechanism=settings["mechanism"],
        reason=reason,
        window_start=current.window.start,
        window_end=current.window.end,
        model=model.uri if model is not None else None,
        drifted_features=tuple(report_.drifted_features) if report_ is not None else (),
        repository=opts.retrain_repository,
        ref=opts.retrain_ref,
        workflow=opts.retrain_workflow,
        event_type=opts.retrain_event_type,
        trigger_token=opts.retrain_trigger_token,
        extra=dict(opts.retrain_input or {}),
    )
    published = platform.request_retraining(request)
    if published.done:
        log.info("started retraining (%s): %s", request.mechanism, published.url or published.id)
    else:
        log.warning("retraining not started: %s", published.reason)
    return published


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


def _retrain_output(dispatched: Published | None, requested: bool) -> str:
    if dispatched is None:
        return "not-needed" if requested else "skipped"
    if dispatched.action == "cooldown":
        return "cooldown"
    return "triggered" if dispatched.done else "failed"


def _result(ctx, found, paths, dispatched, warnings, *, retrain_requested: bool) -> StepResult:
    opts = ctx.options
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
    for warning in warnings:
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
        "retrain": _retrain_output(dispatched, retrain_requested),
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


def _skipped(message: str, current, reference_rows: int, dispatched: Published | None) -> StepResult:
    checks = [Check("drift", "skipped", message=message, blocking=False, details={"kind": "drift"})]
    if dispatched is not None:
        checks.append(_retrain_check(dispatched, True, False, True))
    return StepResult(
        step="drift",
        status="failed" if dispatched is not None and not dispatched.done else "skipped",
        summary=message,
        outputs={
            "drift": "false",
            "current-rows": str(len(current.frame)),
            "reference-rows": str(reference_rows),
            "window-start": current.window.start or "",
            "window-end": current.window.end or "",
            "retrain": _retrain_output(dispatched, dispatched is not None),
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
