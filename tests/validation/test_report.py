"""The JUnit and markdown reports."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from mlops_ci.report.junit import junit_suite_xml
from mlops_ci.validation import policy
from mlops_ci.validation.report import markdown_report
from tests.validation.helpers import SETTINGS, make_problem, parse


def test_junit_and_markdown_reports():
    problem, frame = make_problem(worse=0.5)
    specs = parse([{"metric": "roc-auc"}, {"metric": "accuracy", "rule": "floor", "threshold": 0.99}])
    outcomes = policy.evaluate(problem, specs, [], frame, SETTINGS, first_model=False)
    checks = [o.finding for o in outcomes]
    root = ET.fromstring(junit_suite_xml("validate", checks, started_at="2026-12-07T19:00:00Z"))
    cases = root.findall("./testsuite/testcase")
    assert [c.get("name") for c in cases] == ["roc-auc no-regression", "accuracy floor"]
    assert all(c.find("failure") is not None for c in cases)
    assert root.find("testsuite").get("failures") == "2"
    text = markdown_report(
        verdict="BLOCKED", headline="h", summary="blocked", checks=checks, notes=["first"], plots=[]
    )
    assert text.startswith("# mlops-ci validate: BLOCKED")
    assert "| roc-auc no-regression | ❌ failed |" in text and "> first" in text
