"""The gate's policy and its decision over a set of step results.

By default each check decides for itself: a failed (or errored) check marked ``blocking``
blocks, any other check that did not pass warns. The policy can override that per check
with patterns ``step:check`` (shell-style wildcards on both sides; ``step`` alone means
every check of that step):

    gate:
      require: [train, register, validate]   # must have run and finished
      block: ["validate:*"]                  # these block even if the step said warning
      warn: ["profile:*"]                    # these only warn
      ignore: ["validate:robustness*"]       # these are shown but never count
      strict: false                          # true: every warning blocks

When several patterns match one check, the most specific one (the most literal
characters) wins; on a tie the stricter action wins (block, then warn, then ignore).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from mlops_ci.errors import UsageError
from mlops_ci.result import Check, StepResult

VERDICTS = ("pass", "warn", "block")
ACTIONS = ("block", "warn", "ignore")
_STRICTNESS = {"block": 2, "warn": 1, "ignore": 0}
_WILDCARDS = set("*?[]")


def check_title(check: Check) -> str:
    """The check's name with its slice, unless the name already carries it (validate names
    its slice checks `metric rule [column=segment]`)."""
    where = check.details.get("slice")
    if not where or f"[{where}]" in check.name:
        return check.name
    return f"{check.name} [{where}]"


@dataclass(frozen=True)
class Rule:
    action: str
    pattern: str

    @property
    def step_pattern(self) -> str:
        return self.pattern.partition(":")[0]

    @property
    def check_pattern(self) -> str:
        step, sep, check = self.pattern.partition(":")
        return check if sep else "*"

    @property
    def specificity(self) -> int:
        return sum(1 for char in self.pattern if char not in _WILDCARDS and char != ":")

    def matches(self, step: str, check: str) -> bool:
        return fnmatch.fnmatchcase(step, self.step_pattern) and fnmatch.fnmatchcase(check, self.check_pattern)

    def describe(self) -> str:
        return f"gate {self.action} rule '{self.pattern}'"


@dataclass(frozen=True)
class Policy:
    require: tuple[str, ...] = ()
    block: tuple[str, ...] = ()
    warn: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()
    strict: bool = False

    def __post_init__(self) -> None:
        for name in ("block", "warn", "ignore"):
            for pattern in getattr(self, name):
                step, sep, check = pattern.partition(":")
                if not step or (sep and not check):
                    raise UsageError(
                        f"gate {name} pattern {pattern!r} must be 'step' or 'step:check' (wildcards allowed), "
                        "e.g. 'validate:*' or 'profile:latency*'"
                    )
        for step in self.require:
            if not step or any(char in _WILDCARDS or char == ":" for char in step):
                raise UsageError(f"gate require entries are step names such as 'validate', got {step!r}")
            if step == "gate":
                raise UsageError("gate require cannot list 'gate' itself; list the steps the gate reads")

    @classmethod
    def from_options(cls, options) -> Policy:
        return cls(
            require=tuple(options.require),
            block=tuple(options.block),
            warn=tuple(options.warn),
            ignore=tuple(options.ignore),
            strict=bool(options.strict),
        )

    @property
    def rules(self) -> tuple[Rule, ...]:
        return tuple(Rule(action, pattern) for action in ACTIONS for pattern in getattr(self, action))

    def rule_for(self, step: str, check: str) -> Rule | None:
        matching = [rule for rule in self.rules if rule.matches(step, check)]
        if not matching:
            return None
        return max(matching, key=lambda rule: (rule.specificity, _STRICTNESS[rule.action]))

    def describe(self) -> str:
        parts = []
        if self.require:
            parts.append("requires " + ", ".join(self.require))
        for action in ACTIONS:
            patterns = getattr(self, action)
            if patterns:
                parts.append(f"{action} " + ", ".join(patterns))
        if self.strict:
            parts.append("warnings block")
        return "; ".join(parts) or "each check's own blocking flag"


@dataclass(frozen=True)
class CheckDecision:
    """``outcome``: pass, skipped, warn, block or ignored."""

    step: str
    check: Check
    outcome: str
    reason: str
    rule: str | None = None
    # Why the policy changed the check's own verdict (a rule, strict mode), if it did.
    policy_note: str | None = None

    @property
    def label(self) -> str:
        return f"{self.step}: {check_title(self.check)}"


@dataclass(frozen=True)
class StepIssue:
    """Something about a step as a whole (did not run, did not finish, stale), with the
    outcome it leads to."""

    text: str
    outcome: str


@dataclass(frozen=True)
class StepDecision:
    """``outcome``: pass, warn or block. ``result`` is None for a required step that did
    not run."""

    step: str
    result: StepResult | None
    outcome: str
    issues: tuple[StepIssue, ...] = ()
    checks: tuple[CheckDecision, ...] = ()
    required: bool = False


@dataclass(frozen=True)
class Finding:
    """One line of the verdict's "why": a blocking failure or a warning."""

    step: str
    text: str
    check: CheckDecision | None = None


