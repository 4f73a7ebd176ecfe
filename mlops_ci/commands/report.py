"""`mlops-ci report`: render the gate's comment from the step results in an out-dir, without
posting anything (for review bots, and to preview the comment on a laptop).

It applies the same policy as the gate (the ``gate:`` section of mlops-ci.yaml and the
same flags) and never talks to GitHub, GitLab or MLflow.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TextIO

from mlops_ci.options import Option

OUTPUT_OPTIONS = (
    Option("output", "Write the report to this file ('-' for standard output)", default="-", metavar="PATH"),
    Option(
        "format",
        "markdown: the comment as the gate posts it; json: the verdict, the findings and the comment",
        choices=("markdown", "json"),
        default="markdown",
    ),
    Option(
        "max-length",
        "Shorten the comment to this many characters, as the gate does for a platform's limit "
        "(GitHub 65535, GitLab 1000000); default: no limit",
        kind="int",
        minimum=1000,
        metavar="CHARS",
    ),
)


def report_options() -> tuple[Option, ...]:
    from mlops_ci.steps.gate import COMMENT_OPTIONS, POLICY_OPTIONS

    return POLICY_OPTIONS + COMMENT_OPTIONS + OUTPUT_OPTIONS


def run_report(
    flags: Mapping[str, Any],
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    stdout: TextIO | None = None,
) -> int:
    from mlops_ci.platforms import detect_platform
    from mlops_ci.report.verdict import judge
    from mlops_ci.result import write_text_atomic
    from mlops_ci.runner import resolve_options
    from mlops_ci.steps import GLOBAL_OPTIONS
    from mlops_ci.steps.gate import COMMENT_OPTIONS, POLICY_OPTIONS, naming_out_dir, verdict_request

    env = dict(os.environ) if env is None else env
    cwd = (cwd or Path.cwd()).resolve()
    _, values = resolve_options(
        flags,
        env=env,
        cwd=cwd,
        top_level=GLOBAL_OPTIONS,
        section="gate",
        options=POLICY_OPTIONS + COMMENT_OPTIONS,
        flags_only=OUTPUT_OPTIONS,
    )
    context = detect_platform(env, cwd=cwd, out_dir=values["out_dir"]).context()
    request = verdict_request(
        values, commit=context.commit, pipeline_url=context.pipeline_url, max_chars=values["max_length"]
    )
    with naming_out_dir():
        verdict = judge(request)
    decision, rendered = verdict.decision, verdict.rendered
    if values["format"] == "json":
        text = json.dumps(
            {
                "verdict": decision.verdict,
                "summary": decision.summary(),
                "blocking": [_finding(f) for f in decision.blocking],
                "warnings": [_finding(f) for f in decision.warnings],
                "steps": {step.step: step.outcome for step in decision.steps},
                "shortened": rendered.shortened,
                "body": rendered.body,
            },
            indent=2,
        )
        text += "\n"
    else:
        text = rendered.body
    output = values["output"]
    if output in ("-", "", None):
        (stdout or sys.stdout).write(text)
    else:
        path = Path(output)
        write_text_atomic(path if path.is_absolute() else cwd / path, text)
        print(f"report: {decision.verdict} - {decision.summary()} (written to {output})", file=sys.stderr)
    return 0


def _finding(finding) -> dict[str, Any]:
    check = finding.check
    return {
        "step": finding.step,
        "check": check.check.name if check else None,
        "slice": check.check.details.get("slice") if check else None,
        "text": finding.text,
    }
