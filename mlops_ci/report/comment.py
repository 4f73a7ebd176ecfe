"""The PR/MR comment: the gate's decision rendered with the jinja2 templates in
``mlops_ci/report/templates``.

Layout (GitHub- and GitLab-flavoured markdown alike): the hidden marker, a one-line
verdict, the reasons, the challenger-vs-champion table, one line each for the package and
the profile, the steps; everything longer sits in ``<details>`` sections. A body longer
than the platform accepts is rendered again without the details and with a pointer to the
full report.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from mlops_ci import __version__
from mlops_ci.platforms import comments
from mlops_ci.report import format as fmt
from mlops_ci.report.chart import IntervalRow, forest_plot
from mlops_ci.report.outputs import Package, Profile, Register, Train, Validate
from mlops_ci.report.policy import CheckDecision, Decision, StepDecision, check_title
from mlops_ci.report.results import first_recorded
from mlops_ci.result import StepResult

VERDICT_WORDS = {"pass": "pass", "warn": "pass with warnings", "block": "blocked"}
OUTCOME_WORDS = {"pass": "pass", "warn": "warn", "block": "block", "skipped": "skipped", "ignored": "ignored"}
COMPARISON_KINDS = ("comparison",)
SPECIAL_STEPS = (Validate.STEP, Package.STEP, Profile.STEP)
# Shown in full in the body; longer lists are cut with a pointer to the details.
MAX_FINDINGS = 15
UNTRUSTED_NOTE = (
    "⚠️ **Not verified: produced by the fork's run.** A pull request's own workflow run can "
    "write any result, so these are shown, not believed. The required check stays pending "
    "until a maintainer approves the trusted run, which recomputes them."
)


@dataclass(frozen=True)
class CommentOptions:
    key: str = "default"
    title: str = "mlops-ci"
    # Recorded in the hidden meta line: the pipeline that wrote the comment, and its commit.
    pipeline: int | None = None
    commit: str | None = None
    # Links: the current pipeline, and where the full report is (for a shortened body).
    pipeline_url: str | None = None
    report_url: str | None = None
    max_chars: int | None = None
    platform_label: str = "the platform"
    # The results come from a run of untrusted code (a fork's pull request): labelled so.
    untrusted: bool = False


@dataclass(frozen=True)
class RenderedComment:
    body: str
    full: str

    @property
    def shortened(self) -> bool:
        return self.body != self.full


def render_comment(decision: Decision, options: CommentOptions) -> RenderedComment:
    view = build_view(decision, options)
    full = _render(view, compact=False, pointer=None)
    if options.max_chars is None or len(full) <= options.max_chars:
        return RenderedComment(full, full)
    pointer = _pointer(len(full), options)
    compact = _render(view, compact=True, pointer=pointer)
    if len(compact) > options.max_chars:
        compact = _cut(compact, options.max_chars, pointer)
    return RenderedComment(compact, full)


def _render(view: dict[str, Any], *, compact: bool, pointer: str | None) -> str:
    text = _template().render(**view, compact=compact, pointer=pointer)
    # The templates stay readable with generous blank lines; one is all markdown needs.
    return re.sub(r"\n{3,}", "\n\n", text)


def _pointer(length: int, options: CommentOptions) -> str:
    where = options.report_url or options.pipeline_url
    target = fmt.link("the pipeline", where) if where else "the pipeline"
    return (
        f"The full report ({length:,} characters) is longer than {options.platform_label} accepts in "
        f"a comment ({options.max_chars:,}); details are left out here. Read it in {target}: "
        "the job summary, or the `comment.md` artifact."
    )


def _cut(body: str, limit: int, pointer: str) -> str:
    """Last resort for a compact body still over the limit (thousands of findings): keep
    whole lines up to the limit and end with the pointer."""
    tail = f"\n\n…\n\n> {pointer}\n"
    kept: list[str] = []
    used = len(tail)
    for line in body.splitlines(keepends=True):
        if used + len(line) > limit:
            break
        kept.append(line)
        used += len(line)
    return "".join(kept).rstrip("\n") + tail


@lru_cache(maxsize=1)
def _template():
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("mlops_ci.report", "templates"),
        undefined=jinja2.StrictUndefined,
        autoescape=False,  # markdown; untrusted text goes through fmt.text
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    return env.get_template("comment.md.j2")


# --- the view: everything the template shows, formatted ------------------------------------


def build_view(decision: Decision, options: CommentOptions) -> dict[str, Any]:
    steps = {step.step: step for step in decision.steps}
    results = {step.step: step.result for step in decision.steps if step.result is not None}
    model = _model(results)
    view: dict[str, Any] = {
        "marker": comments.marker(options.key),
        "meta": comments.meta_line(pipeline=options.pipeline, commit=options.commit),
        "headline": _headline(decision, options, model),
        "untrusted": UNTRUSTED_NOTE if options.untrusted else None,
        "byline": _byline(decision, options, results),
        "blocking": [_finding(f) for f in decision.blocking],
        "warnings": [_finding(f) for f in decision.warnings],
        "max_findings": MAX_FINDINGS,
        "notes": [],
        "validate": None,
        "package": None,
        "profile": None,
        "steps": [_step_row(step) for step in decision.steps],
        "others": [],
        "policy": fmt.text(decision.policy.describe()),
        "version": __version__,
    }
    if model.get("first"):
        view["notes"].append(
            f"First model: {model['label']} has no champion to compare against, so only the absolute "
            "checks ran. It becomes the champion when it is promoted."
        )
    if Validate.STEP in steps and steps[Validate.STEP].result is not None:
        view["validate"] = _validate_view(steps[Validate.STEP], view["notes"])
    if Package.STEP in steps and steps[Package.STEP].result is not None:
        view["package"] = _package_view(steps[Package.STEP])
    if Profile.STEP in steps and steps[Profile.STEP].result is not None:
        view["profile"] = _profile_view(steps[Profile.STEP])
    for step in decision.steps:
        if step.result is not None and step.step not in SPECIAL_STEPS:
            view["others"].append(_generic_view(step))
    return view


def _model(results: dict[str, StepResult]) -> dict[str, Any]:
    """Which model this is about: name, candidate and champion versions, first model?"""
    register = results.get(Register.STEP)
    validate = results.get(Validate.STEP)
    name = version = champion = None
    if register is not None:
        name = register.outputs.get(Register.MODEL_NAME)
        version = register.outputs.get(Register.MODEL_VERSION)
    first = False
    if validate is not None:
        out = validate.outputs
        version = out.get(Validate.CANDIDATE_VERSION) or version
        champion = out.get(Validate.BASELINE_VERSION) or None
        first = out.get(Validate.FIRST_MODEL) == "true"
        if not name:
            match = re.match(r"^models:/([^/@]+)", out.get(Validate.CANDIDATE_URI, ""))
            name = match.group(1) if match else None
    label = None
    if name and version:
        label = f"{fmt.code(name)} v{fmt.text(version)}"
    elif name:
        label = fmt.code(name)
    return {
        "label": label,
        "champion": fmt.text(champion) if champion else None,
        "first": first,
        "validated": validate is not None,
    }


def _headline(decision: Decision, options: CommentOptions, model: dict[str, Any]) -> str:
    # Results of an untrusted run get no verdict icon: a green tick would read as verified.
    icon = "❔" if options.untrusted else fmt.ICONS[decision.verdict]
    words = VERDICT_WORDS[decision.verdict] + (" (unverified)" if options.untrusted else "")
    phrase = ""
    label = model["label"]
    if label and model["validated"]:
        if model["first"]:
            phrase = f"{label} is the first model (no champion yet)"
        elif model["champion"]:
            verb = "must not replace" if decision.verdict == "block" else "may replace"
            phrase = f"{label} {verb} champion v{model['champion']}"
        else:
            phrase = label
    elif label:
        phrase = label
    title = fmt.text(options.title, limit=80)
    return f"### {icon} {title}: {words}" + (f" — {phrase}" if phrase else "")


def _byline(decision: Decision, options: CommentOptions, results: dict[str, StepResult]) -> str:
    counts = decision.counts
    parts = []
    if decision.blocking:
        parts.append(f"**{_plural(len(decision.blocking), 'blocking failure')}**")
    if decision.warnings:
        parts.append(_plural(len(decision.warnings), "warning"))
    if sum(counts.values()):
        parts.append(f"{_plural(counts['pass'], 'check')} passed")
    commit = options.commit or first_recorded(results.values(), "commit")
    if commit:
        parts.append(f"commit `{fmt.short_sha(commit)}`")
    pipeline = options.pipeline_url or first_recorded(results.values(), "pipeline_url")
    if pipeline:
        parts.append(fmt.link("pipeline", pipeline))
    train = results.get(Train.STEP)
    if train is not None and train.outputs.get(Train.RUN_URL):
        parts.append(fmt.link("MLflow run", train.outputs[Train.RUN_URL]))
    register = results.get(Register.STEP)
    if register is not None and register.outputs.get(Register.MODEL_VERSION_URL):
        parts.append(fmt.link("model version", register.outputs[Register.MODEL_VERSION_URL]))
    return " · ".join(parts)


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def _finding(finding) -> str:
    if finding.check is None:
        return f"**{fmt.text(finding.step)}**: {fmt.text(finding.text)}"
    decision = finding.check
    check = decision.check
    name = fmt.text(check_title(check))
    numbers = _numbers_phrase(check)
    message = fmt.text(check.message or decision.reason)
    policy = f" — {fmt.text(decision.policy_note)}" if decision.policy_note else ""
    return f"**{fmt.text(finding.step)} · {name}**: {message}" + (f" ({numbers})" if numbers else "") + policy


def _numbers_phrase(check) -> str:
    if _kind(check) == "latency" and _ratio(check) is not None:
        return _latency_phrase(check)
    parts = []
    if check.baseline is not None and check.value is not None:
        parts.append(f"challenger {fmt.num(check.value)} vs champion {fmt.num(check.baseline)}")
    elif check.value is not None:
        parts.append(f"value {fmt.num(check.value)}")
    difference = _difference(check)
    if difference is not None and check.interval:
        parts.append(f"difference {fmt.signed(difference)} {fmt.interval(check.interval)}")
    elif difference is not None:
        parts.append(f"difference {fmt.signed(difference)}")
    elif check.interval:
        parts.append(f"interval {fmt.interval(check.interval, sign=False)}")
    if check.p_value is not None:
        parts.append(f"p {fmt.p_value(check.p_value)}")
    return ", ".join(parts)


def _ratio(check) -> float | None:
    """A latency check's ratio challenger / champion (of p95), as the step recorded it."""
    value = check.details.get("ratio")
    return float(value) if isinstance(value, (int, float)) else None


