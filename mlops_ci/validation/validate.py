"""May the candidate replace the champion? One call: ``validate(request)`` resolves and
loads both models, scores them on the holdout, runs the statistical, data and robustness
checks, writes the reports and plots, records the verdict in MLflow, and returns a
``ValidationOutcome``."""

from __future__ import annotations

import logging
import tempfile
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops_ci.errors import SettingError
from mlops_ci.result import now_iso
from mlops_ci.tracking.provenance import ProvenanceKey
from mlops_ci.tracking.store import TrackingStore
from mlops_ci.validation.findings import Finding

if TYPE_CHECKING:
    # numpy and pandas come with these; `mlops-ci --help` does not need them.
    from mlops_ci.validation.models import ModelRef
    from mlops_ci.validation.policy import Settings

log = logging.getLogger(__name__)

DEFAULT_PRIMARY = {"classification": "accuracy", "regression": "rmse"}


@dataclass(frozen=True)
class ValidationRequest:
    """The candidate, what to compare it with, the holdout, and how to decide.

    ``baseline`` is a model URI, or None for the champion of ``model_name`` (or of the
    candidate's registered model); ``compare=False`` runs the absolute checks only.
    """

    candidate: str
    holdout: Path | None
    target: str | None
    settings: Settings
    store: TrackingStore
    project_dir: Path
    # Where report.md, junit.xml and the plots go.
    folder: Path
    baseline: str | None = None
    compare: bool = True
    model_name: str | None = None
    checks: Sequence[Any] = ()
    slices: Sequence[Any] = ()
    primary_metric: str | None = None
    task: str = "auto"
    positive_label: str | None = None
    data_checks: bool = True
    robustness: bool = True
    robustness_timeout_s: float = 60.0
    robustness_blocking: bool = True
    plots: bool = True
    # Log metrics and reports to the candidate's run and tag its registry version.
    record: bool = True
    # A trusted job's provenance key: the validation record is signed with it (SECURITY.md).
    signing_key: ProvenanceKey | None = None


@dataclass(frozen=True)
class ValidationOutcome:
    candidate: ModelRef
    baseline: ModelRef | None
    # True when there was no champion to compare with: only the absolute checks ran.
    first_model: bool
    task: str
    holdout_rows: int
    findings: tuple[Finding, ...]
    summary: str
    report: Path
    junit: Path
    plots: tuple[Path, ...] = ()
    # "passed" or "failed" as tagged on the candidate's registry version; None when not tagged.
    recorded_status: str | None = None
    notes: tuple[str, ...] = ()

    @property
    def blocking_failures(self) -> list[Finding]:
        return _blocking_failures(self.findings)

    @property
    def passed(self) -> bool:
        return not self.blocking_failures


def validate(request: ValidationRequest) -> ValidationOutcome:
    from mlops_ci.tracking.store import connect
    from mlops_ci.validation import data, models

    holdout = data.load_holdout(request.holdout, request.target)
    store = request.store
    client = connect(store)
    candidate = models.resolve(client, store, request.candidate, role="candidate")
    baseline, first_model, baseline_note = _resolve_baseline(request, client, candidate)
    with tempfile.TemporaryDirectory(prefix="mlops-ci-validate-") as tmp, warnings.catch_warnings():
        if not log.isEnabledFor(logging.DEBUG):
            # Libraries warn about versions and feature names while loading and scoring;
            # the checks report what matters. --debug shows them.
            warnings.simplefilter("ignore")
        workdir = Path(tmp)
        cand_model = models.load(candidate, workdir, store)
        base_model = models.load(baseline, workdir, store) if baseline is not None else None
        return _validate(
            request, holdout, cand_model, base_model, first_model, baseline_note, client, workdir
        )


