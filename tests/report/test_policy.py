"""The gate's policy: which checks block, which warn, which steps are required."""

from __future__ import annotations

import pytest

from mlops_ci.errors import UsageError
from mlops_ci.report.policy import Policy, decide
from mlops_ci.result import Check, StepResult


def result(step: str, status: str = "passed", checks=(), commit: str | None = "abc") -> StepResult:
    return StepResult(
        step=step, status=status, summary=f"{step} {status}", checks=list(checks), context={"commit": commit}
    )


def check(name: str, status: str, *, blocking: bool = True, **details) -> Check:
    return Check(name=name, status=status, blocking=blocking, message=f"{name} {status}", details=details)


def outcomes(decision):
    return {(c.step, c.check.name): c.outcome for s in decision.steps for c in s.checks}


def test_by_default_each_check_decides_for_itself():
    results = [
        result(
            "validate",
            "failed",
            [
                check("accuracy", "failed"),
                check("f1", "failed", blocking=False),
                check("auc", "warning", blocking=False),
                check("slices", "error"),
                check("brier", "skipped"),
                check("recall", "passed"),
            ],
        )
    ]
    decision = decide(results, Policy())
    assert outcomes(decision) == {
        ("validate", "accuracy"): "block",
        ("validate", "f1"): "warn",
        ("validate", "auc"): "warn",
        ("validate", "slices"): "block",
        ("validate", "brier"): "skipped",
        ("validate", "recall"): "pass",
    }
    assert decision.verdict == "block"
    assert [f.check.check.name for f in decision.blocking] == ["accuracy", "slices"]
    assert decision.summary().startswith("blocked: 2 blocking failures, 2 warnings (validate: accuracy; ")


def test_most_specific_pattern_wins_and_ties_go_to_the_stricter_action():
    results = [
        result("profile", checks=[check("latency p95", "failed"), check("memory", "failed")]),
        result(
            "validate",
            checks=[check("accuracy", "warning", blocking=False), check("robustness nan", "failed")],
        ),
    ]
    policy = Policy(
        warn=("profile:*",),
        block=("profile:latency*", "validate:*"),
        ignore=("validate:robustness*",),
    )
    decision = decide(results, policy)
    assert outcomes(decision) == {
        ("profile", "latency p95"): "block",  # 'profile:latency*' beats 'profile:*'
        ("profile", "memory"): "warn",
        ("validate", "accuracy"): "block",  # promoted from a warning
        ("validate", "robustness nan"): "ignored",  # 'validate:robustness*' beats 'validate:*'
    }
    promoted = next(c for s in decision.steps for c in s.checks if c.check.name == "accuracy")
    assert promoted.rule == "validate:*" and "gate block rule 'validate:*'" in promoted.policy_note
    tie = decide(
        [result("package", checks=[check("parity", "failed", blocking=False)])],
        Policy(warn=("package",), block=("package",)),
    )
    assert tie.verdict == "block"


def test_strict_turns_warnings_into_blockers():
    results = [result("profile", checks=[check("latency", "warning", blocking=False)])]
    assert decide(results, Policy()).verdict == "warn"
    strict = decide(results, Policy(strict=True))
    assert strict.verdict == "block" and "strict" in strict.blocking[0].text


def test_required_steps_must_have_run_and_finished():
    results = [result("train"), result("package", "error"), result("profile", "error")]
    decision = decide(results, Policy(require=("train", "validate", "package")))
    assert decision.verdict == "block"
    texts = [f.text for f in decision.blocking]
    assert "did not finish: package error" in texts
    assert any(t.startswith("required step validate did not run") for t in texts)
    # profile is not required: its error is a warning.
    assert [f.text for f in decision.warnings] == ["did not finish: profile error"]


def test_a_failed_step_without_failed_checks_blocks():
    decision = decide([result("package", "failed", [check("parity", "passed")])], Policy())
    assert decision.verdict == "block" and decision.blocking[0].text == "failed: package failed"


def test_failed_checks_that_the_policy_ignores_let_the_change_pass():
    decision = decide(
        [result("validate", "failed", [check("accuracy", "failed")])], Policy(ignore=("validate",))
    )
    assert decision.verdict == "pass"


def test_results_from_another_commit_are_flagged():
    results = [result("train", commit="old"), result("validate", commit="new")]
    decision = decide(results, Policy(), commit="new")
    assert decision.verdict == "warn"
    assert decision.warnings[0].step == "train" and "from commit old, not new" in decision.warnings[0].text


def test_slices_are_named_in_findings():
    decision = decide(
        [result("validate", checks=[check("accuracy", "failed", slice="sex=Female")])], Policy()
    )
    assert decision.blocking[0].check.label == "validate: accuracy [sex=Female]"


@pytest.mark.parametrize(
    "policy",
    [
        dict(block=(":x",)),
        dict(warn=("validate:",)),
        dict(require=("valid*",)),
        dict(require=("a:b",)),
        dict(require=("gate",)),
    ],
)
def test_malformed_patterns_are_usage_errors(policy):
    with pytest.raises(UsageError, match="gate"):
        Policy(**policy)
