"""`mlops-ci quality`: join labels that arrived later to the serving request log by request
id, compute the live metric with a bootstrap interval, and test whether it is worse than
the deployed version's validation estimate by more than a margin; start the training
pipeline on a decay (``--retrain``, the same dispatch and cooldown as drift).

Exit codes: 0 no decay (or too few labelled rows: skipped), 1 decay (with
--fail-on-decay), or the retraining dispatch was refused, 2 bad input (missing columns,
duplicate labels, no validation estimate), 3 a service failed after retries.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import TYPE_CHECKING

from mlops_ci.errors import UsageError
from mlops_ci.options import Option, alpha_option
from mlops_ci.platforms.base import Published
from mlops_ci.platforms.options import refuse_secrets_in_config, secret_options
from mlops_ci.result import Check, StepResult
from mlops_ci.steps import drift
from mlops_ci.steps.base import Output, Step, StepContext
from mlops_ci.validation.checks import BUILTIN_METRICS

if TYPE_CHECKING:
    from mlops_ci.monitoring.quality import QualityOutcome, QualityRequest

# The retraining options are drift's (one definition): where and how to start the pipeline.
_RETRAIN_SHARED = {
    "retrain-platform",
    "retrain-via",
    "retrain-workflow",
    "retrain-ref",
    "retrain-repository",
    "retrain-event-type",
    "retrain-trigger-token",
    "retrain-input",
    "github-token",
    "gitlab-token",
    "github-api-url",
    "gitlab-url",
}


def _shared_retrain_options() -> tuple[Option, ...]:
    chosen = [o for o in drift.OPTIONS if o.name in _RETRAIN_SHARED]
    cooldown = next(o for o in drift.OPTIONS if o.name == "retrain-cooldown")
    chosen.append(
        replace(
            cooldown,
            help="Hours after a monitoring-started retraining (drift or quality) during which a decay does not "
            "start another (recorded on the registered model; needs a model); 0: no cooldown",
        )
    )
    return tuple(chosen)


OPTIONS = (
    Option(
        "requests",
        "The serving request logs (requests.jsonl and its rotated files, or their folder); rows join by "
        "the request id the client sent (V2 inference `id`)",
        kind="paths",
        metavar="PATH",
    ),
    Option(
        "labels",
        "The labels that arrived later: CSV or Parquet with the request id and the true label",
        kind="paths",
        metavar="PATH",
    ),
    Option(
        "id-column", "Column of the labels holding the request id", default="request_id", metavar="COLUMN"
    ),
    Option("label-column", "Column of the labels holding the true label", default="label", metavar="COLUMN"),
    Option("metric", "The live metric to test", default="accuracy", choices=BUILTIN_METRICS),
    Option(
        "expected",
        "The quality to compare with (default: validate/<metric> recorded on the deployed version's run)",
        kind="float",
        metavar="VALUE",
    ),
    Option(
        "model-uri",
        "The deployed version whose validation estimate to use (default: models:/<model-name>@champion)",
        metavar="URI",
    ),
    Option(
        "margin",
        "How much worse than the validation estimate is tolerated, in the metric's units",
        kind="float",
        default=0.0,
        minimum=0,
    ),
    # One-sided: the reported two-sided interval is at 1 - 2 alpha, so alpha stays below 0.5.
    replace(
        alpha_option(
            "Level of the one-sided test that live quality is worse than expected by more than the margin"
        ),
        below=0.5,
    ),
    Option(
        "min-rows",
        "Fewest labelled predictions worth testing; fewer: the check is skipped",
        kind="int",
        default=200,
        minimum=10,
    ),
    Option("n-resamples", "Bootstrap resamples", kind="int", default=2000, minimum=200),
    Option("seed", "Seed of the bootstrap", kind="int", default=0, minimum=0),
    Option("window-days", "Only requests of the last N days", kind="float", above=0, metavar="DAYS"),
    Option("fail-on-decay", "Exit 1 when quality decayed", kind="bool", default=True),
    Option("retrain", "Start the training pipeline when quality decayed", kind="bool", default=False),
    *_shared_retrain_options(),
)

OUTPUTS = (
    Output("decay", "true when live quality is worse than the validation estimate by more than the margin"),
    Output("metric", "The metric tested"),
    Output("live", "The live metric on the joined rows"),
    Output("live-low", "Low end of its interval"),
    Output("live-high", "High end of its interval"),
    Output("expected", "The validation estimate compared with"),
    Output("p-value", "One-sided p-value of the decay test"),
    Output("matched-rows", "Labelled predictions joined by request id"),
    Output("unlabelled-rows", "Logged predictions with an id but no label (yet)"),
    Output("unmatched-labels", "Labels whose request id is not in the request log"),
    Output(
        "retrain",
        "triggered, not-needed (no decay), cooldown (started recently), skipped (not asked) or failed",
    ),
    Output("retrain-url", "Where the started pipeline shows"),
)


def run(ctx: StepContext) -> StepResult:
    from mlops_ci.monitoring.quality import check_quality

    request = quality_request(ctx)
    platform = drift.retrain_host(ctx) if request.retrain is not None else None
    store = ctx.store if request.model_uri else None
    with _naming_flags():
        outcome = check_quality(request, store=store, platform=platform)
    return _result(ctx.options, outcome, retrain_requested=request.retrain is not None)


def quality_request(ctx: StepContext) -> QualityRequest:
    """The options, checked before any data is read."""
    from mlops_ci.monitoring.quality import QualityRequest

    opts = ctx.options
    refuse_secrets_in_config(ctx.config, "quality", secret_options(OPTIONS))
    if not opts.requests:
        raise UsageError("no request log: pass --requests (the serving request logs)")
    if not opts.labels:
        raise UsageError("no labels: pass --labels (CSV or Parquet with the request id and the label)")
    # With --expected the registry is needed only for the cooldown of an explicit --model-uri.
    model_uri = opts.model_uri or (drift.champion_uri(opts) if opts.expected is None else None)
    if opts.expected is None and model_uri is None:
        raise UsageError("nothing to compare with: pass --expected, or --model-uri / model-name")
    return QualityRequest(
        requests=tuple(opts.requests),
        labels=tuple(opts.labels),
        id_column=opts.id_column,
        label_column=opts.label_column,
        metric=opts.metric,
        expected=opts.expected,
        model_uri=model_uri,
        margin=opts.margin,
        alpha=opts.alpha,
        min_rows=opts.min_rows,
        n_resamples=opts.n_resamples,
        seed=opts.seed,
        window_days=opts.window_days,
        retrain=drift.retrain_plan(ctx) if opts.retrain else None,
        requests_label="--requests",
    )


@contextmanager
def _naming_flags() -> Iterator[None]:
    from mlops_ci.monitoring.quality import MissingColumn, NoValidationEstimate
    from mlops_ci.monitoring.reference import ModelNotFound

    try:
        yield
    except MissingColumn as exc:
        flag = "--id-column" if exc.role == "id" else "--label-column"
        raise UsageError(f"--labels: {exc}; pass {flag}") from None
    except NoValidationEstimate as exc:
        raise UsageError(f"{exc}; pass --expected") from None
    except ModelNotFound as exc:
        raise UsageError(f"{exc}, or pass --expected") from None


def _retrain_check(dispatched: Published | None, requested: bool) -> Check:
    if dispatched is None:
        message = "not requested (--retrain)" if not requested else "no decay, so no retraining was started"
        return Check("retraining", "skipped", message=message, blocking=False, details={"kind": "retrain"})
    if dispatched.done:
        return Check(
            "retraining",
            "passed",
            message=f"started ({dispatched.kind}) {dispatched.url or ''}".strip(),
            details={"kind": "retrain", "url": dispatched.url},
        )
    status = "skipped" if dispatched.action == "cooldown" else "failed"
    return Check(
        "retraining",
        status,
        message=dispatched.reason or "not started",
        blocking=status == "failed",
        details={"kind": "retrain"},
    )


def _join_check(outcome: QualityOutcome) -> Check:
    j = outcome.joined
    parts = [f"{j.matched:,} of {j.logged:,} logged predictions joined to {j.labelled:,} labels"]
    for count, words in (
        (j.unlabelled, "logged with an id but no label (yet)"),
        (j.without_id, "logged without a request id"),
        (j.ambiguous, "logged under an id used more than once (not joined)"),
        (j.unmatched_labels, "labels whose request id is not in the request log"),
        (j.missing_labels, "label rows with an empty label"),
    ):
        if count:
            parts.append(f"{count:,} {words}")
    unmatched = j.unlabelled + j.without_id + j.ambiguous + j.unmatched_labels
    return Check(
        "labels joined",
        "warning" if unmatched else "passed",
        value=float(j.matched),
        message="; ".join(parts),
        blocking=False,
        details={"kind": "join", **j.counts()},
    )


def _result(opts, outcome: QualityOutcome, *, retrain_requested: bool) -> StepResult:
    a, j, dispatched = outcome.assessment, outcome.joined, outcome.dispatched
    outputs = {
        "metric": opts.metric,
        "expected": f"{outcome.expected:.6g}",
        "matched-rows": str(j.matched),
        "unlabelled-rows": str(j.unlabelled),
        "unmatched-labels": str(j.unmatched_labels),
        "retrain": drift.retrain_output(dispatched, retrain_requested),
    }
    checks = [_join_check(outcome)]
    if outcome.skip_reason is not None or a is None:
        message = outcome.skip_reason or "not tested"
        if a is None:
            message = message.replace("the minimum", "--min-rows")
        checks.append(
            Check("quality", "skipped", message=message, blocking=False, details={"kind": "quality"})
        )
        outputs["decay"] = "false"
        return StepResult(step="quality", status="skipped", summary=message, outputs=outputs, checks=checks)
    checks.append(
        Check(
            f"quality {a.metric}",
            "failed" if a.decayed else "passed",
            value=a.live,
            p_value=a.pvalue,
            threshold=a.bound,
            baseline=a.expected,
            interval=(a.low, a.high),
            message=a.reason(),
            blocking=opts.fail_on_decay,
            details={
                "kind": "quality",
                "metric": a.metric,
                "expected_source": outcome.expected_source,
                "margin": a.margin,
                "alpha": a.alpha,
                "rows": a.n,
                "window_start": outcome.window_start,
                "window_end": outcome.window_end,
            },
        )
    )
    checks.append(_retrain_check(dispatched, retrain_requested))
    summary = a.headline()
    refused = dispatched is not None and not dispatched.done and dispatched.action != "cooldown"
    if dispatched is not None:
        summary += (
            "; retraining started"
            if dispatched.done
            else ("; retraining NOT started" if refused else "; retraining already started recently")
        )
    outputs.update(
        {
            "decay": "true" if a.decayed else "false",
            "live": f"{a.live:.6g}",
            "live-low": f"{a.low:.6g}",
            "live-high": f"{a.high:.6g}",
            "p-value": f"{a.pvalue:.6g}",
        }
    )
    if dispatched is not None and dispatched.done and dispatched.url:
        outputs["retrain-url"] = dispatched.url
    failed = (a.decayed and opts.fail_on_decay) or refused
    return StepResult(
        step="quality",
        status="failed" if failed else "passed",
        summary=summary,
        outputs=outputs,
        checks=checks,
    )


STEP = Step(
    name="quality",
    help="join late labels to the request log; test live quality against the validation estimate",
    description="Labels that arrive later (CSV/Parquet: --id-column, --label-column) are joined to the "
    "serving request log by request id (unmatched ids on either side are counted and reported). The live "
    "--metric gets a bootstrap interval, and a one-sided test at --alpha asks whether it is worse than the "
    "deployed version's validation estimate (validate/<metric> on its run, or --expected) by more than "
    "--margin; fewer than --min-rows labelled rows: skipped. --retrain starts the training pipeline on a "
    "decay, as drift does.",
    options=OPTIONS,
    run=run,
    outputs=OUTPUTS,
)
