"""GitHub Actions: context from ``GITHUB_*`` and the event payload, outputs to
``$GITHUB_OUTPUT``, summaries appended to ``$GITHUB_STEP_SUMMARY``, workflow commands for
annotations and masking, and the REST API (through PyGithub) for the pull-request comment
and the check run or commit status.

Pull requests from forks get a read-only ``GITHUB_TOKEN``: writing the comment or status
is refused (403), and the gate degrades instead of failing — the comment is in the step
summary and in ``<out-dir>/comment.md`` for a ``workflow_run`` workflow to show, labelled
as not verified, with the status left pending: only a trusted run that a maintainer
approves, which computes the results again, completes the status (see
examples/github-fork-pr-comments).
"""

from __future__ import annotations

import json
import logging
import sys
import uuid
from collections.abc import Mapping
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops_ci.platforms import comments
from mlops_ci.platforms.api import (
    SECONDARY_RATE_LIMIT_WAIT_S,
    ApiRequestError,
    ApiSession,
    PermissionDenied,
    header,
    wait_from_headers,
)
from mlops_ci.platforms.base import Platform, Published, RetrainRequest, RunContext, Status
from mlops_ci.platforms.masking import redact, register_secret
from mlops_ci.retry import RetryableError

if TYPE_CHECKING:
    from github.Repository import Repository

log = logging.getLogger(__name__)

# Events whose workflow runs the code of the ref it was started on, as pushed by someone with
# write access; pull_request*, issue_comment and workflow_run run or report on other code.
TRUSTED_EVENTS = frozenset({"push", "schedule", "workflow_dispatch", "repository_dispatch", "release"})

DEFAULT_API_URL = "https://api.github.com"
# GitHub rejects bodies over 65,536 characters, and a check run's summary over 65,535; one limit fits both.
MAX_COMMENT_CHARS = 65_535
# A check run's output.summary and output.text are limited to 65,535 characters each.
MAX_CHECK_TEXT = 65_535
MAX_STATUS_DESCRIPTION = 140
MAX_CHECK_TITLE = 255
CHECK_CONCLUSIONS = {"success": "success", "failure": "failure", "neutral": "neutral"}
# Commit statuses have no neutral state; a passing gate with warnings is a success.
STATUS_STATES = {"success": "success", "failure": "failure", "neutral": "success", "pending": "pending"}
# The account Actions' GITHUB_TOKEN writes as (the REST API's user.login).
ACTIONS_BOT_LOGIN = "github-actions[bot]"
FORK_HINT = (
    "a pull request from a fork gets a read-only GITHUB_TOKEN: the comment is saved in the "
    "out-dir for a workflow_run workflow to show as unverified, and a maintainer-approved "
    "trusted run sets the status (see examples/github-fork-pr-comments in mlops-ci)"
)