def _ratio_text(check) -> str:
    ratio = _ratio(check)
    if ratio is None:
        return fmt.interval(check.interval, sign=False) or fmt.DASH
    text = f"×{ratio:.2f}"
    if check.interval and None not in check.interval:
        text += f" [{check.interval[0]:.2f}, {check.interval[1]:.2f}]"
    return text


def _latency_phrase(check) -> str:
    metric = str(check.details.get("metric") or "latency").replace("-ms", "")
    parts = []
    if check.value is not None and check.baseline is not None:
        parts.append(f"{metric} {fmt.num(check.value)} ms vs champion {fmt.num(check.baseline)} ms")
    parts.append(f"ratio {_ratio_text(check)}")
    if check.p_value is not None:
        parts.append(f"p {fmt.p_value(check.p_value)}")
    return ", ".join(parts)


def _difference(check) -> float | None:
    """The difference challenger - champion: as the step recorded it, else computed for
    comparisons (a latency check's interval may be on a ratio, so nothing is guessed there)."""
    value = check.details.get("difference")
    if isinstance(value, (int, float)):
        return float(value)
    if _kind(check) in ("comparison", "slice") and check.value is not None and check.baseline is not None:
        return float(check.value) - float(check.baseline)
    return None


def _decision_cell(decision: CheckDecision) -> str:
    return f"{fmt.ICONS[decision.outcome]} {OUTCOME_WORDS[decision.outcome]}"


