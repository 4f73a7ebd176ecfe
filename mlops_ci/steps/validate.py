"""`mlops-ci validate`: may the candidate replace the champion? Statistical checks on a
holdout, with confidence intervals instead of single numbers, plus slices, data checks and
malformed-input robustness; reports, plots, and the verdict recorded in MLflow."""

from __future__ import annotations

from pathlib import Path

from mlops_ci.errors import UsageError
from mlops_ci.options import Option, alpha_option
from mlops_ci.result import Check, StepResult
from mlops_ci.steps.base import Output, Step, StepContext
from mlops_ci.tracking.provenance import ProvenanceKey
from mlops_ci.validation.checks import BUILTIN_METRICS, CHECK_SCHEMA, SLICE_SCHEMA
from mlops_ci.validation.validate import ValidationOutcome, ValidationRequest

OPTIONS = (
    Option(
        "candidate",
        "Model to validate: models:/<name>/<version>, models:/<name>@<alias>, models:/m-<id>, "
        "runs:/<run-id>/<path> or a local MLflow model folder (default: the model of the last "
        "`mlops-ci register` in --out-dir, else models:/<model-name>@challenger)",
        metavar="URI",
    ),
    Option(
        "baseline",
        "Model to compare with (default: models:/<model-name>@champion; when that alias does not "
        "exist yet the candidate is a first model and only absolute checks run); 'none' for no comparison",
        metavar="URI",
    ),
    Option(
        "checks",
        "Statistical checks (see the README); default: no-regression on the primary metric",
        kind="list",
        cli=False,
        schema=CHECK_SCHEMA,
    ),
    Option("slices", "Holdout segments the checks run on again", kind="list", cli=False, schema=SLICE_SCHEMA),
    Option(
        "primary-metric",
        "Metric of the default policy (no-regression) when no checks are declared (default: accuracy "
        "for classifiers, rmse for regressors)",
        choices=BUILTIN_METRICS,
        metavar="METRIC",
    ),
    Option(
        "task",
        "classification or regression (auto: from the model and the target)",
        choices=("auto", "classification", "regression"),
        default="auto",
    ),
    Option(
        "positive-label",
        "Positive class of a binary target (default: the second of the sorted labels, scikit-learn's convention)",
        metavar="LABEL",
    ),
    alpha_option(
        "Family-wise error rate of the blocking no-regression checks, and the default alpha of every check"
    ),
    Option(
        "power",
        "Power of the minimum detectable difference (default: 1 - alpha)",
        kind="float",
        above=0,
        below=1,
    ),
    Option("n-resamples", "Bootstrap resamples per interval", kind="int", default=2000, minimum=100),
    Option("interval", "Bootstrap interval method", choices=("bca", "percentile"), default="bca"),
    Option(
        "seed",
        "Seed of the resampling (the same inputs give the same verdict)",
        kind="int",
        default=42,
        minimum=0,
    ),
    Option(
        "min-slice-rows",
        "Segments with fewer rows are reported as 'not enough data'",
        kind="int",
        default=200,
        minimum=1,
        metavar="ROWS",
    ),
    Option(
        "data-checks",
        "Check the holdout's columns, types, missing values and labels",
        kind="bool",
        default=True,
    ),
    Option(
        "robustness",
        "Feed the candidate malformed batches (wrong type, NaN, missing/extra column, empty)",
        kind="bool",
        default=True,
    ),
    Option(
        "robustness-timeout",
        "Seconds a malformed batch may take before it counts as a hang",
        kind="float",
        default=60.0,
        minimum=1,
        metavar="SECONDS",
    ),
    Option(
        "robustness-blocking",
        "Whether a crash or hang on a malformed batch blocks",
        kind="bool",
        default=True,
    ),
    Option(
        "plots",
        "Draw PNG plots (forest plot of the intervals, ROC and calibration curves)",
        kind="bool",
        default=True,
    ),
    Option(
        "record",
        "Log metrics and reports to the candidate's MLflow run and tag its registry version with the verdict",
        kind="bool",
        default=True,
    ),
)


def run(ctx: StepContext) -> StepResult:
    from mlops_ci.validation.validate import validate

    outcome = validate(_request(ctx))
    return _result(outcome)


def _retraining_holdout(ctx: StepContext) -> Path | None:
    """Without --holdout: the holdout `train --data-ref` split off the new data (the newest
    rows of its window), so a retrained model is judged on the data it was retrained for."""
    path = ctx.earlier_output("train", "holdout-path", statuses=("passed", "skipped"))
    return ctx.project_dir / path if path else None