class GitHubPlatform(Platform):
    name = "github"
    max_comment_chars = MAX_COMMENT_CHARS
    # The token's own login once looked up (see _own_login).
    _login: str | None = None

    # --- context ------------------------------------------------------------------------

    @cached_property
    def _event(self) -> Mapping[str, Any]:
        path = self.env.get("GITHUB_EVENT_PATH")
        if not path:
            return {}
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def event(self) -> Mapping[str, Any]:
        return self._event

    def _workflow_run(self) -> Mapping[str, Any] | None:
        """The triggering run when this is a ``workflow_run`` workflow (the trusted second
        stage that posts a fork's comment)."""
        if self.env.get("GITHUB_EVENT_NAME") != "workflow_run":
            return None
        run = self.event().get("workflow_run")
        return run if isinstance(run, dict) else None

    def context(self) -> RunContext:
        env = self.env
        server = env.get("GITHUB_SERVER_URL", "https://github.com")
        repository = env.get("GITHUB_REPOSITORY")
        actor = env.get("GITHUB_TRIGGERING_ACTOR") or env.get("GITHUB_ACTOR")
        run = self._workflow_run()
        if run is not None:
            numbers = [p.get("number") for p in run.get("pull_requests") or [] if isinstance(p, dict)]
            return RunContext(
                platform="github",
                commit=run.get("head_sha"),
                branch=run.get("head_branch"),
                pr=str(numbers[0]) if numbers and numbers[0] is not None else None,
                pipeline_url=run.get("html_url"),
                actor=actor,
                repository=repository,
                event=run.get("event") or "workflow_run",
                # What a workflow_run stage reports on is the triggering run's code.
                trusted=False,
            )
        pull_request = self.event().get("pull_request") or {}
        # On pull_request events GITHUB_SHA is a merge commit; the head is what was pushed.
        commit = (pull_request.get("head") or {}).get("sha") or env.get("GITHUB_SHA")
        run_id = env.get("GITHUB_RUN_ID")
        pipeline_url = f"{server}/{repository}/actions/runs/{run_id}" if repository and run_id else None
        number = pull_request.get("number")
        return RunContext(
            platform="github",
            commit=commit,
            branch=env.get("GITHUB_HEAD_REF") or env.get("GITHUB_REF_NAME"),
            pr=str(number) if number is not None else None,
            pipeline_url=pipeline_url,
            actor=actor,
            repository=repository,
            event=env.get("GITHUB_EVENT_NAME"),
            trusted=self._trusted(),
        )

    def _trusted(self) -> bool:
        """A reviewed ref: a tag, a protected branch, or the default branch, reached by an
        event that runs that ref's own code (not a pull request's)."""
        env = self.env
        if env.get("GITHUB_EVENT_NAME") not in TRUSTED_EVENTS:
            return False
        ref = env.get("GITHUB_REF", "")
        if ref.startswith("refs/tags/") or env.get("GITHUB_REF_PROTECTED") == "true":
            return True
        default = (self.event().get("repository") or {}).get("default_branch")
        return bool(default) and ref == f"refs/heads/{default}"

    def pipeline_ordinal(self) -> int | None:
        run = self._workflow_run()
        raw = run.get("id") if run is not None else self.env.get("GITHUB_RUN_ID")
        try:
            return int(raw) if raw is not None else None
        except (TypeError, ValueError):
            return None

    def results_untrusted(self) -> bool:
        """A ``workflow_run`` after a fork's pull request reads what the fork's run uploaded."""
        run = self._workflow_run()
        if run is None or run.get("event") not in ("pull_request", "pull_request_review"):
            return False
        head = (run.get("head_repository") or {}).get("full_name")
        return head != self.env.get("GITHUB_REPOSITORY")

    def is_fork_pull_request(self) -> bool:
        pull_request = self.event().get("pull_request") or {}
        head = (pull_request.get("head") or {}).get("repo") or {}
        base = (pull_request.get("base") or {}).get("repo") or {}
        if head.get("fork") is True:
            return True
        return bool(
            head.get("full_name") and base.get("full_name") and head["full_name"] != base["full_name"]
        )

    # --- outputs, summary, workflow commands ----------------------------------------------

    def write_outputs(self, step: str, outputs: Mapping[str, str]) -> None:
        path = self.env.get("GITHUB_OUTPUT")
        if not path or not outputs:
            return
        with open(path, "a", encoding="utf-8") as handle:
            for key, value in outputs.items():
                handle.write(format_output(key, str(value)))

    def write_summary(self, markdown: str) -> None:
        path = self.env.get("GITHUB_STEP_SUMMARY")
        if not path:
            return
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(markdown.rstrip("\n") + "\n\n")

    def annotate(self, level: str, message: str, *, title: str | None = None) -> None:
        command = level if level in ("error", "warning", "notice") else "notice"
        properties = f" title={escape_property(title)}" if title else ""
        _workflow_command(f"::{command}{properties}::{escape_data(redact(message))}")

    def mask(self, secret: str) -> None:
        register_secret(secret)
        if secret and "\n" not in secret:
            # Consumed by the runner, which masks the value in the rest of the job's log.
            _workflow_command(f"::add-mask::{secret}")

    # --- the REST API ---------------------------------------------------------------------

    @property
    def api_url(self) -> str:
        return (self.api.url or self.env.get("GITHUB_API_URL") or DEFAULT_API_URL).rstrip("/")

    def _session(self) -> ApiSession:
        return ApiSession(service=f"GitHub API at {self.api_url}", policy=self.api.retry, classify=classify)

    @cached_property
    def _client(self) -> Any:
        from github import Auth, Github

        return Github(
            base_url=self.api_url,
            auth=Auth.Token(self.api.token or ""),
            # Retries are ours (one bounded budget); PyGithub's own would add up to 10 tries
            # and rate-limit sleeps of up to an hour per request.
            retry=None,
            timeout=max(1, int(self.api.timeout_s)),
            user_agent=_user_agent(),
            per_page=100,
            # PyGithub waits 1 s between writes by default, against GitHub's secondary rate
            # limits on bursts of mutations; a gate makes at most four writes, so a quarter
            # second (its default between any two requests) is enough, and a secondary limit
            # that still hits is retried after its Retry-After.
            seconds_between_writes=0.25,
            lazy=True,
        )

    @cached_property
    def _repo(self) -> Repository:
        return self._client.get_repo(self.env.get("GITHUB_REPOSITORY") or "")

    def _missing_setup(self) -> str | None:
        if not self.api.token:
            return "no GitHub token: set GITHUB_TOKEN (e.g. env: GITHUB_TOKEN: ${{ github.token }}) or the github-token setting"
        if not self.env.get("GITHUB_REPOSITORY"):
            return "GITHUB_REPOSITORY is not set"
        return None

    def _refused(self, what: str, error: PermissionDenied) -> str:
        if self.is_fork_pull_request() or "not accessible by integration" in error.message:
            hint = FORK_HINT
        elif error.status == 401:
            hint = "the token is invalid or expired; check GITHUB_TOKEN / the github-token setting"
        else:
            hint = (
                "give the token `pull-requests: write` and `statuses: write` (or `checks: write`) "
                "in the workflow's permissions"
            )
        return f"GitHub refused to {what} ({error}); {hint}"

    def resolve_pr(self, claimed: str | None) -> tuple[str | None, str | None]:
        context = self.context()
        if context.pr:
            return context.pr, None
        run = self._workflow_run()
        if run is None:
            return None, "not a pull-request event"
        # workflow_run.pull_requests is empty for pull requests from forks: the number comes
        # from the (untrusted) artifact, so it is only used if that pull request's head is
        # the very commit the triggering run built.
        if not claimed or not str(claimed).isdigit():
            return None, "the triggering run was not for a pull request"
        problem = self._missing_setup()
        if problem:
            return None, problem
        session = self._session()
        try:
            pull = session.call(f"read pull request #{claimed}", lambda: self._repo.get_pull(int(claimed)))
            head_sha = session.call(f"read pull request #{claimed}", lambda: pull.head.sha)
        except PermissionDenied as error:
            return None, f"cannot read pull request #{claimed} ({error})"
        if head_sha != run.get("head_sha"):
            return None, (
                f"pull request #{claimed} has head {str(head_sha)[:12]}, not the commit "
                f"{str(run.get('head_sha'))[:12]} the triggering run built; not commenting"
            )
        return str(claimed), None

    def upsert_comment(
        self, key: str, body: str, *, pr: str, artifact: Path, author: str | None = None
    ) -> Published:
        problem = self._missing_setup()
        if problem:
            return Published("degraded", done=False, kind="comment", reason=problem)
        issue = self._repo.get_issue(int(pr))
        pipeline = self.pipeline_ordinal()
        session = self._session()

        def upsert() -> Published:
            # Listed again on every retry: a create that failed with a 5xx may have been
            # stored, and creating again would duplicate the comment.
            existing = [
                comments.Existing(str(c.id), c.body or "", c, _login_of(c)) for c in issue.get_comments()
            ]
            # Only comments our own identity wrote are ours, whatever marker they carry.
            me = self._own_login(session, author) if comments.needs_author(existing, key) else None
            plan = comments.plan_upsert(existing, key=key, body=body, pipeline=pipeline, author=me)
            if plan.action == "create":
                created = issue.create_comment(body)
                target_id, url = str(created.id), created.html_url
                _warn_if_not(me, _login_of(created))
            else:
                if plan.action == "update":
                    plan.target.handle.edit(body)
                target_id, url = plan.target.id, plan.target.handle.html_url
            for duplicate in plan.duplicates:
                duplicate.handle.delete()
            action = {"create": "created", "update": "updated"}.get(plan.action, plan.action)
            return Published(action, done=True, url=url, id=target_id, kind="comment")

        try:
            return session.call(f"upsert the comment on #{pr}", upsert)
        except PermissionDenied as error:
            return Published(
                "degraded", done=False, kind="comment", reason=self._refused("write the comment", error)
            )

    def _own_login(self, session: ApiSession, configured: str | None) -> str:
        """The login the token writes comments as: ``configured`` (the comment-author setting) when
        given, else the authenticated user (``GET /user``). An installation token (Actions'
        GITHUB_TOKEN, a GitHub App's token) has no user: ``GET /user`` answers 403 "Resource
        not accessible by integration", and Actions' token writes as ``github-actions[bot]``;
        a GitHub App writes as ``<app-slug>[bot]`` and needs --comment-author."""
        if configured:
            return configured
        if self._login is None:
            try:
                self._login = session.call("read the token's user", lambda: self._client.get_user().login)
            except PermissionDenied as error:
                if error.status != 403 or "not accessible by integration" not in error.message.lower():
                    raise
                self._login = ACTIONS_BOT_LOGIN
        return self._login

    def set_status(self, status: Status, *, commit: str) -> Published:
        problem = self._missing_setup()
        if problem:
            return Published("degraded", done=False, reason=problem)
        session = self._session()
        repo = self._repo
        # A check run shows the whole report on the PR's Checks tab, but only a GitHub App
        # token (such as Actions' GITHUB_TOKEN with `checks: write`) may create one; a
        # personal token gets 403 and falls back to a commit status.
        output = {
            "title": status.title[:MAX_CHECK_TITLE],
            "summary": status.summary[:MAX_CHECK_TEXT] or status.title,
        }
        extra: dict[str, Any] = {"details_url": status.url} if status.url else {}
        if status.state == "pending":
            # No conclusion: a required check stays unmet until a later run completes it.
            extra["status"] = "in_progress"
        else:
            extra.update(status="completed", conclusion=CHECK_CONCLUSIONS[status.state])
        try:
            check = session.call(
                "create a check run",
                lambda: repo.create_check_run(name=status.name, head_sha=commit, output=output, **extra),
            )
            return Published("created", done=True, url=check.html_url, id=str(check.id), kind="check-run")
        except PermissionDenied as error:
            log.debug("no check run (%s); setting a commit status instead", error)
        description = (
            status.title if len(status.title) <= MAX_STATUS_DESCRIPTION else status.title[:137] + "..."
        )
        target = {"target_url": status.url} if status.url else {}
        try:
            session.call(
                "set the commit status",
                lambda: repo.get_commit(commit).create_status(
                    state=STATUS_STATES[status.state], description=description, context=status.name, **target
                ),
            )
        except PermissionDenied as error:
            return Published(
                "degraded",
                done=False,
                kind="commit-status",
                reason=self._refused("set the commit status", error),
            )
        return Published("created", done=True, kind="commit-status")

    def request_retraining(self, request: RetrainRequest) -> Published:
        """``workflow_dispatch`` (the workflow must declare the inputs ``reason``,
        ``window-start`` and ``window-end``) or ``repository_dispatch`` (event type
        ``request.event_type``, the reason and window in ``client_payload``). The token
        needs ``actions: write`` (workflow_dispatch) or ``contents: write`` (repository_dispatch)."""
        name = request.repository or self.env.get("GITHUB_REPOSITORY")
        if not self.api.token:
            return Published(
                "degraded",
                done=False,
                kind="dispatch",
                reason="no GitHub token: set GITHUB_TOKEN (a token with actions: write) or the github-token setting",
            )
        if not name:
            return Published(
                "degraded",
                done=False,
                kind="dispatch",
                reason="no repository: set GITHUB_REPOSITORY or the retrain-repository setting (OWNER/REPO)",
            )
        session = self._session()
        repo = self._client.get_repo(name, lazy=True)
        what = ""
        try:
            if request.mechanism == "repository_dispatch":
                what = f"send repository_dispatch {request.event_type!r} to {name}"
                session.call(
                    what,
                    lambda: _checked(repo.create_repository_dispatch(request.event_type, request.payload())),
                )
                return Published(
                    "created",
                    done=True,
                    kind="repository_dispatch",
                    id=request.event_type,
                    url=f"{self._html_base()}/{name}/actions",
                )
            if not request.workflow:
                return Published(
                    "degraded",
                    done=False,
                    kind="dispatch",
                    reason="workflow_dispatch needs the retrain-workflow setting (the workflow file, e.g. train.yml)",
                )
            ref = request.ref or session.call(f"read {name}", lambda: repo.default_branch)
            what = f"dispatch workflow {request.workflow} on {name}@{ref}"
            workflow = repo.get_workflow(request.workflow)
            session.call(what, lambda: workflow.create_dispatch(ref, request.inputs(), throw=True))
        except PermissionDenied as error:
            hint = (
                "check retrain-workflow and give the token actions: write"
                if request.mechanism == "workflow_dispatch"
                else "give the token contents: write"
            )
            return Published(
                "degraded", done=False, kind="dispatch", reason=f"GitHub refused to {what} ({error}); {hint}"
            )
        except ApiRequestError as error:
            return Published(
                "degraded",
                done=False,
                kind="dispatch",
                reason=f"GitHub rejected the request to {what} ({error}); the workflow must declare the inputs "
                f"{', '.join(sorted(request.inputs()))} under on.workflow_dispatch.inputs",
            )
        return Published(
            "created",
            done=True,
            kind="workflow_dispatch",
            id=request.workflow,
            url=f"{self._html_base()}/{name}/actions/workflows/{request.workflow}",
        )

    def repository_url(self) -> str | None:
        repository = self.env.get("GITHUB_REPOSITORY")
        return f"{self._html_base()}/{repository}" if repository else None

    def _html_base(self) -> str:
        return self.env.get("GITHUB_SERVER_URL", "https://github.com").rstrip("/")


