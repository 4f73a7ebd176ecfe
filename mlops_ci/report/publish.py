"""The gate's publication: the verdict written to the out-dir (the comment, its metadata,
JUnit and metrics reports), then posted through the platform as one PR/MR comment and a
commit status, with annotations for what blocks or warns.

Order matters: the files are written before any API call, so they exist whatever the API
does. A platform that refuses (a read-only token on a fork, no token) degrades to the
saved comment: what the API did is reported, it never changes the verdict.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlops_ci.platforms import comments
from mlops_ci.platforms.base import Platform, Published, RunContext, Status
from mlops_ci.report.policy import Decision
from mlops_ci.report.reports import junit_xml, metrics_text
from mlops_ci.report.verdict import Verdict, VerdictRequest, judge
from mlops_ci.result import write_text_atomic

log = logging.getLogger(__name__)

COMMENT_SCHEMA = "mlops-ci/comment/v1"
# GitHub shows at most 10 annotations of each level per step.
MAX_ANNOTATIONS = 10
STATUS_STATES = {"pass": "success", "warn": "neutral", "block": "failure"}


@dataclass(frozen=True)
class GateRequest:
    """What to decide and where to publish it. ``skip_comment`` / ``skip_status``: why the
    comment or the status is not to be published (None: publish it)."""

    verdict: VerdictRequest
    context: RunContext
    skip_comment: str | None = None
    skip_status: str | None = None
    status_name: str | None = None
    # The login the token writes comments as, when the platform cannot say (a GitHub App).
    comment_author: str | None = None

    @property
    def key(self) -> str:
        return self.verdict.comment.key


@dataclass(frozen=True)
class GateOutcome:
    verdict: Verdict
    comment: Published
    status: Published
    # comment (markdown), meta (its JSON metadata), junit, metrics.
    paths: dict[str, Path]
    pr: str | None

    @property
    def decision(self) -> Decision:
        return self.verdict.decision


def comment_paths(out_dir: Path, key: str) -> tuple[Path, Path]:
    """``comment.md`` and ``comment.json`` (``comment-<key>.*`` for another key)."""
    stem = "comment" if key == "default" else "comment-" + key.replace("/", "-")
    return out_dir / f"{stem}.md", out_dir / f"{stem}.json"


def publish_verdict(request: GateRequest, platform: Platform) -> GateOutcome:
    """Decide over the out-dir's results, write the files, then post the comment and the
    status through ``platform`` (connected to its API already)."""
    verdict = judge(request.verdict)
    context = request.context
    claimed_pr = context.pr or verdict.recorded("pr")
    paths = _write_artifacts(request.verdict.out_dir, request.key, verdict)
    meta: dict[str, Any] = {
        "schema": COMMENT_SCHEMA,
        "key": request.key,
        "marker": comments.marker(request.key),
        "platform": platform.name,
        "repository": context.repository or verdict.recorded("repository"),
        "pr": claimed_pr,
        "commit": context.commit,
        "pipeline": verdict.comment.pipeline,
        "pipeline_url": verdict.comment.pipeline_url,
        "verdict": verdict.decision.verdict,
        "trusted": not verdict.comment.untrusted,
        "summary": verdict.summary,
        "body": paths["comment"].name,
        "shortened_to_post": verdict.rendered.shortened,
    }
    write_text_atomic(paths["meta"], json.dumps(meta, indent=2) + "\n")

    comment = _post_comment(platform, request, claimed_pr, verdict.rendered.body, paths["comment"])
    status = _set_status(platform, request, verdict)
    _annotate(platform, verdict.decision, comment, status)
    meta["posted"] = {"comment": _published_dict(comment), "status": _published_dict(status)}
    write_text_atomic(paths["meta"], json.dumps(meta, indent=2) + "\n")
    log.info("gate: %s", verdict.summary)
    _log_published("comment", comment)
    _log_published("status", status)
    return GateOutcome(verdict, comment, status, paths, claimed_pr)


def _write_artifacts(out_dir: Path, key: str, verdict: Verdict) -> dict[str, Path]:
    comment_md, comment_json = comment_paths(out_dir, key)
    paths = {
        "comment": comment_md,
        "meta": comment_json,
        "junit": out_dir / "gate-junit.xml",
        "metrics": out_dir / "gate-metrics.txt",
    }
    write_text_atomic(paths["comment"], verdict.rendered.full)
    write_text_atomic(paths["junit"], junit_xml(verdict.decision))
    write_text_atomic(paths["metrics"], metrics_text(verdict.decision))
    return paths


def _post_comment(
    platform: Platform, request: GateRequest, claimed_pr, body: str, artifact: Path
) -> Published:
    if request.skip_comment:
        return Published("skipped", done=False, reason=request.skip_comment)
    pr, why = platform.resolve_pr(claimed_pr)
    if not pr:
        return Published("skipped", done=False, reason=why)
    return platform.upsert_comment(request.key, body, pr=pr, artifact=artifact, author=request.comment_author)


def _set_status(platform: Platform, request: GateRequest, verdict: Verdict) -> Published:
    if request.skip_status:
        return Published("skipped", done=False, reason=request.skip_status)
    commit = request.context.commit
    if not commit:
        return Published("skipped", done=False, reason="no commit known")
    key = request.key
    name = request.status_name or ("mlops-ci" if key == "default" else f"mlops-ci/{key}")
    summary = verdict.summary
    state, title = STATUS_STATES[verdict.decision.verdict], summary[0].upper() + summary[1:]
    if verdict.comment.untrusted:
        # Whatever untrusted results say, they never turn a required status green.
        state = "pending"
        title = f"Awaiting a maintainer's approval of the trusted run (the fork's run reports: {summary})"
    status = Status(
        name=name,
        state=state,
        title=title,
        summary=verdict.rendered.body,
        url=verdict.comment.pipeline_url,
    )
    return platform.set_status(status, commit=commit)


def _published_dict(published: Published) -> dict[str, Any]:
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


def _annotate(platform: Platform, decision: Decision, comment: Published, status: Published) -> None:
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
