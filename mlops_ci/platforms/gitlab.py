"""GitLab CI: context from ``CI_*``, outputs as a dotenv report (``<out-dir>/<step>.env``),
and the REST API (through python-gitlab) for the merge-request note and the commit status.

``CI_JOB_TOKEN`` cannot write merge-request notes or commit statuses: the gate needs a
project (or group, or personal) access token with the ``api`` scope and at least the
Developer role, stored as a masked CI/CD variable (``GITLAB_TOKEN``). Without one the gate
degrades: the comment stays in ``<out-dir>/comment.md`` and the verdict decides the exit.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops_ci.platforms import comments
from mlops_ci.platforms.api import ApiRequestError, ApiSession, PermissionDenied, wait_from_headers
from mlops_ci.platforms.base import Platform, Published, RetrainRequest, RunContext, Status
from mlops_ci.result import write_text_atomic
from mlops_ci.retry import RetryableError

if TYPE_CHECKING:
    import gitlab

log = logging.getLogger(__name__)

DEFAULT_URL = "https://gitlab.com"
# GitLab's limit for a note body.
MAX_COMMENT_CHARS = 1_000_000
MAX_STATUS_DESCRIPTION = 255
STATUS_STATES = {"success": "success", "failure": "failed", "neutral": "success", "pending": "pending"}
TOKEN_HINT = (
    "create a project access token with the api scope and the Developer role and store it as a "
    "masked CI/CD variable GITLAB_TOKEN (CI_JOB_TOKEN cannot write merge-request notes or commit statuses)"
)


class GitLabPlatform(Platform):
    name = "gitlab"
    max_comment_chars = MAX_COMMENT_CHARS
    pr_noun = "merge request"
    # The token's own username once looked up (see _own_username).
    _username: str | None = None

    def context(self) -> RunContext:
        env = self.env
        return RunContext(
            platform="gitlab",
            commit=env.get("CI_COMMIT_SHA"),
            branch=env.get("CI_MERGE_REQUEST_SOURCE_BRANCH_NAME") or env.get("CI_COMMIT_REF_NAME"),
            pr=env.get("CI_MERGE_REQUEST_IID"),
            pipeline_url=env.get("CI_PIPELINE_URL"),
            actor=env.get("GITLAB_USER_LOGIN"),
            repository=env.get("CI_PROJECT_PATH"),
            event=env.get("CI_PIPELINE_SOURCE"),
            # Merge-request pipelines run the MR's code even when its source branch is
            # protected; otherwise GitLab says whether the ref is protected.
            trusted=env.get("CI_COMMIT_REF_PROTECTED") == "true" and not env.get("CI_MERGE_REQUEST_IID"),
        )

    def pipeline_ordinal(self) -> int | None:
        raw = self.env.get("CI_PIPELINE_ID")
        return int(raw) if raw and raw.isdigit() else None

    def write_outputs(self, step: str, outputs: Mapping[str, str]) -> None:
        """Write ``MLOPS_CI_<STEP>_<OUTPUT>=value`` lines; a job lists the file under
        ``artifacts:reports:dotenv`` and later jobs get the variables."""
        lines = []
        for key, value in outputs.items():
            value = str(value)
            if "\n" in value or "\r" in value:
                # GitLab's dotenv reports cannot carry multi-line values; the JSON result has it.
                log.warning("output %s of %s is multi-line and is left out of the dotenv report", key, step)
                continue
            lines.append(f"{dotenv_name(step, key)}={value}\n")
        write_text_atomic(self.out_dir / f"{step}.env", "".join(lines))

    def write_summary(self, markdown: str) -> None:
        """GitLab has no step summary page; the MR widget reads the JUnit and metrics reports."""

    # --- the REST API ---------------------------------------------------------------------

    def repository_url(self) -> str | None:
        return self.env.get("CI_PROJECT_URL") or None

    @property
    def server_url(self) -> str:
        url = self.api.url or self.env.get("CI_SERVER_URL")
        if not url and self.env.get("CI_API_V4_URL"):
            url = re.sub(r"/api/v4/?$", "", self.env["CI_API_V4_URL"])
        return (url or DEFAULT_URL).rstrip("/")

    @property
    def _mr_project(self) -> str | None:
        # A merge request from a fork lives in the target project, not the pipeline's.
        return (
            self.env.get("CI_MERGE_REQUEST_PROJECT_ID")
            or self.env.get("CI_PROJECT_ID")
            or self.env.get("CI_PROJECT_PATH")
        )

    @property
    def _commit_project(self) -> str | None:
        return self.env.get("CI_PROJECT_ID") or self.env.get("CI_PROJECT_PATH")

    def _session(self) -> ApiSession:
        return ApiSession(
            service=f"GitLab API at {self.server_url}", policy=self.api.retry, classify=self.classify
        )

    @cached_property
    def _client(self) -> gitlab.Gitlab:
        import gitlab
        import requests

        session = requests.Session()
        # python-gitlab's errors carry no headers; keep the last response's so a rate limit's
        # Retry-After / RateLimit-Reset can be honoured.
        session.hooks["response"].append(self._remember_headers)
        return gitlab.Gitlab(
            self.server_url,
            private_token=self.api.token,
            timeout=self.api.timeout_s,
            # Retries are ours (one bounded budget); see mlops_ci.platforms.api.
            retry_transient_errors=False,
            user_agent=_user_agent(),
            session=session,
        )

    def _remember_headers(self, response: Any, *args: Any, **kwargs: Any) -> None:
        self._last_headers = dict(response.headers)

    def classify(self, exc: BaseException) -> Exception | None:
        import gitlab
        import requests

        if isinstance(exc, (requests.ConnectionError, requests.Timeout)):
            return RetryableError(type(exc).__name__)
        if not isinstance(exc, gitlab.exceptions.GitlabError) or exc.response_code is None:
            return None
        status = int(exc.response_code)
        message = str(exc.error_message or "")
        headers = getattr(self, "_last_headers", {})
        if status >= 500 or status == 429:
            return RetryableError(f"HTTP {status}", wait_s=wait_from_headers(headers))
        if status in (401, 403, 404):
            return PermissionDenied(status, message or "forbidden")
        return ApiRequestError(status, message)

    def _missing_setup(self) -> str | None:
        if not self.api.token:
            if self.env.get("CI_JOB_TOKEN"):
                return f"no GitLab token: {TOKEN_HINT}"
            return f"no GitLab token: set GITLAB_TOKEN or the gitlab-token setting; {TOKEN_HINT}"
        return None

    def _refused(self, what: str, error: PermissionDenied) -> str:
        return f"GitLab refused to {what} ({error}); {TOKEN_HINT}"

    def _mr(self, iid: str) -> Any:
        project = self._client.projects.get(self._mr_project, lazy=True)
        return project.mergerequests.get(int(iid), lazy=True)

    def _note_url(self, iid: str, note_id: str) -> str | None:
        base = self.env.get("CI_MERGE_REQUEST_PROJECT_URL") or self.env.get("CI_PROJECT_URL")
        return f"{base}/-/merge_requests/{iid}#note_{note_id}" if base else None

    def upsert_comment(
        self, key: str, body: str, *, pr: str, artifact: Path, author: str | None = None
    ) -> Published:
        problem = self._missing_setup() or (None if self._mr_project else "CI_PROJECT_ID is not set")
        if problem:
            return Published("degraded", done=False, kind="note", reason=problem)
        notes = self._mr(pr).notes
        quiet = {"obey_rate_limit": False}
        pipeline = self.pipeline_ordinal()
        session = self._session()

        def upsert() -> Published:
            # Listed again on every retry: a create that failed with a 5xx may have been
            # stored, and creating again would duplicate the note.
            listed = notes.list(iterator=True, per_page=100, sort="asc", order_by="created_at", **quiet)
            existing = [
                comments.Existing(str(n.id), n.body or "", n, _username_of(n))
                for n in listed
                if not getattr(n, "system", False)
            ]
            # Only notes our own identity wrote are ours, whatever marker they carry.
            me = self._own_username(session, author) if comments.needs_author(existing, key) else None
            plan = comments.plan_upsert(existing, key=key, body=body, pipeline=pipeline, author=me)
            if plan.action == "create":
                note_id = str(notes.create({"body": body}, **quiet).id)
            else:
                note_id = plan.target.id
                if plan.action == "update":
                    notes.update(int(note_id), {"body": body}, **quiet)
            for duplicate in plan.duplicates:
                notes.delete(int(duplicate.id), **quiet)
            action = {"create": "created", "update": "updated"}.get(plan.action, plan.action)
            return Published(action, done=True, url=self._note_url(pr, note_id), id=note_id, kind="note")

        try:
            return session.call(f"upsert the note on !{pr}", upsert)
        except PermissionDenied as error:
            return Published(
                "degraded", done=False, kind="note", reason=self._refused("write the note", error)
            )

    def _own_username(self, session: ApiSession, configured: str | None) -> str:
        """The username the token writes notes as: ``configured`` (the comment-author setting) when
        given, else the current user (``GET /user``; a project or group access token has a
        bot user of its own, e.g. ``project_17_bot_…``)."""
        if configured:
            return configured
        if self._username is None:
            self._username = session.call("read the token's user", self._current_username)
        return self._username

    def _current_username(self) -> str:
        self._client.auth()
        return str(self._client.user.username)

    def set_status(self, status: Status, *, commit: str) -> Published:
        problem = self._missing_setup() or (None if self._commit_project else "CI_PROJECT_ID is not set")
        if problem:
            return Published("degraded", done=False, kind="commit-status", reason=problem)
        session = self._session()
        data: dict[str, Any] = {
            "state": STATUS_STATES[status.state],
            "name": status.name,
            "description": status.title[:MAX_STATUS_DESCRIPTION],
        }
        if status.url:
            data["target_url"] = status.url
        pipeline = self.pipeline_ordinal()
        if pipeline is not None:
            # Attach to this pipeline rather than to whichever pipeline GitLab picks for the sha.
            data["pipeline_id"] = pipeline
        project = self._client.projects.get(self._commit_project, lazy=True)
        try:
            session.call(
                "set the commit status",
                lambda: project.commits.get(commit, lazy=True).statuses.create(data, obey_rate_limit=False),
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
        """Start a pipeline on ``request.ref`` with the reason and window as variables
        (``RETRAIN_REASON``, ``RETRAIN_WINDOW_START``, ...): through the pipeline trigger
        API with a trigger token (or ``CI_JOB_TOKEN``), else the create-pipeline API with
        an API token (Developer role)."""
        project_id = request.repository or self._commit_project
        if not project_id:
            return Published(
                "degraded",
                done=False,
                kind="pipeline",
                reason="no project: set CI_PROJECT_ID or the retrain-repository setting",
            )
        ref = request.ref or self.env.get("CI_DEFAULT_BRANCH")
        if not ref:
            return Published(
                "degraded",
                done=False,
                kind="pipeline",
                reason="no branch to run on: set retrain-ref (CI_DEFAULT_BRANCH is not set)",
            )
        if not request.trigger_token and not self.api.token:
            return Published(
                "degraded",
                done=False,
                kind="pipeline",
                reason="no token: pass a pipeline trigger token (the retrain-trigger-token setting / GITLAB_TRIGGER_TOKEN) "
                "or an API token (GITLAB_TOKEN)",
            )
        if request.trigger_token:
            self.mask(request.trigger_token)
        project = self._client.projects.get(project_id, lazy=True)
        variables = request.variables()
        what = f"start a pipeline of {project_id} on {ref}"
        try:
            if request.trigger_token:
                pipeline = self._session().call(
                    what, lambda: project.trigger_pipeline(ref, request.trigger_token, variables=variables)
                )
            else:
                pipeline = self._session().call(
                    what,
                    lambda: project.pipelines.create(
                        {"ref": ref, "variables": [{"key": k, "value": v} for k, v in variables.items()]}
                    ),
                )
        except PermissionDenied as error:
            return Published(
                "degraded",
                done=False,
                kind="pipeline",
                reason=f"GitLab refused to {what} ({error}); check the token and retrain-ref",
            )
        except ApiRequestError as error:
            return Published(
                "degraded",
                done=False,
                kind="pipeline",
                reason=f"GitLab rejected the request to {what} ({error})",
            )
        return Published(
            "created",
            done=True,
            kind="pipeline",
            id=str(getattr(pipeline, "id", "")),
            url=getattr(pipeline, "web_url", None),
        )


def _username_of(note: Any) -> str | None:
    author = getattr(note, "author", None)
    return author.get("username") if isinstance(author, dict) else None


def _user_agent() -> str:
    from mlops_ci import __version__

    return f"mlops-ci/{__version__}"


def dotenv_name(step: str, key: str) -> str:
    return re.sub(r"[^A-Z0-9_]", "_", f"MLOPS_CI_{step}_{key}".upper())
