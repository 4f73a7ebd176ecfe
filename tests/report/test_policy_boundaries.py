"""The gate policy at its edges (issue 18's mutation survivors of mlops_ci/report/policy.py):
specificity counts only literal characters, ties between every pair of actions go to the
stricter one, and the one-line summary names at most three findings, with exact counts."""

from __future__ import annotations

import pytest

from mlops_ci.report.policy import Policy, Rule, decide
from tests.report.test_policy import check, result


def test_specificity_counts_literal_characters_only():
    assert Rule("block", "validate:accuracy").specificity == 16  # the ':' is not counted
    assert Rule("block", "valid*:acc?racy").specificity == 12
    assert Rule("block", "*:*").specificity == 0


def test_a_long_wildcard_pattern_does_not_beat_a_literal_one():
    """'validat*:**********' is longer than 'validate:accuracy' but less specific."""
    results = [result("validate", checks=[check("accuracy", "failed")])]
    policy = Policy(warn=("validate:accuracy",), block=("validat*:**********",))
    assert decide(results, policy).verdict == "warn"


@pytest.mark.parametrize(
    ("stricter", "looser", "expected"),
    [("block", "warn", "block"), ("warn", "ignore", "warn"), ("block", "ignore", "block")],
)
def test_ties_go_to_the_stricter_action(stricter, looser, expected):
    results = [result("package", checks=[check("parity", "failed", blocking=False)])]
    decision = decide(results, Policy(**{stricter: ("package",), looser: ("package",)}))
    assert decision.verdict == expected


def failing(n: int, status: str = "failed", blocking: bool = True):
    return [result("validate", checks=[check(f"c{i}", status, blocking=blocking) for i in range(n)])]


def test_the_summary_names_three_blockers_and_elides_the_fourth():
    three = decide(failing(3), Policy()).summary()
    assert three == "blocked: 3 blocking failures (validate: c0; validate: c1; validate: c2)"
    four = decide(failing(4), Policy()).summary()
    assert four == "blocked: 4 blocking failures (validate: c0; validate: c1; validate: c2; ...)"
    assert decide(failing(1), Policy()).summary() == "blocked: 1 blocking failure (validate: c0)"


def test_the_summary_names_three_warnings_and_elides_the_fourth():
    three = decide(failing(3, "warning", blocking=False), Policy()).summary()
    assert three.startswith("pass with 3 warnings: 0 checks passed in 1 step (")
    assert three.endswith("validate: c2)")
    four = decide(failing(4, "warning", blocking=False), Policy()).summary()
    assert four.endswith("validate: c2; ...)") and four.startswith("pass with 4 warnings: ")


def test_the_summary_counts_checks_and_steps_exactly():
    one = decide([result("validate", checks=[check("a", "passed")])], Policy())
    assert one.summary() == "pass: 1 check passed in 1 step"
    two = decide(
        [result("validate", checks=[check("a", "passed"), check("b", "passed")]), result("train")], Policy()
    )
    assert two.summary() == "pass: 2 checks passed in 2 steps"
    assert two.counts == {"pass": 2, "skipped": 0, "warn": 0, "block": 0, "ignored": 0}
    none = decide([result("train")], Policy())
    assert none.summary() == "pass: 1 step finished, none with checks"


def test_the_policy_describes_itself():
    assert Policy().describe() == "each check's own blocking flag"
    assert Policy(require=("validate",), warn=("profile",)).describe() == "requires validate; warn profile"
