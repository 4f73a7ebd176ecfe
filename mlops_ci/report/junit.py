"""JUnit XML from a step result: one test case per check, so GitLab's merge-request widget
and GitHub test-report actions show the checks next to the unit tests."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mlops_ci.report.summary import number
from mlops_ci.result import Check, StepResult, write_text_atomic


def junit_xml(result: StepResult) -> str:
    return junit_suite_xml(
        result.step, result.checks, started_at=result.started_at, duration_s=result.duration_s
    )


def junit_suite_xml(step: str, checks: Sequence[Any], *, started_at: str, duration_s: float = 0.0) -> str:
    """JUnit XML of ``checks``: ``Check``s, or a domain's records with the same fields (a step
    that logs the file with its other reports writes it before its result exists)."""
    suite = ET.Element(
        "testsuite",
        {
            "name": f"mlops-ci {step}",
            "tests": str(len(checks)),
            "failures": str(sum(c.status == "failed" for c in checks)),
            "errors": str(sum(c.status == "error" for c in checks)),
            "skipped": str(sum(c.status == "skipped" for c in checks)),
            "timestamp": started_at,
            "time": f"{duration_s:.3f}",
        },
    )
    for check in checks:
        suite.append(_case(step, check))
    root = ET.Element("testsuites", {"name": "mlops-ci"})
    root.append(suite)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _case(step: str, check: Check) -> ET.Element:
    kind = check.details.get("kind", "check")
    case = ET.Element("testcase", {"classname": f"mlops-ci.{step}.{kind}", "name": check.name, "time": "0"})
    summary = _numbers(check)
    if check.status == "failed":
        ET.SubElement(case, "failure", {"message": check.message, "type": "blocking"}).text = summary
    elif check.status == "error":
        ET.SubElement(case, "error", {"message": check.message}).text = summary
    elif check.status == "skipped":
        ET.SubElement(case, "skipped", {"message": check.message})
    else:
        prefix = "WARNING (non-blocking): " if check.status == "warning" else ""
        ET.SubElement(case, "system-out").text = prefix + check.message + ("\n" + summary if summary else "")
    properties = ET.SubElement(case, "properties")
    for key in ("value", "baseline", "p_value", "threshold"):
        value = getattr(check, key)
        if value is not None:
            ET.SubElement(properties, "property", {"name": key, "value": repr(float(value))})
    if check.interval:
        ET.SubElement(
            properties,
            "property",
            {"name": "interval", "value": f"[{check.interval[0]}, {check.interval[1]}]"},
        )
    ET.SubElement(properties, "property", {"name": "blocking", "value": str(check.blocking).lower()})
    return case


def _numbers(check: Check) -> str:
    parts = []
    if check.value is not None:
        parts.append(f"candidate {number(check.value)}")
    if check.baseline is not None:
        parts.append(f"baseline {number(check.baseline)}")
    if check.interval:
        parts.append(f"interval [{number(check.interval[0])}, {number(check.interval[1])}]")
    if check.p_value is not None:
        parts.append(f"p {number(check.p_value)}")
    return ", ".join(parts)


def write_junit(result: StepResult, path: Path) -> Path:
    write_text_atomic(path, junit_xml(result))
    return path


def write_junit_suite(step: str, checks: Sequence[Any], path: Path, *, started_at: str) -> Path:
    write_text_atomic(path, junit_suite_xml(step, checks, started_at=started_at))
    return path