def _login_of(comment: Any) -> str | None:
    user = getattr(comment, "user", None)
    return getattr(user, "login", None) if user is not None else None


def _warn_if_not(expected: str | None, actual: str | None) -> None:
    """A created comment written as someone other than who we took ourselves to be (a
    GitHub App token without --comment-author) would never be found again: say so."""
    if expected and actual and not comments.same_login(expected, actual):
        log.warning(
            "the comment was written as %s, not %s: set comment-author to %s so later runs edit it "
            "instead of adding new ones",
            actual,
            expected,
            actual,
        )


def _checked(ok: bool) -> bool:
    if not ok:
        raise ApiRequestError(0, "the dispatch was not accepted")
    return ok


def classify(exc: BaseException) -> Exception | None:
    """Map PyGithub and requests errors to retry / permission / request errors."""
    import requests
    from github import GithubException

    if isinstance(exc, (requests.ConnectionError, requests.Timeout)):
        return RetryableError(type(exc).__name__)
    if not isinstance(exc, GithubException):
        return None
    status = exc.status
    headers = exc.headers or {}
    data = exc.data if isinstance(exc.data, dict) else {}
    message = str(data.get("message") or exc.message or "")
    if status >= 500:
        return RetryableError(f"HTTP {status}", wait_s=wait_from_headers(headers))
    if status == 429 or (status == 403 and _is_rate_limit(headers, message)):
        wait = wait_from_headers(headers)
        if wait is None:
            wait = SECONDARY_RATE_LIMIT_WAIT_S
        return RetryableError(f"HTTP {status} rate limited", wait_s=wait)
    if status in (401, 403, 404):
        return PermissionDenied(status, message or "forbidden")
    return ApiRequestError(status, message)


def _is_rate_limit(headers: Mapping[str, str], message: str) -> bool:
    return (
        header(headers, "x-ratelimit-remaining") == "0"
        or header(headers, "Retry-After") is not None
        or "rate limit" in message.lower()
    )


def _user_agent() -> str:
    from mlops_ci import __version__

    return f"mlops-ci/{__version__}"


def _workflow_command(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def escape_data(text: str) -> str:
    """Workflow-command data: %, CR and LF must be escaped or the command breaks."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def format_output(key: str, value: str) -> str:
    """One ``$GITHUB_OUTPUT`` entry; multi-line values use the heredoc form with a
    delimiter that cannot occur in the value."""
    if "\n" not in value and "\r" not in value:
        return f"{key}={value}\n"
    delimiter = f"ghadelimiter_{uuid.uuid4().hex}"
    while delimiter in value:
        delimiter = f"ghadelimiter_{uuid.uuid4().hex}"
    return f"{key}<<{delimiter}\n{value}\n{delimiter}\n"
