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
    from mlops_ci.platforms import comments, detect_platform
    from mlops_ci.report.comment import CommentOptions, render_comment
    from mlops_ci.report.policy import Policy, decide
    from mlops_ci.report.results import load_results
    from mlops_ci.result import write_text_atomic
    from mlops_ci.runner import resolve_options
    from mlops_ci.steps import GLOBAL_OPTIONS
    from mlops_ci.steps.gate import COMMENT_OPTIONS, POLICY_OPTIONS

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
    key = comments.check_key(values.comment_key)
    policy = Policy.from_options(values)
    out_dir = values["out_dir"]
    results = load_results(out_dir)
    context = detect_platform(env, cwd=cwd, out_dir=out_dir).context()
    decision = decide(results, policy, commit=context.commit)
    pipeline_url = context.pipeline_url or next(
        (r.context.get("pipeline_url") for r in results if r.context.get("pipeline_url")), None
    )
    rendered = render_comment(
        decision,
        CommentOptions(
            key=key,
            title=values["title"],
            commit=context.commit,
            pipeline_url=pipeline_url,
            report_url=values["report_url"],
            max_chars=values["max_length"],
        ),
    )
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
