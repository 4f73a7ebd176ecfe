"""`mlops-ci gate`: one verdict over every step result, as a commit status and one PR/MR
comment that is edited in place on every push.

Order matters: inputs are checked before anything is written or posted; the comment and
the reports are written to the out-dir before any API call, so they exist whatever the
API does. A platform that refuses (a read-only token on a fork, no token) degrades to the
saved comment and the job summary: the exit code is the verdict's, not the API's.
"""

from __future__ import annotations

import json
import logging

from mlops_ci.errors import UsageError
from mlops_ci.options import Option
from mlops_ci.platforms import comments
from mlops_ci.platforms.base import ApiSettings, Published, Status
from mlops_ci.result import Check, StepResult, write_text_atomic
from mlops_ci.retry import RetryPolicy
from mlops_ci.steps.base import Output, Step, StepContext

log = logging.getLogger(__name__)

COMMENT_SCHEMA = "mlops-ci/comment/v1"
TOKEN_OPTIONS = ("github-token", "gitlab-token")
# GitHub shows at most 10 annotations of each level per step.
MAX_ANNOTATIONS = 10
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
    Option(
        "github-token",
        "GitHub token with pull-requests: write and statuses: write (or checks: write); prefer "
        "the environment variable to the flag",
        env_aliases=("GITHUB_TOKEN", "GH_TOKEN"),
        metavar="TOKEN",
    ),
    Option(
        "github-api-url",
        "GitHub REST API URL (GitHub Enterprise: https://HOST/api/v3)",
        env_aliases=("GITHUB_API_URL",),
        default="https://api.github.com",
        metavar="URL",
    ),
    Option(
        "gitlab-token",
        "GitLab project or personal access token with the api scope (CI_JOB_TOKEN cannot write "
        "merge-request notes); prefer the environment variable to the flag",
        env_aliases=("GITLAB_TOKEN",),
        metavar="TOKEN",
    ),
    Option(
        "gitlab-url",
        "GitLab server URL (default: CI_SERVER_URL, else CI_API_V4_URL without /api/v4)",
        env_aliases=("CI_SERVER_URL",),
        metavar="URL",
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


def comment_paths(out_dir, key: str):
    """``comment.md`` and ``comment.json`` (``comment-<key>.*`` for another key)."""
    stem = "comment" if key == "default" else "comment-" + key.replace("/", "-")
    return out_dir / f"{stem}.md", out_dir / f"{stem}.json"


def run(ctx: StepContext) -> StepResult:
    from mlops_ci.report.comment import CommentOptions, render_comment
    from mlops_ci.report.policy import Policy, decide
    from mlops_ci.report.results import load_results

    opts = ctx.options
    _refuse_tokens_in_config(ctx)
    key = comments.check_key(opts.comment_key)
    policy = Policy.from_options(opts)
    results = load_results(ctx.out_dir)
    if not results and not policy.require:
        raise UsageError(
            f"no step results in {ctx.out_dir}: run the pipeline's steps first (or point --out-dir at "
            "their results)"
        )

    platform, context = ctx.platform, ctx.run_context
    platform.connect(_api_settings(platform.name, opts))
    untrusted = opts.untrusted_results or platform.results_untrusted()
    decision = decide(results, policy, commit=context.commit)
    pipeline_url = context.pipeline_url or _first(results, "pipeline_url")
    rendered = render_comment(
        decision,
        CommentOptions(
            key=key,
            title=opts.title,
            pipeline=platform.pipeline_ordinal(),
            commit=context.commit,
            pipeline_url=pipeline_url,
            report_url=opts.report_url,
            max_chars=platform.max_comment_chars,
            platform_label={"github": "GitHub", "gitlab": "GitLab"}.get(platform.name, "the platform"),
            untrusted=untrusted,
        ),
    )
    summary = decision.summary()
    claimed_pr = context.pr or _first(results, "pr")

    # Everything on disk first: the artifacts exist whatever the API does next.
    paths = _write_artifacts(ctx.out_dir, key, decision, rendered)
    meta = {
        "schema": COMMENT_SCHEMA,
        "key": key,
        "marker": comments.marker(key),
        "platform": platform.name,
        "repository": context.repository or _first(results, "repository"),
        "pr": claimed_pr,
        "commit": context.commit,
        "pipeline": platform.pipeline_ordinal(),
        "pipeline_url": pipeline_url,
        "verdict": decision.verdict,
        "trusted": not untrusted,
        "summary": summary,
        "body": paths["comment"].name,
        "shortened_to_post": rendered.shortened,
    }
    write_text_atomic(paths["meta"], json.dumps(meta, indent=2) + "\n")

    comment = _post_comment(platform, opts, key, rendered.body, claimed_pr, paths["comment"])
    status = _set_status(
        platform,
        opts,
        key,
        decision,
        summary,
        rendered.body,
        pipeline_url,
        context.commit,
        untrusted=untrusted,
    )
    _annotate(platform, decision, comment, status)
    meta["posted"] = {"comment": _published_dict(comment), "status": _published_dict(status)}
    write_text_atomic(paths["meta"], json.dumps(meta, indent=2) + "\n")
    log.info("gate: %s", summary)
    _log_published("comment", comment)
    _log_published("status", status)

    outputs = {
        "verdict": decision.verdict,
        "blocking": str(len(decision.blocking)),
        "warnings": str(len(decision.warnings)),
        "comment-path": str(paths["comment"]),
        "comment-action": comment.action,
        "status-action": status.action,
    }
    if comment.url and comment.kind != "file":
        outputs["comment-url"] = comment.url
    if claimed_pr:
        outputs["pr"] = str(claimed_pr)
    result = StepResult(
        step="gate",
        status="failed" if decision.verdict == "block" else "passed",
        summary=summary,
        outputs=outputs,
        checks=[
            *_step_checks(decision),
            _publish_check("comment", comment),
            _publish_check("status", status),
        ],
        artifacts=[str(path) for path in paths.values()],
    )
    # The job summary is the comment itself (a fork's reviewers read it there).
    fits = len(rendered.full.encode("utf-8")) <= SUMMARY_LIMIT_BYTES
    result.summary_markdown = rendered.full if fits else rendered.body
    return result


def _refuse_tokens_in_config(ctx: StepContext) -> None:
    for name in TOKEN_OPTIONS:
        if name in ctx.config.section("gate"):
            variable = "GITHUB_TOKEN" if name.startswith("github") else "GITLAB_TOKEN"
            raise UsageError(
                f"{name} must not be in {ctx.config.origin} (a file that gets committed); pass it "
                f"in the environment: {variable}"
            )


def _api_settings(platform: str, opts) -> ApiSettings:
    retry = RetryPolicy(budget_s=opts.retry_timeout)
    if platform == "github":
        return ApiSettings(token=opts.github_token, url=opts.github_api_url, retry=retry)
    if platform == "gitlab":
        return ApiSettings(token=opts.gitlab_token, url=opts.gitlab_url, retry=retry)
    return ApiSettings(retry=retry)


def _write_artifacts(out_dir, key: str, decision, rendered) -> dict:
    from mlops_ci.report.reports import junit_xml, metrics_text

    comment_md, comment_json = comment_paths(out_dir, key)
    paths = {
        "comment": comment_md,
        "meta": comment_json,
        "junit": out_dir / "gate-junit.xml",
        "metrics": out_dir / "gate-metrics.txt",
    }
    write_text_atomic(paths["comment"], rendered.full)
    write_text_atomic(paths["junit"], junit_xml(decision))
    write_text_atomic(paths["metrics"], metrics_text(decision))
    return paths


def _post_comment(platform, opts, key: str, body: str, claimed_pr, artifact) -> Published:
    if not opts.comment:
        return Published("skipped", done=False, reason="disabled (--no-comment)")
    pr, why = platform.resolve_pr(claimed_pr)
    if not pr:
        return Published("skipped", done=False, reason=why)
    return platform.upsert_comment(key, body, pr=pr, artifact=artifact, author=opts.comment_author)


def _set_status(platform, opts, key, decision, summary, body, url, commit, *, untrusted: bool) -> Published:
    if not opts.status:
        return Published("skipped", done=False, reason="disabled (--no-status)")
    if not commit:
        return Published("skipped", done=False, reason="no commit known")
    state = {"pass": "success", "warn": "neutral", "block": "failure"}[decision.verdict]
    name = opts.status_name or ("mlops-ci" if key == "default" else f"mlops-ci/{key}")
    title = summary[0].upper() + summary[1:]
    if untrusted:
        # Whatever the untrusted results say, they never turn a required status green.
        state = "pending"
        title = f"Awaiting a maintainer's approval of the trusted run (the fork's run reports: {summary})"
    return platform.set_status(
        Status(name=name, state=state, title=title, summary=body, url=url), commit=commit
    )


def _first(results, field: str):
    return next((r.context.get(field) for r in results if r.context.get(field)), None)


def _published_dict(published: Published) -> dict:
    return {
        "action": published.action,
        "done": published.done,
        "url": published.url,
        "id": published.id,
        "kind": published.kind,
        "reason": published.reason,
    }


def _log_published(what: str, published: Published) -> None:
    if published.action == "degraded":
        log.warning("gate: %s not published: %s", what, published.reason)
    elif published.done:
        where = f" ({published.url})" if published.url else ""
        log.info("gate: %s %s%s", what, published.action, where)
    else:
        log.info("gate: %s %s: %s", what, published.action, published.reason)


def _annotate(platform, decision, comment: Published, status: Published) -> None:
    for level, findings in (("error", decision.blocking), ("warning", decision.warnings)):
        for finding in findings[:MAX_ANNOTATIONS]:
            label = finding.check.label if finding.check else finding.step
            text = (finding.check.check.message or finding.check.reason) if finding.check else finding.text
            platform.annotate(level, f"{label}: {text}", title=f"mlops-ci gate: {level}")
        if len(findings) > MAX_ANNOTATIONS:
            platform.annotate(level, f"... and {len(findings) - MAX_ANNOTATIONS} more; see the comment")
    for what, published in (("comment", comment), ("status", status)):
        if published.action == "degraded":
            platform.annotate("warning", f"{what} not published: {published.reason}", title="mlops-ci gate")


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
