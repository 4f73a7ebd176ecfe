"""The rendered comment: golden files for a pass, a block and a first model, and the rules
that keep it readable and safe (escaping, shortening, reports)."""

from __future__ import annotations

import json
import os
import re
from xml.etree import ElementTree as ET

import jsonschema
import pytest

from mlops_ci.report.chart import IntervalRow, forest_plot
from mlops_ci.report.comment import CommentOptions, render_comment
from mlops_ci.report.policy import Policy, decide
from mlops_ci.report.reports import junit_xml, metrics_text
from mlops_ci.report.results import load_results
from mlops_ci.result import Check, StepResult, step_result_schema
from tests.forge_cases import FIXTURES, GOLDEN, PIPELINE_URL, SHA
from tests.helpers import REPO as REPO_ROOT

CASES = ("pass", "block", "first-model")
# Set MLOPS_CI_UPDATE_GOLDEN=1 to rewrite the golden files after an intended change, then
# review the diff.
UPDATE = os.environ.get("MLOPS_CI_UPDATE_GOLDEN") == "1"
POLICY = Policy(require=("train", "register", "validate"))


def render_case(case: str, **options) -> tuple:
    decision = decide(load_results(FIXTURES / case), POLICY, commit=SHA)
    defaults = dict(pipeline=7712345678, commit=SHA, pipeline_url=PIPELINE_URL)
    return decision, render_comment(decision, CommentOptions(**(defaults | options)))


@pytest.mark.parametrize("case", CASES)
def test_fixtures_follow_the_published_step_result_schema(case):
    schema = step_result_schema()
    paths = sorted((FIXTURES / case).glob("*.json"))
    assert paths
    for path in paths:
        jsonschema.validate(json.loads(path.read_text()), schema)


@pytest.mark.parametrize("case", CASES)
def test_golden_comment(case):
    _, rendered = render_case(case)
    golden = GOLDEN / f"gate-comment-{case}.md"
    if UPDATE:
        golden.write_text(rendered.body)
    assert rendered.body == golden.read_text(), (
        f"rendering changed; review and rerun with MLOPS_CI_UPDATE_GOLDEN=1 ({golden})"
    )


def test_verdicts_of_the_golden_cases():
    verdicts = {case: render_case(case)[0].verdict for case in CASES}
    assert verdicts == {"pass": "pass", "block": "block", "first-model": "pass"}
    first = (GOLDEN / "gate-comment-first-model.md").read_text()
    assert "is the first model (no champion yet)" in first.splitlines()[2]
    assert "No image was built" in first


def test_the_block_comment_shows_what_the_issue_asks_for():
    body = (GOLDEN / "gate-comment-block.md").read_text()
    lines = body.splitlines()
    assert lines[0] == "<!-- mlops-ci:default -->"
    assert lines[2].startswith("### ❌ mlops-ci: blocked — `census-income` v9 must not replace champion v7")
    # A row per check: champion, challenger, difference with its interval, p-value, decision.
    assert "| accuracy no-regression | 0.8511 | 0.8213 | **-0.0298** [-0.0391, -0.0205] | <0.001 |" in body
    assert (
        "Holdout too small for **roc_auc non-inferiority**: 6,513 rows can only detect differences of 0.0068"
        in body
    )
    assert "ONNX parity: ✅ 3 of 3 parity checks passed" in body
    assert "`ghcr.io/acme/census-income:9f2c1ab` · 187.3 MB · `sha256:4b825dc642cb…`" in body
    assert (
        "recommended: CPU 250m request / 1 limit, memory 128Mi request / 256Mi limit, 2 replicas for 5,000 req/s "
        "at p99 ≤ 50 ms" in body
    )
    assert "[MLflow run](https://mlflow.acme.example/#/experiments/4/runs/" in body
    assert "[model version](https://mlflow.acme.example/#/models/census-income/versions/9)" in body
    assert f"[pipeline]({PIPELINE_URL})" in body
    assert body.count("<details>") == body.count("</details>") >= 5
    assert body.count("```") % 2 == 0


def test_readme_shows_a_golden_comment():
    readme = (REPO_ROOT / "README.md").read_text()
    start, end = "<!-- gate-comment-example:start -->\n", "<!-- gate-comment-example:end -->"
    shown = readme.split(start, 1)[1].split(end, 1)[0]
    assert shown.strip() == (GOLDEN / "gate-comment-block.md").read_text().strip()