def _step_row(step: StepDecision) -> dict[str, str]:
    result = step.result
    if result is None:
        return {
            "name": fmt.text(step.step),
            "outcome": f"{fmt.ICONS[step.outcome]} did not run",
            "summary": "required by the gate policy",
            "duration": fmt.DASH,
        }
    return {
        "name": fmt.text(step.step),
        "outcome": f"{fmt.ICONS[step.outcome]} {fmt.text(result.status)}",
        "summary": fmt.text(result.summary, limit=200),
        "duration": f"{result.duration_s:.1f} s",
    }


def _kind(check) -> str:
    kind = check.details.get("kind")
    if isinstance(kind, str):
        return kind
    return "comparison" if check.baseline is not None and check.interval else "other"


def _rule_cell(check) -> str:
    rule = check.details.get("rule")
    margin = check.details.get("margin", check.threshold)
    parts = [fmt.text(rule)] if rule else []
    if isinstance(margin, (int, float)) and margin:
        parts.append(f"margin {fmt.plain(margin)}")
    return ", ".join(parts) or fmt.DASH


def _comparison_row(decision: CheckDecision) -> dict[str, str]:
    check = decision.check
    difference = _difference(check)
    diff = fmt.signed(difference) if difference is not None else ""
    if decision.outcome == "block" and diff:
        diff = f"**{diff}**"
    bounds = fmt.interval(check.interval, sign=difference is not None)
    cell = " ".join(part for part in (diff, bounds) if part) or fmt.DASH
    return {
        "name": fmt.text(check.name),
        "baseline": fmt.num(check.baseline),
        "value": fmt.num(check.value),
        "difference": cell,
        "p": fmt.p_value(check.p_value),
        "rule": _rule_cell(check),
        "decision": _decision_cell(decision),
    }


