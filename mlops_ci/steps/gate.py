"""`mlops-ci gate`: one verdict over every step result, as a commit status and one PR/MR
comment that is edited in place on every push.

Order matters: inputs are checked before anything is written or posted; the comment and
the reports are written to the out-dir before any API call, so they exist whatever the
API does. A platform that refuses (a read-only token on a fork, no token) degrades to the
saved comment and the job summary: the exit code is the verdict's, not the API's.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from mlops_ci.errors import UsageError
from mlops_ci.options import Option
from mlops_ci.platforms import comments
from mlops_ci.platforms.base import Published
from mlops_ci.platforms.options import api_options, api_settings, refuse_secrets_in_config, secret_options
from mlops_ci.report.results import NoStepResults
from mlops_ci.result import Check, StepResult
from mlops_ci.steps.base import Output, Step, StepContext

if TYPE_CHECKING:
    from mlops_ci.report.publish import GateOutcome, GateRequest
    from mlops_ci.report.verdict import VerdictRequest

PLATFORM_LABELS = {"github": "GitHub", "gitlab": "GitLab"}
# GitHub refuses a job summary over 1 MiB; the shortened comment is far below that.
SUMMARY_LIMIT_BYTES = 1_000_000

POLICY_OPTIONS = (
    Option(
        "require",
        "Steps that must have run and finished (passed or skipped); one that is missing or errored blocks",
        kind="list",
        metavar="STEP",
    ),
    Option(
        "block",
        "Checks whose failure blocks even if their step marked them non-blocking: 'step:check' "
        "patterns with * wildcards ('validate:*'); the most specific pattern wins",
        kind="list",
        metavar="PATTERN",
    ),
    Option(
        "warn",
        "Checks whose failure only warns, even if their step marked them blocking ('profile:*')",
        kind="list",
        metavar="PATTERN",
    ),
    Option(
        "ignore",
        "Checks that are shown but never count ('validate:robustness*')",
        kind="list",
        metavar="PATTERN",
    ),
    Option("strict", "Treat every warning as blocking", kind="bool", default=False),
    Option(
        "untrusted-results",
        "The results were produced by untrusted code (a fork's pull request run): show them "
        "labelled 'not verified' and never set a passing status; the status stays pending until "
        "a trusted run approved by a maintainer sets it (on by itself in a workflow_run after a "
        "fork's pull request)",
        kind="bool",
        default=False,
    ),
)

COMMENT_OPTIONS = (
    Option(
        "comment-key",
        "Key of the hidden marker <!-- mlops-ci:KEY --> that finds this pipeline's comment; "
        "pipelines with different keys each own one comment on the same PR/MR",
        default="default",
        metavar="KEY",
    ),
    Option(
        "comment-author",
        "Login the token writes comments as, when the platform cannot say: a GitHub App's "
        "installation token writes as <app-slug>[bot] (default: the token's user, else "
        "github-actions[bot] for Actions' GITHUB_TOKEN). Only comments by this login are ever "
        "edited or deleted",
        metavar="LOGIN",
    ),
    Option("title", "Title of the comment's verdict line, e.g. the model's name", default="mlops-ci"),
    Option(
        "report-url",
        "Where the full report can be read, linked when a comment is too long for the platform "
        "(default: the pipeline's URL)",
        metavar="URL",
    ),
)

PUBLISH_OPTIONS = (
    Option("comment", "Create or update the PR/MR comment", kind="bool", default=True),
    Option(
        "status",
        "Set a commit status (a check run on GitHub when the token allows)",
        kind="bool",
        default=True,
    ),
    Option(
        "status-name",
        "Name of the commit status / check run that branch protection can require "
        "(default: mlops-ci, or mlops-ci/KEY with a --comment-key)",
        metavar="NAME",
    ),
    *api_options(
        github_token="GitHub token with pull-requests: write and statuses: write (or checks: write); prefer "
        "the environment variable to the flag",
        gitlab_token="GitLab project or personal access token with the api scope (CI_JOB_TOKEN cannot write "
        "merge-request notes); prefer the environment variable to the flag",
    ),
)

OPTIONS = POLICY_OPTIONS + COMMENT_OPTIONS + PUBLISH_OPTIONS

OUTPUTS = (
    Output("verdict", "pass, warn (passed with warnings) or block"),
    Output("blocking", "Number of blocking failures"),
    Output("warnings", "Number of warnings"),
    Output("comment-path", "The full comment as markdown in the out-dir (comment.md), posted or not"),
    Output(
        "comment-action",
        "created, updated, unchanged, kept-newer, saved (a file only), skipped (no PR/MR) or "
        "degraded (the platform refused, e.g. a fork's read-only token)",
    ),
    Output("comment-url", "Link to the PR/MR comment (when one was posted)"),
    Output("status-action", "created, skipped or degraded: what became of the commit status / check run"),
    Output("pr", "The pull/merge-request number the results belong to"),
)


def run(ctx: StepContext) -> StepResult:
    from mlops_ci.report.publish import publish_verdict

    request = gate_request(ctx)
    ctx.platform.connect(api_settings(ctx.platform.name, ctx.options))
    with naming_out_dir():
        outcome = publish_verdict(request, ctx.platform)
    return _result(outcome)


@contextmanager
def naming_out_dir() -> Iterator[None]:
    """No step results to decide on: say which option names their folder."""
    try:
        yield
    except NoStepResults as exc:
        raise UsageError(f"{exc} (or point --out-dir at their results)") from None


def gate_request(ctx: StepContext) -> GateRequest:
    """The gate's options, checked (no token in the config file, a valid comment key, a
    valid policy), with where the step runs."""
    from mlops_ci.report.publish import GateRequest

    opts = ctx.options
    refuse_secrets_in_config(ctx.config, "gate", secret_options(OPTIONS))
    platform, context = ctx.platform, ctx.run_context
    return GateRequest(
        verdict=verdict_request(
            opts,
            commit=context.commit,
            pipeline_url=context.pipeline_url,
            pipeline=platform.pipeline_ordinal(),
            max_chars=platform.max_comment_chars,
            platform_label=PLATFORM_LABELS.get(platform.name, "the platform"),
            need_results=True,
            untrusted=bool(opts.untrusted_results) or platform.results_untrusted(),
        ),
        context=context,
        comment_author=opts.comment_author,
        skip_comment=None if opts.comment else "disabled (--no-comment)",
        skip_status=None if opts.status else "disabled (--no-status)",
        status_name=opts.status_name,
    )


def verdict_request(
    values: Mapping[str, Any],
    *,
    commit: str | None,
    pipeline_url: str | None,
    pipeline: int | None = None,
    max_chars: int | None = None,
    platform_label: str = "the platform",
    need_results: bool = False,
    untrusted: bool = False,
) -> VerdictRequest:
    """The policy and comment options (``POLICY_OPTIONS + COMMENT_OPTIONS``) as a request for
    the verdict: the one way the gate and the ``report`` command read them."""
    from mlops_ci.report.comment import CommentOptions
    from mlops_ci.report.policy import Policy
    from mlops_ci.report.verdict import VerdictRequest

    return VerdictRequest(
        out_dir=values["out_dir"],
        policy=Policy.from_options(values),
        comment=CommentOptions(
            key=comments.check_key(values["comment_key"]),
            title=values["title"],
            report_url=values["report_url"],
            commit=commit,
            pipeline_url=pipeline_url,
            pipeline=pipeline,
            max_chars=max_chars,
            platform_label=platform_label,
            untrusted=untrusted,
        ),
        need_results=need_results,
    )


def _result(outcome: GateOutcome) -> StepResult:
    decision, comment, status = outcome.decision, outcome.comment, outcome.status
    outputs = {
        "verdict": decision.verdict,
        "blocking": str(len(decision.blocking)),
        "warnings": str(len(decision.warnings)),
        "comment-path": str(outcome.paths["comment"]),
        "comment-action": comment.action,
        "status-action": status.action,
    }
    if comment.url and comment.kind != "file":
        outputs["comment-url"] = comment.url
    if outcome.pr:
        outputs["pr"] = str(outcome.pr)
    result = StepResult(
        step="gate",
        status="failed" if decision.verdict == "block" else "passed",
        summary=outcome.verdict.summary,
        outputs=outputs,
        checks=[
            *_step_checks(decision),
            _publish_check("comment", comment),
            _publish_check("status", status),
        ],
        artifacts=[str(path) for path in outcome.paths.values()],
    )
    # The job summary is the comment itself (a fork's reviewers read it there).
    rendered = outcome.verdict.rendered
    fits = len(rendered.full.encode("utf-8")) <= SUMMARY_LIMIT_BYTES
    result.summary_markdown = rendered.full if fits else rendered.body
    return result


def _step_checks(decision) -> list[Check]:
    status_of = {"pass": "passed", "warn": "warning", "block": "failed"}
    checks = []
    for step in decision.steps:
        reasons = [issue.text for issue in step.issues] + [
            f"{c.check.name}: {c.reason}" for c in step.checks if c.outcome in ("block", "warn")
        ]
        checks.append(
            Check(
                name=step.step,
                status=status_of[step.outcome],
                message="; ".join(reasons) or (step.result.summary if step.result else ""),
                blocking=step.outcome == "block",
                details={
                    "step_status": step.result.status if step.result else "missing",
                    "required": step.required,
                    "blocking": [c.label for c in step.checks if c.outcome == "block"],
                    "warnings": [c.label for c in step.checks if c.outcome == "warn"],
                    "ignored": [c.label for c in step.checks if c.outcome == "ignored"],
                    "passed": sum(1 for c in step.checks if c.outcome == "pass"),
                },
            )
        )
    return checks


def _publish_check(what: str, published: Published) -> Check:
    status = "passed" if published.done else "warning" if published.action == "degraded" else "skipped"
    message = published.reason or (
        f"{published.action} {published.url}" if published.url else published.action
    )
    return Check(
        name=f"publish {what}",
        status=status,
        message=message,
        blocking=False,
        details={"action": published.action, "kind": published.kind},
    )


STEP = Step(
    name="gate",
    help="decide over every step result; set the commit status and upsert one PR/MR comment",
    description="Read every step result in --out-dir, apply the gate policy (--require, --block, "
    "--warn, --ignore, --strict), write gate.json, comment.md and JUnit/metrics reports, set a "
    "commit status (a check run on GitHub when the token allows), and create or edit in place "
    "the one PR/MR comment marked <!-- mlops-ci:KEY -->. Exits 1 when the verdict is 'block'. "
    "A token that may not write (a pull request from a fork) never fails the job: the comment "
    "is saved for a trusted workflow to post.",
    options=OPTIONS,
    outputs=OUTPUTS,
    run=run,
)