@dataclass(frozen=True)
class Decision:
    verdict: str
    steps: tuple[StepDecision, ...]
    policy: Policy = field(default_factory=Policy)

    @property
    def blocking(self) -> list[Finding]:
        return self._findings("block")

    @property
    def warnings(self) -> list[Finding]:
        return self._findings("warn")

    def _findings(self, outcome: str) -> list[Finding]:
        found: list[Finding] = []
        for step in self.steps:
            found.extend(Finding(step.step, issue.text) for issue in step.issues if issue.outcome == outcome)
            found.extend(
                Finding(step.step, check.reason, check) for check in step.checks if check.outcome == outcome
            )
        return found

    @property
    def counts(self) -> dict[str, int]:
        counts = {"pass": 0, "skipped": 0, "warn": 0, "block": 0, "ignored": 0}
        for step in self.steps:
            for check in step.checks:
                counts[check.outcome] += 1
        return counts

    def summary(self) -> str:
        """The verdict in one plain line."""
        blocking, warnings = self.blocking, self.warnings
        if self.verdict == "block":
            names = "; ".join(_short(f) for f in blocking[:3]) + ("; ..." if len(blocking) > 3 else "")
            extra = f", {_plural(len(warnings), 'warning')}" if warnings else ""
            return f"blocked: {_plural(len(blocking), 'blocking failure')}{extra} ({names})"
        counts = self.counts
        ran = sum(1 for step in self.steps if step.result is not None)
        if sum(counts.values()):
            passed = f"{_plural(counts['pass'], 'check')} passed in {_plural(ran, 'step')}"
        else:
            passed = f"{_plural(ran, 'step')} finished, none with checks"
        if self.verdict == "warn":
            names = "; ".join(_short(f) for f in warnings[:3]) + ("; ..." if len(warnings) > 3 else "")
            return f"pass with {_plural(len(warnings), 'warning')}: {passed} ({names})"
        return f"pass: {passed}"


def _short(finding: Finding) -> str:
    return finding.check.label if finding.check else f"{finding.step}: {finding.text}"


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def decide(results: Sequence[StepResult], policy: Policy, *, commit: str | None = None) -> Decision:
    """Apply ``policy`` to ``results``. ``commit`` is the commit being gated: results
    recorded for another commit are flagged as stale (a warning)."""
    by_step = {result.step: result for result in results}
    decisions = [_decide_step(result, policy, commit) for result in results]
    for step in policy.require:
        if step not in by_step:
            decisions.append(
                StepDecision(
                    step=step,
                    result=None,
                    outcome="block",
                    issues=(
                        StepIssue(
                            f"required step {step} did not run (no {step}.json in the out-dir)", "block"
                        ),
                    ),
                    required=True,
                )
            )
    outcomes = {d.outcome for d in decisions}
    verdict = "block" if "block" in outcomes else "warn" if "warn" in outcomes else "pass"
    return Decision(verdict=verdict, steps=tuple(decisions), policy=policy)


def _decide_step(result: StepResult, policy: Policy, commit: str | None) -> StepDecision:
    required = result.step in policy.require
    checks = tuple(_decide_check(result.step, check, policy) for check in result.checks)
    issues: list[StepIssue] = []
    if result.status == "error":
        severity = "block" if required or policy.strict else "warn"
        issues.append(StepIssue(f"did not finish: {result.summary}", severity))
    elif result.status == "failed" and not any(
        c.check.status in ("failed", "error", "warning") for c in checks
    ):
        # The step failed without saying which check: trust the step.
        issues.append(StepIssue(f"failed: {result.summary}", "block"))
    recorded = (result.context or {}).get("commit")
    if commit and recorded and recorded != commit:
        issues.append(
            StepIssue(
                f"result is from commit {str(recorded)[:12]}, not {commit[:12]}: rerun {result.step}",
                "block" if policy.strict else "warn",
            )
        )
    outcome = _worst([*(c.outcome for c in checks), *(i.outcome for i in issues)])
    return StepDecision(
        step=result.step,
        result=result,
        outcome=outcome,
        issues=tuple(issues),
        checks=checks,
        required=required,
    )


def _worst(outcomes: Iterable[str]) -> str:
    seen = set(outcomes)
    return "block" if "block" in seen else "warn" if "warn" in seen else "pass"


def _decide_check(step: str, check: Check, policy: Policy) -> CheckDecision:
    if check.status == "passed":
        return CheckDecision(step, check, "pass", "passed")
    if check.status == "skipped":
        return CheckDecision(step, check, "skipped", check.message or "skipped")
    what = {"failed": "failed", "error": "could not be evaluated", "warning": "did not pass"}[check.status]
    rule = policy.rule_for(step, check.name)
    message = f": {check.message}" if check.message else ""
    note = None
    if rule is not None:
        if rule.action == "ignore":
            note = f"ignored by {rule.describe()}"
            return CheckDecision(step, check, "ignored", f"{what}, {note}{message}", rule.pattern, note)
        action = rule.action
        own = "block" if check.status in ("failed", "error") and check.blocking else "warn"
        if action != own:
            note = f"{action}s by {rule.describe()}"
        why = f"{what}; {action}s by {rule.describe()}"
    elif check.status in ("failed", "error") and check.blocking:
        action, why = "block", f"{what} (blocking)"
    else:
        action, why = "warn", f"{what} (non-blocking)" if check.status != "warning" else what
    if action == "warn" and policy.strict:
        action, why, note = (
            "block",
            f"{why}; blocks because gate strict is on",
            "blocks because gate strict is on",
        )
    return CheckDecision(step, check, action, f"{why}{message}", rule.pattern if rule else None, note)