def _latency_row(decision: CheckDecision) -> dict[str, str]:
    """A latency comparison: p95 of champion and challenger in ms, and their ratio with its
    interval (a ratio, not a difference)."""
    check = decision.check
    if _ratio(check) is None:
        return _comparison_row(decision)
    ratio = _ratio_text(check)
    if decision.outcome == "block":
        ratio = f"**{ratio}**"
    threshold = check.threshold
    rule = (
        f"lower bound ≤ ×{fmt.plain(threshold)}" if isinstance(threshold, (int, float)) else _rule_cell(check)
    )
    return {
        "name": fmt.text(check.name),
        "baseline": f"{fmt.num(check.baseline)} ms" if check.baseline is not None else fmt.DASH,
        "value": f"{fmt.num(check.value)} ms" if check.value is not None else fmt.DASH,
        "difference": ratio,
        "p": fmt.p_value(check.p_value),
        "rule": rule,
        "decision": _decision_cell(decision),
    }


def _value_row(decision: CheckDecision) -> dict[str, str]:
    check = decision.check
    return {
        "name": fmt.text(check.name),
        "value": fmt.num(check.value),
        "interval": fmt.interval(check.interval, sign=False) or fmt.DASH,
        "threshold": fmt.plain(check.threshold),
        "decision": _decision_cell(decision),
        "message": fmt.text(check.message, limit=300),
    }


def _plain_row(decision: CheckDecision) -> dict[str, str]:
    return {
        "name": fmt.text(decision.check.name),
        "decision": _decision_cell(decision),
        "message": fmt.text(decision.check.message or decision.reason, limit=300),
    }


def _mde_note(check, rows: str | None) -> str | None:
    """The holdout is too small when its minimum detectable difference exceeds the margin
    (or the check could not pass and the MDE is known)."""
    mde = check.details.get("mde")
    if not isinstance(mde, (int, float)):
        return None
    margin = check.details.get("margin", check.threshold)
    margin = abs(margin) if isinstance(margin, (int, float)) else None
    too_small = mde > margin if margin else check.status != "passed"
    if not too_small:
        return None
    n = check.details.get("n") or rows
    size = f"{int(n):,} rows" if isinstance(n, (int, float)) or str(n).isdigit() else "this holdout"
    margin_text = f", larger than the margin {fmt.plain(margin)}" if margin else ""
    return (
        f"Holdout too small for **{fmt.text(check.name)}**: {size} can only detect differences of "
        f"{fmt.num(mde)} or more{margin_text}. Add holdout rows or widen the margin to decide it."
    )


def _chart_label(name: str) -> str:
    """Inside a code block nothing is rendered, but keep labels to plain characters anyway."""
    return re.sub(r"[^A-Za-z0-9 _.,:;=+\-/\[\]()%#]", "", name)