def _request(ctx: StepContext) -> ValidationRequest:
    from mlops_ci.validation.policy import Settings

    opts = ctx.options
    baseline = (opts.baseline or "").strip()
    return ValidationRequest(
        candidate=_candidate_uri(ctx),
        holdout=opts.holdout or _retraining_holdout(ctx),
        target=opts.target,
        settings=Settings(
            alpha=opts.alpha,
            power=opts.power,
            n_resamples=opts.n_resamples,
            method=opts.interval,
            seed=opts.seed,
            min_slice_rows=opts.min_slice_rows,
        ),
        store=ctx.store,
        project_dir=ctx.project_dir,
        folder=ctx.out_dir / "validate",
        baseline=opts.baseline if baseline and baseline.lower() != "none" else None,
        compare=baseline.lower() != "none",
        model_name=opts.model_name,
        checks=tuple(opts.checks),
        slices=tuple(opts.slices),
        primary_metric=opts.primary_metric,
        task=opts.task,
        positive_label=opts.positive_label,
        data_checks=opts.data_checks,
        robustness=opts.robustness,
        robustness_timeout_s=opts.robustness_timeout,
        robustness_blocking=opts.robustness_blocking,
        plots=opts.plots,
        record=opts.record,
        # Only a trusted job's record may be signed: deploy believes signed records.
        signing_key=ProvenanceKey.from_env(ctx.env) if ctx.run_context.trusted else None,
    )


def _candidate_uri(ctx: StepContext) -> str:
    """--candidate, else the version the last `mlops-ci register` in the out-dir registered,
    else the challenger alias of --model-name."""
    uri = ctx.options.candidate or ctx.earlier_output("register", "model-uri", statuses=("passed",))
    if uri:
        return uri
    if ctx.options.model_name:
        return f"models:/{ctx.options.model_name}@challenger"
    raise UsageError(
        "no candidate: pass --candidate URI, run `mlops-ci register` first, or set model-name (for "
        "models:/<model-name>@challenger)"
    )


def _result(outcome: ValidationOutcome) -> StepResult:
    cand, base = outcome.candidate, outcome.baseline
    outputs = {
        "candidate-uri": cand.uri,
        "candidate-version": cand.version or "",
        "baseline-uri": base.uri if base else "",
        "baseline-version": (base.version or "") if base else "",
        "first-model": "true" if outcome.first_model else "false",
        "holdout-rows": str(outcome.holdout_rows),
        "task": outcome.task,
        "blocking-failures": str(len(outcome.blocking_failures)),
        "report": str(outcome.report),
        "junit": str(outcome.junit),
    }
    if outcome.recorded_status:
        outputs["validation-status"] = outcome.recorded_status
    return StepResult(
        step="validate",
        status="passed" if outcome.passed else "failed",
        summary=outcome.summary,
        outputs=outputs,
        checks=[Check.from_finding(finding) for finding in outcome.findings],
        artifacts=[str(outcome.report), str(outcome.junit), *map(str, outcome.plots)],
    )


OUTPUTS = (
    Output("candidate-uri", "The model validated (models:/<name>/<version> when it is in the registry)"),
    Output("candidate-version", "Its registry version (empty for a model outside the registry)"),
    Output("baseline-uri", "The model it was compared with (empty for a first model or --baseline none)"),
    Output("baseline-version", "The champion version it was compared with (empty for a first model)"),
    Output("first-model", "true when there was no champion to compare with (only absolute checks ran)"),
    Output("holdout-rows", "Rows of the holdout both models were scored on"),
    Output("task", "classification or regression"),
    Output("blocking-failures", "Number of blocking checks that failed"),
    Output("report", "The markdown report (<out-dir>/validate/report.md)"),
    Output("junit", "JUnit XML with one test case per check (<out-dir>/validate/junit.xml)"),
    Output("validation-status", "passed or failed, as tagged on the candidate's registry version"),
)

STEP = Step(
    name="validate",
    help="test the candidate statistically against the champion on a holdout (intervals, not single numbers)",
    description="Score the candidate and the baseline (default: the champion alias) on the same holdout "
    "rows and decide with paired bootstrap intervals: no-regression (block only on evidence of harm), "
    "non-inferiority (the candidate must prove it is within a margin), superiority, or absolute "
    "floors/ceilings, with Holm–Bonferroni across the blocking no-regression checks and the minimum "
    "detectable difference of the holdout. Also runs the checks per slice, data checks against the "
    "model signature, and malformed-input robustness checks. Writes a markdown report, JUnit XML and "
    "PNG plots; logs them to the candidate's MLflow run and tags its registry version with the verdict.",
    options=OPTIONS,
    run=run,
    shared=("holdout", "target"),
    outputs=OUTPUTS,
)
