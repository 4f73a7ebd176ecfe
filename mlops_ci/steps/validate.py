"""`mlops-ci validate`: may the candidate replace the champion? Statistical checks on a
holdout, with confidence intervals instead of single numbers, plus slices, data checks and
malformed-input robustness; reports, plots, and the verdict recorded in MLflow."""

from __future__ import annotations

import logging
import tempfile
import warnings
from pathlib import Path
from typing import Any

from mlops_ci.errors import UsageError
from mlops_ci.options import Option, alpha_option
from mlops_ci.result import Check, StepResult, read_step_result
from mlops_ci.steps.base import Output, Step, StepContext
from mlops_ci.validation.checks import BUILTIN_METRICS, CHECK_SCHEMA, SLICE_SCHEMA

log = logging.getLogger(__name__)

DEFAULT_PRIMARY = {"classification": "accuracy", "regression": "rmse"}

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
    alpha_option("Family-wise error rate of the blocking no-regression checks, and the default alpha of every check"),
    Option(
        "power", "Power of the minimum detectable difference (default: 1 - alpha)", kind="float", above=0, below=1
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


def _settings(opts: Any):
    from mlops_ci.validation.policy import Settings

    return Settings(
        alpha=opts.alpha,
        power=opts.power,
        n_resamples=opts.n_resamples,
        method=opts.interval,
        seed=opts.seed,
        min_slice_rows=opts.min_slice_rows,
    )


def _candidate_uri(ctx: StepContext) -> str:
    if ctx.options.candidate:
        return ctx.options.candidate
    path = ctx.out_dir / "register.json"
    if path.is_file():
        registered = read_step_result(path)
        uri = registered.outputs.get("model-uri")
        if registered.status == "passed" and uri:
            return uri
    if ctx.options.model_name:
        return f"models:/{ctx.options.model_name}@challenger"
    raise UsageError(
        "no candidate: pass --candidate URI, run `mlops-ci register` first, or set model-name (for "
        "models:/<model-name>@challenger)"
    )


def run(ctx: StepContext) -> StepResult:
    from mlops_ci.validation import data

    opts = ctx.options
    settings = _settings(opts)
    holdout = data.load_holdout(opts.holdout, opts.target)
    candidate_uri = _candidate_uri(ctx)

    from mlops_ci.tracking.store import connect
    from mlops_ci.validation import models

    store = ctx.store
    client = connect(store)
    candidate = models.resolve(client, store, candidate_uri, role="candidate", option="--candidate")
    baseline, first_model, baseline_note = _resolve_baseline(ctx, client, candidate)
    with tempfile.TemporaryDirectory(prefix="mlops-ci-validate-") as tmp, warnings.catch_warnings():
        if not log.isEnabledFor(logging.DEBUG):
            # Libraries warn about versions and feature names while loading and scoring;
            # the checks report what matters. --debug shows them.
            warnings.simplefilter("ignore")
        workdir = Path(tmp)
        cand_model = models.load(candidate, workdir, store)
        base_model = models.load(baseline, workdir, store) if baseline is not None else None
        return _validate(
            ctx, settings, holdout, cand_model, base_model, first_model, baseline_note, client, workdir
        )


def _resolve_baseline(ctx: StepContext, client: Any, candidate: Any) -> tuple[Any, bool, str]:
    from mlops_ci.validation import models

    requested = ctx.options.baseline
    if requested and requested.strip().lower() == "none":
        return None, False, "no baseline (--baseline none): only absolute checks ran"
    if requested:
        return models.resolve(client, ctx.store, requested, role="baseline", option="--baseline"), False, ""
    name = ctx.options.model_name or candidate.name
    champion = models.find_alias(client, ctx.store, name, "champion", role="baseline") if name else None
    if champion is None:
        where = (
            f"models:/{name}@champion does not exist yet" if name else "the candidate is not in the registry"
        )
        return (
            None,
            True,
            f"first model: {where}, so there is nothing to compare with and only absolute checks ran",
        )
    return champion, False, ""


def _validate(
    ctx, settings, holdout, cand_model, base_model, first_model, baseline_note, client, workdir
) -> StepResult:
    from mlops_ci.validation import data, policy
    from mlops_ci.validation.checks import parse_checks, parse_slices
    from mlops_ci.validation.problem import build_problem, infer_task

    opts = ctx.options
    for model in (cand_model, base_model):
        if model is None:
            continue
        absent = data.missing_columns(holdout, model.signature)
        if absent:
            raise UsageError(
                f"holdout {holdout.path} lacks column(s) the {model.ref.role} needs: {', '.join(absent[:10])}; "
                "update the holdout or check --holdout"
            )
    task = infer_task(opts.task, holdout.y, cand_model, None)
    primary = opts.primary_metric or DEFAULT_PRIMARY[task]
    specs = parse_checks(opts.checks, primary_metric=primary, project_dir=ctx.project_dir, task=task)
    slice_specs = parse_slices(opts.slices, specs)
    want_scores = any(_needs_scores(s) for s in specs)
    cand_pred = cand_model.predict(holdout.features, want_scores=want_scores)
    base_pred = (
        base_model.predict(holdout.features, want_scores=want_scores) if base_model is not None else None
    )

    checks: list[Check] = []
    if opts.data_checks:
        checks.append(data.schema_check(holdout, cand_model.signature, role="candidate"))
        checks.append(data.missing_values_check(holdout))
    notes = [baseline_note] if baseline_note else []
    if base_model is not None and base_model.ref.uri == cand_model.ref.uri:
        notes.append("the candidate is the baseline itself: every difference is zero")
    checks += _prediction_checks(cand_pred, base_pred, cand_model, base_model)

    outcomes: list[Any] = []
    problem = None
    robustness = None
    if cand_pred.labels is not None:
        usable_base = base_pred if base_pred is not None and base_pred.labels is not None else None
        problem = build_problem(
            task=task,
            y=holdout.y,
            candidate=cand_pred,
            baseline=usable_base,
            candidate_model=cand_model,
            baseline_model=base_model if usable_base is not None else None,
            positive_label=opts.positive_label,
        )
        if opts.data_checks and task == "classification":
            classes = {"candidate": cand_pred.classes}
            if usable_base is not None:
                classes["baseline"] = usable_base.classes
            checks.append(data.labels_check(problem.y, classes))
        robustness = _start_robustness(opts, holdout, cand_model, workdir)
        try:
            outcomes = policy.evaluate(
                problem, specs, slice_specs, holdout.features, settings, first_model=first_model
            )
        except BaseException:
            if robustness is not None:
                robustness.finish()
            raise
    else:
        checks += [
            Check(
                s.name,
                "skipped",
                message="the candidate could not score the holdout",
                blocking=s.blocking,
                details={
                    "kind": "comparison" if s.comparison else "absolute",
                    "metric": s.metric,
                    "rule": s.rule,
                },
            )
            for s in specs
        ]
        robustness = _start_robustness(opts, holdout, cand_model, workdir)
    checks += [o.check for o in outcomes]
    if robustness is not None:
        checks += robustness.finish()

    return _result(
        ctx,
        settings,
        holdout,
        cand_model,
        base_model,
        first_model,
        notes,
        checks,
        outcomes,
        problem,
        client,
        task,
    )


def _needs_scores(spec: Any) -> bool:
    from mlops_ci import stats

    if spec.custom is not None:
        return spec.custom.input == "scores"
    return stats.get_metric(spec.metric).input == "scores"


def _prediction_checks(cand_pred, base_pred, cand_model, base_model) -> list[Check]:
    checks = []
    if cand_pred.error and cand_pred.labels is None:
        checks.append(
            Check(
                "candidate scores the holdout",
                "failed",
                message=f"the candidate could not score the holdout: {cand_pred.error}",
                details={"kind": "data", "model": cand_model.ref.uri},
            )
        )
    if base_pred is not None and base_pred.error and base_pred.labels is None:
        checks.append(
            Check(
                "baseline scores the holdout",
                "error",
                message=f"the baseline could not score the holdout, so no comparison ran: {base_pred.error}",
                details={"kind": "data", "model": base_model.ref.uri},
            )
        )
    for role, pred in (("candidate", cand_pred), ("baseline", base_pred)):
        if pred is not None and pred.error and pred.labels is not None:
            log.warning("validate: the %s's probabilities are unavailable: %s", role, pred.error)
    return checks


def _start_robustness(opts: Any, holdout: Any, model: Any, workdir: Path):
    if not opts.robustness:
        return None
    from mlops_ci.validation.robustness import RobustnessRun, make_batches

    run = RobustnessRun(
        model.path,
        make_batches(holdout.features, model.signature),
        timeout_s=opts.robustness_timeout,
        workdir=workdir / "robustness",
        blocking=opts.robustness_blocking,
    )
    run.start()
    return run


def _result(
    ctx,
    settings,
    holdout,
    cand_model,
    base_model,
    first_model,
    notes,
    checks,
    outcomes,
    problem,
    client,
    task,
) -> StepResult:
    from mlops_ci.report.junit import write_junit
    from mlops_ci.validation import plots, publish
    from mlops_ci.validation.report import markdown_report

    if ctx.options.record and not cand_model.ref.run_id:
        notes.append("the candidate has no MLflow run or registry version: nothing was logged or tagged")
    blocking_bad = [c for c in checks if c.blocking and c.status in ("failed", "error")]
    passed = not blocking_bad
    cand, base = cand_model.ref, base_model.ref if base_model is not None else None
    summary = _summary(cand, base, holdout, checks, blocking_bad, first_model, notes)
    folder = ctx.out_dir / "validate"
    folder.mkdir(parents=True, exist_ok=True)
    made_plots = (
        plots.all_plots(outcomes, problem, folder) if (ctx.options.plots and problem is not None) else []
    )
    outputs = {
        "candidate-uri": cand.uri,
        "candidate-version": cand.version or "",
        "baseline-uri": base.uri if base else "",
        "baseline-version": (base.version or "") if base else "",
        "first-model": "true" if first_model else "false",
        "holdout-rows": str(holdout.rows),
        "task": task,
        "blocking-failures": str(len(blocking_bad)),
    }
    result = StepResult(
        step="validate",
        status="passed" if passed else "failed",
        summary=summary,
        outputs=outputs,
        checks=checks,
    )
    headline = (
        f"Candidate **{cand.label}** vs {'champion' if base else 'no baseline'}"
        f"{' **' + base.label + '**' if base else ''} on {holdout.rows:,} rows of `{_relative(holdout.path, ctx.project_dir)}` "
        f"(target `{holdout.target}`, {task}, {settings.n_resamples:,} resamples, {settings.method} intervals, seed {settings.seed})."
    )
    report = folder / "report.md"
    report.write_text(
        markdown_report(
            verdict="PASSED" if passed else "BLOCKED",
            headline=headline,
            summary=summary,
            checks=checks,
            notes=notes,
            plots=made_plots,
        ),
        encoding="utf-8",
    )
    junit = write_junit(result, folder / "junit.xml")
    result.artifacts = [str(report), str(junit), *map(str, made_plots)]
    outputs["report"], outputs["junit"] = str(report), str(junit)
    if ctx.options.record:
        if cand.run_id:
            publish.log_to_run(client, ctx.store, cand.run_id, checks, folder)
        if cand.name and cand.version:
            tags = publish.tag_version(client, ctx.store, cand, passed=passed, baseline=base)
            outputs["validation-status"] = tags[publish.STATUS_TAG]
    return result


def _relative(path: Path, base: Path) -> str:
    try:
        return path.resolve().relative_to(base.resolve()).as_posix()
    except ValueError:
        return str(path)


def _summary(cand, base, holdout, checks, blocking_bad, first_model, notes) -> str:
    statistical = [c for c in checks if c.details.get("kind") in ("comparison", "absolute")]
    if blocking_bad:
        names = ", ".join(c.name for c in blocking_bad[:3]) + (" ..." if len(blocking_bad) > 3 else "")
        verdict = f"blocked by {len(blocking_bad)} check(s): {names}"
    else:
        ran = [c for c in statistical if c.status != "skipped"]
        verdict = f"{len(ran)} statistical check(s) passed" if ran else "nothing failed"
    if first_model or base is None:
        absolute = [c for c in statistical if c.details.get("kind") == "absolute"]
        who = "first model, no champion yet" if first_model else "no baseline"
        extra = (
            "" if absolute else "; no absolute check is configured (add a floor check to gate a first model)"
        )
        return f"{cand.label} on {holdout.rows:,} rows ({who}): {verdict}{extra}"
    lead = next((c for c in statistical if c.details.get("kind") == "comparison" and c.interval), None)
    detail = ""
    if lead is not None:
        detail = (
            f"; {lead.details.get('metric')} {lead.details.get('difference'):+.4g} "
            f"[{lead.interval[0]:+.4g}, {lead.interval[1]:+.4g}]"
        )
    return f"{cand.label} vs champion {base.label} on {holdout.rows:,} rows: {verdict}{detail}"


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