def _validate_view(step: StepDecision, notes: list[str]) -> dict[str, Any]:
    rows = step.result.outputs.get(Validate.HOLDOUT_ROWS)
    groups: dict[str, list[CheckDecision]] = {"comparison": [], "absolute": [], "slice": [], "other": []}
    for decision in step.checks:
        kind = _kind(decision.check)
        if kind == "slice":
            groups["slice"].append(decision)
        elif kind in COMPARISON_KINDS:
            groups["comparison"].append(decision)
        elif kind == "absolute":
            groups["absolute"].append(decision)
        else:
            groups["other"].append(decision)
        note = _mde_note(decision.check, rows)
        if note:
            notes.append(note)
    chart_rows = []
    for decision in groups["comparison"]:
        check = decision.check
        if not check.interval or check.interval[0] is None or check.interval[1] is None:
            continue
        margin = check.details.get("margin", check.threshold)
        harm = None
        if isinstance(margin, (int, float)) and margin:
            higher_is_better = check.details.get("higher_is_better", True) is not False
            harm = -abs(margin) if higher_is_better else abs(margin)
        chart_rows.append(
            IntervalRow(
                _chart_label(check.name), check.interval[0], check.interval[1], _difference(check), harm
            )
        )
    slices = []
    for decision in groups["slice"]:
        row = _comparison_row(decision)
        row["slice"] = fmt.text(decision.check.details.get("slice", ""))
        row["message"] = fmt.text(decision.check.message, limit=200)
        slices.append(row)
    out = step.result.outputs
    compared = [d for d in groups["comparison"] if d.outcome != "skipped"]
    skipped = [d for d in groups["comparison"] if d.outcome == "skipped"]
    return {
        "comparisons": [_comparison_row(d) for d in compared],
        # The compact body (over the platform's size limit) shows only these.
        "comparisons_open": [_comparison_row(d) for d in compared if d.outcome not in ("pass", "ignored")],
        "rows_label": f" ({_number_text(rows)} holdout rows)" if rows else "",
        "skipped": len(skipped),
        "skipped_line": (
            f"{_plural(len(skipped), 'comparison')} skipped — {fmt.text(skipped[0].check.message or 'skipped')}"
            if skipped
            else ""
        ),
        "absolutes": [_value_row(d) for d in groups["absolute"]],
        "absolutes_open": [
            _value_row(d) for d in groups["absolute"] if d.outcome not in ("pass", "skipped", "ignored")
        ],
        "slices": slices,
        "slice_problems": sum(1 for d in groups["slice"] if d.outcome in ("block", "warn")),
        "others": [_plain_row(d) for d in groups["other"]],
        "chart": forest_plot(chart_rows),
        "holdout_rows": _number_text(rows) if rows else None,
        "candidate": fmt.code(out[Validate.CANDIDATE_URI]) if out.get(Validate.CANDIDATE_URI) else None,
        "baseline": fmt.code(out[Validate.BASELINE_URI]) if out.get(Validate.BASELINE_URI) else None,
    }


def _package_view(step: StepDecision) -> dict[str, Any]:
    out = step.result.outputs
    built = out.get(Package.IMAGE_BUILT, "true" if out.get(Package.IMAGE) else "false") == "true"
    parity = [d for d in step.checks if _kind(d.check) == "parity"]
    others = [d for d in step.checks if _kind(d.check) != "parity"]
    passed = sum(1 for d in parity if d.outcome == "pass")
    digest = out.get(Package.IMAGE_DIGEST, "")
    image_line = "Image " + " · ".join(
        part
        for part in (
            fmt.code(out[Package.IMAGE]) if out.get(Package.IMAGE) else fmt.DASH,
            fmt.size(out[Package.IMAGE_SIZE_BYTES]) if out.get(Package.IMAGE_SIZE_BYTES) else None,
            fmt.code(digest[:19] + "…") if len(digest) > 20 else (fmt.code(digest) if digest else None),
        )
        if part
    )
    return {
        "image_line": image_line,
        "built": built,
        "image": fmt.code(out[Package.IMAGE]) if out.get(Package.IMAGE) else None,
        "digest": fmt.code(digest) if digest else None,
        "onnx": fmt.code(out[Package.ONNX_PATH]) if out.get(Package.ONNX_PATH) else None,
        "build_context": fmt.code(out[Package.BUILD_CONTEXT]) if out.get(Package.BUILD_CONTEXT) else None,
        "model_uri": fmt.code(out[Package.MODEL_URI]) if out.get(Package.MODEL_URI) else None,
        "summary": fmt.text(step.result.summary, limit=300),
        "parity": [_value_row(d) | {"reference": fmt.num(d.check.baseline)} for d in parity],
        "parity_line": f"{passed} of {len(parity)} parity checks passed" if parity else None,
        "parity_ok": all(d.outcome in ("pass", "skipped") for d in parity),
        "others": [_plain_row(d) for d in others],
    }