def test_untrusted_text_cannot_inject_markup_mentions_or_links():
    evil = StepResult(
        step="validate",
        status="failed",
        summary="<script>alert(1)</script> @everyone | pwned\n## heading",
        outputs={"candidate-uri": "models:/x/1`", "run-url": "javascript:alert(1)"},
        checks=[
            Check(
                name="acc`uracy</details><!-- mlops-ci:default -->",
                status="failed",
                value=0.5,
                baseline=0.6,
                interval=(-0.2, -0.05),
                message="@org/team look </details>",
            )
        ],
    )
    body = render_comment(decide([evil], Policy()), CommentOptions()).body
    assert "<script>" not in body and "&lt;script&gt;" in body
    assert "@everyone" not in body and "@\u200deveryone" in body
    assert "\\| pwned" in body and "\n## heading" not in body
    assert body.count("<!-- mlops-ci:default -->") == 1 and body.count("</details>") == body.count(
        "<details>"
    )
    assert "](javascript:" not in body


@pytest.mark.parametrize("limit", [65_535, 20_000])
def test_a_long_body_is_shortened_under_the_limit_with_a_pointer(limit):
    results = load_results(FIXTURES / "block")
    validate = results[2]
    template = next(c for c in validate.checks if c.details.get("kind") == "slice")
    for i in range(2000):
        validate.checks.append(
            Check.from_dict(template.to_dict() | {"details": template.details | {"slice": f"zip={i}"}})
        )
    decision = decide(results, POLICY, commit=SHA)
    rendered = render_comment(
        decision, CommentOptions(max_chars=limit, pipeline_url=PIPELINE_URL, platform_label="GitHub")
    )
    assert rendered.shortened and len(rendered.full) > limit >= len(rendered.body)
    assert rendered.body.startswith("<!-- mlops-ci:default -->")
    assert "blocked" in rendered.body.splitlines()[2]
    assert f"is longer than GitHub accepts in a comment ({limit:,})" in rendered.body
    assert PIPELINE_URL in rendered.body
    assert rendered.body.count("<details>") == rendered.body.count("</details>")


def test_a_body_that_is_still_too_long_is_cut_on_a_line_boundary():
    # Failing comparisons stay in the compact body, so thousands of them overflow it too.
    checks = [
        Check(
            name=f"check {i} " + "x" * 100,
            status="failed",
            value=0.5,
            baseline=0.6,
            interval=(-0.2, -0.05),
            details={"kind": "comparison"},
        )
        for i in range(400)
    ]
    decision = decide([StepResult("validate", "failed", "many", checks=checks)], Policy())
    rendered = render_comment(decision, CommentOptions(max_chars=10_000))
    assert len(rendered.body) <= 10_000 and rendered.body.rstrip().endswith("artifact.")
    assert rendered.body.startswith("<!-- mlops-ci:default -->")
    # Whole table rows only.
    assert all(line.endswith("|") for line in rendered.body.splitlines() if line.startswith("| check "))


def test_forest_plot_places_zero_margin_and_interval():
    plot = forest_plot(
        [
            IntervalRow("accuracy", -0.03, -0.01, -0.02, harm=-0.005),
            IntervalRow("log_loss", 0.004, 0.02, 0.012, harm=0.01),
        ]
    )
    header, first, second, _, legend = plot.splitlines()
    assert header.split() == ["-0.0330", "0", "+0.0330"]
    row = first[28:]
    assert row.index("[") < row.index("o") < row.index("]") < row.index(":") < row.index("|")
    row = second[28:]
    assert row.index("|") <= row.index("[") < row.index(":") < row.index("]")
    assert "margin" in legend


def test_junit_report_has_a_case_per_check_and_failures_for_blockers():
    decision, _ = render_case("block")
    root = ET.fromstring(junit_xml(decision))
    assert root.get("failures") == "2"
    validate = root.find("testsuite[@name='validate']")
    names = [case.get("name") for case in validate.findall("testcase")]
    assert "accuracy no-regression [sex=Female]" in names
    failed = [case.get("name") for case in validate.findall("testcase") if case.find("failure") is not None]
    assert failed == ["accuracy no-regression", "log_loss no-regression"]


def test_metrics_report_lines():
    decision, _ = render_case("pass")
    text = metrics_text(decision)
    assert "mlops_ci_gate_blocking 0\n" in text
    assert "mlops_ci_validate_accuracy_no_regression_value 0.8534\n" in text
    assert "mlops_ci_profile_throughput_rps 4210\n" in text
    assert all(re.fullmatch(r"[a-z0-9_]+ -?[0-9.e+-]+", line) for line in text.splitlines())