def _resolve_baseline(request: ValidationRequest, client: Any, candidate: ModelRef) -> tuple[Any, bool, str]:
    from mlops_ci.validation import models

    if not request.compare:
        return None, False, "no baseline was asked for: only absolute checks ran"
    if request.baseline:
        return models.resolve(client, request.store, request.baseline, role="baseline"), False, ""
    name = request.model_name or candidate.name
    champion = models.find_alias(client, request.store, name, "champion", role="baseline") if name else None
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
    request: ValidationRequest, holdout, cand_model, base_model, first_model, baseline_note, client, workdir
) -> ValidationOutcome:
    from mlops_ci.validation import data, policy
    from mlops_ci.validation.checks import parse_checks, parse_slices
    from mlops_ci.validation.problem import build_problem, infer_task

    for model in (cand_model, base_model):
        if model is None:
            continue
        absent = data.missing_columns(holdout, model.signature)
        if absent:
            raise SettingError(
                f"holdout {holdout.path} lacks column(s) the {model.ref.role} needs: {', '.join(absent[:10])}; "
                "update the holdout",
                setting="holdout",
            )
    task = infer_task(request.task, holdout.y, cand_model, None)
    primary = request.primary_metric or DEFAULT_PRIMARY[task]
    specs = parse_checks(request.checks, primary_metric=primary, project_dir=request.project_dir, task=task)
    slice_specs = parse_slices(request.slices, specs)
    want_scores = any(_needs_scores(s) for s in specs)
    cand_pred = cand_model.predict(holdout.features, want_scores=want_scores)
    base_pred = (
        base_model.predict(holdout.features, want_scores=want_scores) if base_model is not None else None
    )

    findings: list[Finding] = []
    if request.data_checks:
        findings.append(data.schema_check(holdout, cand_model.signature, role="candidate"))
        findings.append(data.missing_values_check(holdout))
    notes = [baseline_note] if baseline_note else []
    if base_model is not None and base_model.ref.uri == cand_model.ref.uri:
        notes.append("the candidate is the baseline itself: every difference is zero")
    findings += _prediction_findings(cand_pred, base_pred, cand_model, base_model)

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
            positive_label=request.positive_label,
        )
        if request.data_checks and task == "classification":
            classes = {"candidate": cand_pred.classes}
            if usable_base is not None:
                classes["baseline"] = usable_base.classes
            findings.append(data.labels_check(problem.y, classes))
        robustness = _start_robustness(request, holdout, cand_model, workdir)
        try:
            outcomes = policy.evaluate(
                problem, specs, slice_specs, holdout.features, request.settings, first_model=first_model
            )
        except BaseException:
            if robustness is not None:
                robustness.finish()
            raise
    else:
        findings += [
            Finding(
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
        robustness = _start_robustness(request, holdout, cand_model, workdir)
    findings += [o.finding for o in outcomes]
    if robustness is not None:
        findings += robustness.finish()
    return _report_and_record(
        request,
        holdout,
        cand_model,
        base_model,
        first_model,
        notes,
        findings,
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


def _prediction_findings(cand_pred, base_pred, cand_model, base_model) -> list[Finding]:
    findings = []
    if cand_pred.error and cand_pred.labels is None:
        findings.append(
            Finding(
                "candidate scores the holdout",
                "failed",
                message=f"the candidate could not score the holdout: {cand_pred.error}",
                details={"kind": "data", "model": cand_model.ref.uri},
            )
        )
    if base_pred is not None and base_pred.error and base_pred.labels is None:
        findings.append(
            Finding(
                "baseline scores the holdout",
                "error",
                message=f"the baseline could not score the holdout, so no comparison ran: {base_pred.error}",
                details={"kind": "data", "model": base_model.ref.uri},
            )
        )
    for role, pred in (("candidate", cand_pred), ("baseline", base_pred)):
        if pred is not None and pred.error and pred.labels is not None:
            log.warning("validate: the %s's probabilities are unavailable: %s", role, pred.error)
    return findings


def _start_robustness(request: ValidationRequest, holdout: Any, model: Any, workdir: Path):
    if not request.robustness:
        return None
    from mlops_ci.validation.robustness import RobustnessRun, make_batches

    run = RobustnessRun(
        model.path,
        make_batches(holdout.features, model.signature),
        timeout_s=request.robustness_timeout_s,
        workdir=workdir / "robustness",
        blocking=request.robustness_blocking,
    )
    run.start()
    return run


def _report_and_record(
    request: ValidationRequest,
    holdout,
    cand_model,
    base_model,
    first_model,
    notes,
    findings,
    outcomes,
    problem,
    client,
    task,
) -> ValidationOutcome:
    from mlops_ci.report.junit import write_junit_suite
    from mlops_ci.validation import plots, publish
    from mlops_ci.validation.report import markdown_report

    if request.record and not cand_model.ref.run_id:
        notes.append("the candidate has no MLflow run or registry version: nothing was logged or tagged")
    blocking_bad = _blocking_failures(findings)
    passed = not blocking_bad
    cand, base = cand_model.ref, base_model.ref if base_model is not None else None
    summary = _summary(cand, base, holdout, findings, blocking_bad, first_model)
    folder = request.folder
    folder.mkdir(parents=True, exist_ok=True)
    made_plots = plots.all_plots(outcomes, problem, folder) if (request.plots and problem is not None) else []
    settings = request.settings
    headline = (
        f"Candidate **{cand.label}** vs {'champion' if base else 'no baseline'}"
        f"{' **' + base.label + '**' if base else ''} on {holdout.rows:,} rows of `{_relative(holdout.path, request.project_dir)}` "
        f"(target `{holdout.target}`, {task}, {settings.n_resamples:,} resamples, {settings.method} intervals, seed {settings.seed})."
    )
    report = folder / "report.md"
    report.write_text(
        markdown_report(
            verdict="PASSED" if passed else "BLOCKED",
            headline=headline,
            summary=summary,
            checks=findings,
            notes=notes,
            plots=made_plots,
        ),
        encoding="utf-8",
    )
    junit = write_junit_suite("validate", findings, folder / "junit.xml", started_at=now_iso())
    recorded = None
    if request.record:
        if cand.run_id:
            publish.log_to_run(client, request.store, cand.run_id, findings, folder)
        if cand.name and cand.version:
            tags = publish.tag_version(
                client, request.store, cand, passed=passed, baseline=base, signing_key=request.signing_key
            )
            recorded = tags[publish.STATUS_TAG]
    return ValidationOutcome(
        candidate=cand,
        baseline=base,
        first_model=first_model,
        task=task,
        holdout_rows=holdout.rows,
        findings=tuple(findings),
        summary=summary,
        report=report,
        junit=junit,
        plots=tuple(made_plots),
        recorded_status=recorded,
        notes=tuple(notes),
    )


def _blocking_failures(findings: Sequence[Finding]) -> list[Finding]:
    return [f for f in findings if f.blocking and f.status in ("failed", "error")]


def _relative(path: Path, base: Path) -> str:
    try:
        return path.resolve().relative_to(base.resolve()).as_posix()
    except ValueError:
        return str(path)


def _summary(cand, base, holdout, findings, blocking_bad, first_model) -> str:
    statistical = [f for f in findings if f.details.get("kind") in ("comparison", "absolute")]
    if blocking_bad:
        names = ", ".join(f.name for f in blocking_bad[:3]) + (" ..." if len(blocking_bad) > 3 else "")
        verdict = f"blocked by {len(blocking_bad)} check(s): {names}"
    else:
        ran = [f for f in statistical if f.status != "skipped"]
        verdict = f"{len(ran)} statistical check(s) passed" if ran else "nothing failed"
    if first_model or base is None:
        absolute = [f for f in statistical if f.details.get("kind") == "absolute"]
        who = "first model, no champion yet" if first_model else "no baseline"
        extra = (
            "" if absolute else "; no absolute check is configured (add a floor check to gate a first model)"
        )
        return f"{cand.label} on {holdout.rows:,} rows ({who}): {verdict}{extra}"
    lead = next((f for f in statistical if f.details.get("kind") == "comparison" and f.interval), None)
    detail = ""
    if lead is not None:
        detail = (
            f"; {lead.details.get('metric')} {lead.details.get('difference'):+.4g} "
            f"[{lead.interval[0]:+.4g}, {lead.interval[1]:+.4g}]"
        )
    return f"{cand.label} vs champion {base.label} on {holdout.rows:,} rows: {verdict}{detail}"