def _profile_view(step: StepDecision) -> dict[str, Any]:
    out = step.result.outputs

    def pick(key: str) -> str | None:
        return fmt.text(out[key]) if out.get(key) else None

    latency = [d for d in step.checks if _kind(d.check) == "latency"]
    others = [d for d in step.checks if _kind(d.check) != "latency"]
    measured = []
    if out.get(Profile.THROUGHPUT_RPS):
        measured.append(f"**{_number_text(out[Profile.THROUGHPUT_RPS])} req/s** per replica")
    for key, label in ((Profile.P50_MS, "p50"), (Profile.P99_MS, "p99")):
        if out.get(key):
            measured.append(f"{label} {_number_text(out[key])} ms")
    recommendation = []
    cpu = _pair(pick(Profile.CPU_REQUEST), pick(Profile.CPU_LIMIT))
    if cpu:
        recommendation.append(f"CPU {cpu}")
    memory = _pair(pick(Profile.MEMORY_REQUEST), pick(Profile.MEMORY_LIMIT))
    if memory:
        recommendation.append(f"memory {memory}")
    replicas = out.get(Profile.REPLICAS)
    if replicas:
        recommendation.append(
            _plural(int(replicas), "replica") if replicas.isdigit() else pick(Profile.REPLICAS)
        )
    line = " · ".join(measured)
    if line and recommendation:
        line += " → recommended: " + ", ".join(recommendation)
    goal = []
    if out.get(Profile.TARGET_RPS):
        goal.append(f"{_number_text(out[Profile.TARGET_RPS])} req/s")
    if out.get(Profile.SLO_P99_MS):
        goal.append(f"p99 ≤ {_number_text(out[Profile.SLO_P99_MS])} ms")
    if line and goal:
        line += " for " + " at ".join(goal)
    how = []
    server = out.get(Profile.SERVER)
    if server:
        how.append(_SERVER_WORDS.get(server, fmt.text(server)))
    if out.get(Profile.LOAD_GENERATOR):
        generator = fmt.text(out[Profile.LOAD_GENERATOR])
        if out.get(Profile.GENERATOR_CEILING_RPS):
            generator += f" (its ceiling here: {_number_text(out[Profile.GENERATOR_CEILING_RPS])} req/s)"
        how.append(f"load from {generator}")
    if out.get(Profile.INPROCESS_P50_MS):
        how.append(f"ONNX Runtime alone: p50 {_number_text(out[Profile.INPROCESS_P50_MS])} ms per row")
    return {
        "line": line,
        "measured": bool(measured),
        "how": "; ".join(how),
        "summary": fmt.text(step.result.summary, limit=300),
        "latency": [_latency_row(d) for d in latency],
        "others": [_plain_row(d) for d in others],
    }


_SERVER_WORDS = {
    "container": "measured on the serving image under CPU limits",
    "serve": "measured on `mlops-ci serve` (no container engine: no CPU limits)",
    "endpoint": "measured on the given endpoint",
    "none": "in-process only",
}


def _pair(request: str | None, limit: str | None) -> str | None:
    if request and limit:
        return f"{request} request / {limit} limit"
    if request:
        return f"{request} request"
    if limit:
        return f"{limit} limit"
    return None


def _number_text(raw: str) -> str:
    """A number from a step output (a string), as written but with thousands separated."""
    raw = raw.strip()
    if raw.isdigit():
        return f"{int(raw):,}"
    try:
        float(raw)
    except ValueError:
        return fmt.text(raw)
    return raw


def _generic_view(step: StepDecision) -> dict[str, Any]:
    result = step.result
    outputs = []
    for key, value in result.outputs.items():
        shown = fmt.link("open", value) if value.startswith(("http://", "https://")) else fmt.code(value)
        outputs.append({"key": fmt.text(key), "value": shown})
    return {
        "name": fmt.text(step.step),
        "icon": fmt.ICONS[step.outcome],
        "status": fmt.text(result.status),
        "summary": fmt.text(result.summary, limit=200),
        "outputs": outputs,
        "checks": [_plain_row(d) for d in step.checks],
        "artifacts": [fmt.code(path.rsplit("/", 1)[-1]) for path in result.artifacts],
    }
