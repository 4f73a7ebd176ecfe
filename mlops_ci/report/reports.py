"""Machine-readable reports of the gate's decision: JUnit XML (GitLab's merge-request test
widget, any CI's test tab) and a metrics report (GitLab's metrics widget compares it with
the target branch)."""

from __future__ import annotations

import math
import re
from xml.etree import ElementTree as ET

from mlops_ci.report.policy import Decision, check_title

_METRIC_NAME = re.compile(r"[^a-zA-Z0-9_]+")


def junit_xml(decision: Decision) -> str:
    """One test suite per step, one test case per check: ``block`` is a failure, ``warn``
    passes with the warning in its output, skipped and ignored checks are skipped."""
    suites = ET.Element("testsuites", name="mlops-ci gate")
    totals = {"tests": 0, "failures": 0, "skipped": 0}
    for step in decision.steps:
        suite = ET.SubElement(suites, "testsuite", name=step.step)
        counts = {"tests": 0, "failures": 0, "skipped": 0}
        for issue in step.issues:
            case = ET.SubElement(suite, "testcase", classname=step.step, name=f"{step.step} (step)")
            counts["tests"] += 1
            if issue.outcome == "block":
                ET.SubElement(case, "failure", message=issue.text).text = issue.text
                counts["failures"] += 1
            else:
                ET.SubElement(case, "system-out").text = f"warning: {issue.text}"
        for check in step.checks:
            case = ET.SubElement(suite, "testcase", classname=step.step, name=check_title(check.check))
            counts["tests"] += 1
            if check.outcome == "block":
                ET.SubElement(case, "failure", message=check.reason).text = check.reason
                counts["failures"] += 1
            elif check.outcome in ("skipped", "ignored"):
                ET.SubElement(case, "skipped", message=check.reason)
                counts["skipped"] += 1
            elif check.outcome == "warn":
                ET.SubElement(case, "system-out").text = f"warning: {check.reason}"
        for key, value in counts.items():
            suite.set(key, str(value))
            totals[key] += value
    for key, value in totals.items():
        suites.set(key, str(value))
    ET.indent(suites)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"


def metrics_text(decision: Decision) -> str:
    """``name value`` lines (GitLab's ``artifacts:reports:metrics`` format)."""
    lines = [
        f"mlops_ci_gate_blocking {len(decision.blocking)}",
        f"mlops_ci_gate_warnings {len(decision.warnings)}",
        f"mlops_ci_gate_passed {1 if decision.verdict != 'block' else 0}",
    ]
    seen: set[str] = set()
    for step in decision.steps:
        for check in step.checks:
            base = metric_name(f"mlops_ci_{step.step}_{check_title(check.check)}")
            for suffix, value in (
                ("value", check.check.value),
                ("baseline", check.check.baseline),
                ("p_value", check.check.p_value),
            ):
                name = f"{base}_{suffix}"
                if value is None or not math.isfinite(value) or name in seen:
                    continue
                seen.add(name)
                lines.append(f"{name} {value:.6g}")
        if step.result is not None:
            for key, raw in step.result.outputs.items():
                name = metric_name(f"mlops_ci_{step.step}_{key}")
                try:
                    value = float(raw)
                except ValueError:
                    continue
                if math.isfinite(value) and name not in seen and not key.endswith(("-id", "-version")):
                    seen.add(name)
                    lines.append(f"{name} {value:.6g}")
    return "\n".join(lines) + "\n"


def metric_name(raw: str) -> str:
    return _METRIC_NAME.sub("_", raw).strip("_").lower()
