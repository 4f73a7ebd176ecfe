"""Running the declared checks: on the whole holdout and on every slice segment, with
Holm–Bonferroni across the blocking no-regression checks, and the result as ``Finding``s.

Multiplicity: a change is blocked when *any* blocking no-regression check finds evidence of
harm, so without a correction k such checks would block an equal model up to k times
alpha. Holm's step-down keeps the family-wise rate at ``alpha`` (the ``alpha`` setting). The
burden-of-proof rules (non-inferiority, superiority, floor, ceiling) need no correction:
the change passes only if *every* one of them passes, an intersection–union test whose
error of passing a bad model is at most each check's own alpha (Berger 1982); correcting
them would only block more good models.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from mlops_ci.errors import SettingError
from mlops_ci.validation.checks import CheckSpec, SliceSpec
from mlops_ci.validation.findings import Finding
from mlops_ci.validation.problem import Problem
from mlops_ci.validation.slices import Segment, segments

log = logging.getLogger(__name__)

TESTS_BY_METRIC = {"accuracy": "mcnemar", "roc-auc": "delong"}
LOSS_METRICS = ("mae", "mse", "log-loss", "brier", "mape")


@dataclass(frozen=True)
class Settings:
    alpha: float = 0.05
    power: float | None = None
    n_resamples: int = 2000
    method: str = "bca"
    seed: int = 42
    min_slice_rows: int = 200


@dataclass
class Outcome:
    """One check on the whole holdout or on one segment."""

    spec: CheckSpec
    segment: Segment | None
    blocking: bool
    result: Any = None  # stats.RuleResult, None when skipped before any statistics
    skip_reason: str = ""
    alpha_adjusted: float | None = None
    baseline_value: float | None = None  # absolute checks: the champion's metric, for context
    tests: dict[str, Any] = dataclasses.field(default_factory=dict)
    finding: Finding | None = None

    @property
    def name(self) -> str:
        return self.spec.name if self.segment is None else f"{self.spec.name} [{self.segment.name}]"

    @property
    def kind(self) -> str:
        if self.segment is not None:
            return "slice"
        return "comparison" if self.spec.comparison else "absolute"


class Progress:
    """Logs resampling progress, at most every few seconds and only when it takes a while."""

    def __init__(
        self, groups: int, *, every_s: float = 5.0, logger: Callable[[str], None] | None = None
    ) -> None:
        self.groups = max(groups, 1)
        self.group = 0
        self.started = time.monotonic()
        self.last = self.started
        self.every_s = every_s
        self.logger = logger or log.info

    def next_group(self) -> None:
        self.group += 1

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if now - self.last < self.every_s:
            return
        self.last = now
        share = (self.group + done / max(total, 1)) / self.groups
        self.logger(
            f"validate: resampling {share:.0%} ({self.group + 1} of {self.groups} bootstraps, {now - self.started:.0f} s)"
        )


def metric_for(spec: CheckSpec, problem: Problem, index: int) -> Any:
    from mlops_ci import stats

    metric = spec.custom if spec.custom is not None else stats.get_metric(spec.metric)
    where = f"checks[{index}].metric"
    if metric.task != problem.task:
        raise SettingError(
            f"{where}: {metric.name} is a {metric.task} metric but the task is {problem.task}", setting=where
        )
    if spec.custom is not None:
        return metric
    if metric.binary_only and not problem.binary and problem.pos_label is None:
        raise SettingError(
            f"{where}: {metric.name} needs two classes (the holdout has {len(problem.classes or [])}); use "
            f"{metric.name}-macro, or give a positive label for one class against the rest",
            setting=where,
        )
    pos = problem.pos_label if problem.task == "classification" else None
    labels = problem.classes if (metric.input == "scores" and not problem.binary) else None
    return stats.get_metric(metric.name, pos_label=pos, labels=labels)


def evaluate(
    problem: Problem,
    specs: Sequence[CheckSpec],
    slice_specs: Sequence[SliceSpec],
    frame: Any,
    settings: Settings,
    *,
    first_model: bool,
) -> list[Outcome]:
    metrics = {spec.name: metric_for(spec, problem, i) for i, spec in enumerate(specs)}
    groups: list[tuple[Segment | None, list[CheckSpec], bool, np.random.SeedSequence]] = [
        (None, list(specs), True, np.random.SeedSequence(settings.seed))
    ]
    outcomes: list[Outcome] = []
    for i, slice_spec in enumerate(slice_specs):
        chosen = [s for s in specs if not slice_spec.checks or s.name in slice_spec.checks]
        minimum = slice_spec.min_rows or settings.min_slice_rows
        for j, segment in enumerate(segments(frame, slice_spec, where=f"slices[{i}]")):
            if segment.rows < minimum:
                for spec in chosen:
                    outcomes.append(
                        Outcome(
                            spec,
                            segment,
                            slice_spec.blocking and spec.blocking,
                            skip_reason=(
                                f"not enough data: {segment.rows} rows in {segment.name} (at least {minimum} needed; "
                                "see the min-slice-rows setting)"
                            ),
                        )
                    )
                continue
            seed = np.random.SeedSequence(settings.seed, spawn_key=(i + 1, j))
            groups.append((segment, chosen, slice_spec.blocking, seed))

    progress = Progress(len(groups))
    for segment, chosen, blocking, seed in groups:
        outcomes.extend(
            _evaluate_group(
                problem, chosen, metrics, segment, blocking, seed, settings, first_model, progress
            )
        )
        progress.next_group()
    _holm(outcomes, settings)
    for outcome in outcomes:
        if outcome.segment is None and outcome.result is not None and outcome.spec.comparison:
            outcome.tests = supplementary_tests(problem, metrics[outcome.spec.name], settings)
        outcome.finding = to_finding(outcome, settings)
    order = {spec.name: k for k, spec in enumerate(specs)}
    outcomes.sort(key=lambda o: (o.segment is not None, order[o.spec.name]))
    return outcomes


def _missing_inputs(metric: Any, problem: Problem, *, with_baseline: bool) -> str | None:
    if metric.input != "scores":
        return None
    for role, pred in (("candidate", problem.candidate), ("baseline", problem.baseline)):
        if role == "baseline" and not with_baseline:
            continue
        if pred is not None and pred.scores is None:
            return (
                f"the {role} gives no probabilities (only models with a scikit-learn flavor and predict_proba "
                f"do); {metric.name} needs them"
            )
    return None


def _evaluate_group(
    problem: Problem,
    chosen: list[CheckSpec],
    metrics: dict[str, Any],
    segment: Segment | None,
    slice_blocking: bool,
    seed: np.random.SeedSequence,
    settings: Settings,
    first_model: bool,
    progress: Progress,
) -> list[Outcome]:
    from mlops_ci import stats

    mask = None if segment is None else segment.mask
    has_baseline = problem.baseline is not None
    outcomes: list[Outcome] = []
    runnable: list[CheckSpec] = []
    for spec in chosen:
        blocking = spec.blocking and (segment is None or slice_blocking)
        outcome = Outcome(spec, segment, blocking)
        reason = _missing_inputs(metrics[spec.name], problem, with_baseline=spec.comparison)
        if spec.comparison and not has_baseline:
            outcome.skip_reason = (
                "first model: there is no champion to compare with, so only absolute checks ran"
                if first_model
                else "the baseline could not score the holdout; no comparison is possible"
            )
        elif reason:
            outcome.skip_reason = reason
        else:
            runnable.append(spec)
        outcomes.append(outcome)
    if not runnable:
        return outcomes

    needed = {spec.name: metrics[spec.name] for spec in runnable}
    unique = {m.name: m for m in needed.values()}
    models = {"candidate": problem.inputs(problem.candidate, mask)}
    if has_baseline and any(spec.comparison for spec in runnable):
        models["baseline"] = problem.inputs(problem.baseline, mask)
    y = problem.y if mask is None else problem.y[mask]
    try:
        boot = stats.bootstrap_models(
            y,
            models,
            list(unique.values()),
            n_resamples=settings.n_resamples,
            random_state=seed,
            progress=progress,
        )
    except ValueError as exc:
        if "custom metric" in str(exc):
            raise SettingError(f"checks: {exc}", setting="checks") from None
        raise
    for outcome in outcomes:
        spec = outcome.spec
        if spec not in runnable:
            continue
        alpha = settings.alpha if spec.alpha is None else spec.alpha
        power = settings.power if settings.power is not None else 1 - alpha
        name = metrics[spec.name].name
        if spec.comparison:
            estimate = boot.compare(name, confidence_level=1 - alpha, method=settings.method)
            outcome.result = stats.decide(
                estimate, rule=spec.rule, margin=spec.margin, alpha=alpha, power=power
            )
        else:
            estimate = boot.estimate(name, confidence_level=1 - alpha, method=settings.method)
            outcome.result = stats.decide(
                estimate, rule=spec.rule, threshold=spec.threshold, alpha=alpha, power=power
            )
            if "baseline" in models:
                outcome.baseline_value = _finite(boot.estimate(name, "baseline").statistic)
    return outcomes


def _holm(outcomes: list[Outcome], settings: Settings) -> None:
    """Holm–Bonferroni across the blocking no-regression checks that ran."""
    from mlops_ci import stats

    family = [
        o
        for o in outcomes
        if o.blocking and o.spec.evidence_of_harm and o.result is not None and o.result.decision != "skip"
    ]
    if not family:
        return
    holm = stats.holm_bonferroni([o.result.pvalue for o in family], alpha=settings.alpha)
    power = settings.power if settings.power is not None else 1 - settings.alpha
    stopped = False
    for index in np.argsort(holm.pvalues, kind="stable"):
        outcome = family[index]
        level = holm.alphas[index]
        result = stats.decide(
            outcome.result.bootstrap,
            rule=outcome.spec.rule,
            margin=outcome.spec.margin,
            alpha=level,
            power=power,
        )
        if stopped and result.decision == "fail":
            result = dataclasses.replace(
                result,
                decision="pass",
                reason=result.reason
                + "; not blocked: Holm's step-down stopped at a check with a smaller p-value",
            )
        stopped = stopped or result.decision != "fail"
        outcome.result = result
        outcome.alpha_adjusted = level


def supplementary_tests(problem: Problem, metric: Any, settings: Settings) -> dict[str, Any]:
    """Classical paired tests next to the bootstrap: McNemar for accuracy, DeLong for a
    binary ROC AUC, paired t and Wilcoxon on per-row losses."""
    from mlops_ci import stats

    base = problem.baseline
    if base is None:
        return {}
    out: dict[str, Any] = {}
    try:
        if metric.name == "accuracy":
            out["mcnemar"] = _test_dict(
                stats.mcnemar(problem.y, problem.candidate.labels, base.labels, alpha=settings.alpha)
            )
        elif (
            metric.name == "roc-auc"
            and problem.binary
            and problem.candidate.scores is not None
            and base.scores is not None
        ):
            c, b = problem.inputs(problem.candidate)["scores"], problem.inputs(base)["scores"]
            out["delong"] = _test_dict(
                stats.delong(problem.y, c, b, pos_label=problem.pos_label, alpha=settings.alpha)
            )
        elif metric.name in LOSS_METRICS:
            kind = "values" if problem.task == "regression" else "scores"
            c_in, b_in = problem.inputs(problem.candidate).get(kind), problem.inputs(base).get(kind)
            if c_in is not None and b_in is not None:
                lc = stats.per_row_losses(problem.y, c_in, metric)
                lb = stats.per_row_losses(problem.y, b_in, metric)
                out["paired_t"] = _test_dict(stats.paired_t(lc, lb, alpha=settings.alpha))
                out["wilcoxon"] = _test_dict(stats.wilcoxon_signed_rank(lc, lb, alpha=settings.alpha))
    except ValueError as exc:
        out["error"] = str(exc)
    return out


def _finite(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if np.isfinite(number) else None


def _test_dict(result: Any) -> dict[str, Any]:
    return {
        "statistic": _finite(result.statistic),
        "pvalue": _finite(result.pvalue),
        "estimate": _finite(result.estimate),
        "interval": [_finite(result.confidence_interval.low), _finite(result.confidence_interval.high)],
        "decision": result.decision,
        "reason": result.reason,
    }


def to_finding(outcome: Outcome, settings: Settings) -> Finding:
    spec = outcome.spec
    details: dict[str, Any] = {
        "kind": outcome.kind,
        "metric": spec.metric,
        "rule": spec.rule,
        "blocking": outcome.blocking,
    }
    if spec.comparison:
        details["margin"] = spec.margin
    else:
        details["threshold"] = spec.threshold
    if outcome.segment is not None:
        details["slice"] = outcome.segment.name
        details["slice_column"] = outcome.segment.column
        details["slice_segment"] = outcome.segment.label
        details["n"] = outcome.segment.rows
    result = outcome.result
    if result is None:
        return Finding(
            outcome.name,
            "skipped",
            threshold=spec.margin if spec.comparison else spec.threshold,
            message=outcome.skip_reason,
            blocking=outcome.blocking,
            details=details,
        )
    alpha = result.alpha
    details.update(
        {
            "alpha": settings.alpha if outcome.alpha_adjusted is not None else alpha,
            "alpha_adjusted": outcome.alpha_adjusted if outcome.alpha_adjusted is not None else alpha,
            "higher_is_better": result.higher_is_better,
            "n": result.n,
            "mde": _finite(result.mde),
            "power": result.power,
            "standard_error": _finite(result.standard_error),
            "interval_method": result.bootstrap.method,
            "n_resamples": result.bootstrap.n_resamples,
        }
    )
    if spec.comparison:
        details["difference"] = _finite(result.statistic)
        if result.n_required is not None:
            details["n_required"] = _finite(result.n_required)
    if result.warnings:
        details["warnings"] = list(result.warnings)
    if outcome.tests:
        details["tests"] = outcome.tests
    if outcome.alpha_adjusted is not None:
        details["multiple_testing"] = "holm"
    if result.decision == "skip":
        status = "skipped"
    elif result.decision == "pass":
        status = "passed"
    else:
        status = "failed" if outcome.blocking else "warning"
    value = _finite(result.candidate)
    baseline = _finite(result.baseline) if result.baseline is not None else outcome.baseline_value
    low, high = result.confidence_interval
    interval = None if status == "skipped" else (_finite(low), _finite(high))
    return Finding(
        outcome.name,
        status,
        value=value,
        baseline=baseline,
        interval=interval,
        p_value=_finite(result.pvalue),
        threshold=spec.margin if spec.comparison else spec.threshold,
        message=str(result.reason),
        blocking=outcome.blocking,
        details=details,
    )
