"""A local stand-in for the GitHub and GitLab REST endpoints mlops-ci uses, for tests.

A real threaded HTTP server on 127.0.0.1 that keeps comments, notes, check runs and commit
statuses in memory, paginates like the real APIs (``Link`` headers; GitLab's ``x-page`` /
``x-next-page`` too), and checks every request against the documented contract: the
method and path, the authentication header, and the JSON body's fields and types. A
request that breaks the contract gets the error the real API would give and is recorded
in ``problems``, which a test asserts is empty. Every request is recorded in ``requests``.

Failures are injected with ``fail(...)``: the next matching requests get the given status,
headers and body (a 502, a rate limit with reset headers, ...). Tokens decide what a
caller may do: ``Token(write=False)`` is the read-only token of a fork's pull request,
``Token(app=False)`` a personal token that may not create check runs, and
``Token(login="github-actions[bot]", installation=True)`` Actions' GITHUB_TOKEN, an
installation token that has no user: ``GET /user`` answers 403 "Resource not accessible by
integration", as on github.com.

Every comment and note records who wrote it (GitHub's ``user.login``, GitLab's
``author.username``): the token's login. ``GET /user`` (both APIs) answers with that login.
Editing or deleting another account's comment is refused (403) *and* recorded in
``problems``: the real APIs let a token with write access moderate anyone's comment, so a
client that tried would silently take over a comment there; here the attempt is a failure.

Run on its own (``python -m tests.fake_forge --port 8765``) it serves until interrupted,
with ``GET /_fake/requests`` and ``GET /_fake/state`` for inspection (for the act and
gitlab-ci-local runs).
"""

from __future__ import annotations

import argparse
import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

GITHUB_COMMENT_LIMIT = 65_536
GITHUB_CHECK_TEXT_LIMIT = 65_535
GITLAB_NOTE_LIMIT = 1_000_000
HTML_HOST = "https://forge.example"


@dataclass(frozen=True)
class Token:
    login: str = "mlops-ci-bot"
    write: bool = True
    # A GitHub App installation token (Actions' GITHUB_TOKEN) may create check runs; a
    # personal access token may not.
    app: bool = True
    # An installation token has no user: GitHub's GET /user answers 403.
    installation: bool = False


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any
    status: int = 0
    at: float = 0.0
    token: str | None = None


@dataclass
class Fault:
    method: str
    path: re.Pattern
    status: int
    headers: dict[str, str]
    body: Any
    times: int


@dataclass
class PullRequest:
    head_sha: str
    comments: list[dict] = field(default_factory=list)


class FakeForge:
    """GitHub under ``/repos/...``, GitLab under ``/api/v4/...``, on one server."""

    def __init__(self, tokens: dict[str, Token] | None = None) -> None:
        self.tokens = tokens or {}
        self.requests: list[Recorded] = []
        self.problems: list[str] = []
        self.github_issues: dict[tuple[str, int], PullRequest] = {}
        self.gitlab_mrs: dict[tuple[str, int], list[dict]] = {}
        self.check_runs: list[dict] = []
        self.statuses: list[dict] = []
        self.gitlab_statuses: list[dict] = []
        # Dispatch targets: workflows by (repo, file) with their declared inputs (name ->
        # required), branches per repository, GitLab pipeline trigger tokens.
        self.workflows: dict[tuple[str, str], dict[str, bool]] = {}
        self.branches: dict[str, set[str]] = {}
        self.trigger_tokens: dict[str, str] = {}
        self.dispatches: list[dict] = []
        self.pipelines: list[dict] = []
        self._faults: list[Fault] = []
        self._lock = threading.Lock()
        self._next_id = 1000
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle ------------------------------------------------------------------------

    def start(self, port: int = 0) -> FakeForge:
        forge = self

        class Handler(_Handler):
            pass

        Handler.forge = forge
        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def __enter__(self) -> FakeForge:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self._server is not None, "start() the forge first"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    # --- test set-up ----------------------------------------------------------------------

    def add_pull_request(self, repo: str, number: int, *, head_sha: str) -> PullRequest:
        pull = PullRequest(head_sha=head_sha)
        self.github_issues[(repo, number)] = pull
        return pull

    def add_github_comment(self, repo: str, number: int, body: str, *, login: str = "someone") -> dict:
        with self._lock:
            comment = self._github_comment(repo, number, body, login)
            self.github_issues[(repo, number)].comments.append(comment)
        return comment

    def add_merge_request(self, project: str, iid: int) -> list[dict]:
        notes: list[dict] = []
        self.gitlab_mrs[(project, iid)] = notes
        return notes

    def add_gitlab_note(
        self, project: str, iid: int, body: str, *, login: str = "someone", system: bool = False
    ) -> dict:
        with self._lock:
            note = self._gitlab_note(body, login, system=system, iid=iid)
            self.gitlab_mrs[(project, iid)].append(note)
        return note

    def add_workflow(
        self,
        repo: str,
        file: str,
        *,
        inputs: dict[str, bool] | None = None,
        branches: tuple[str, ...] = ("main",),
    ) -> None:
        """A workflow with ``on: workflow_dispatch`` declaring ``inputs`` (name -> required)."""
        self.workflows[(repo, file)] = dict(inputs or {})
        self.branches.setdefault(repo, set()).update(branches)

    def add_trigger_token(self, project: str, token: str, *, branches: tuple[str, ...] = ("main",)) -> None:
        """A GitLab pipeline trigger token of ``project`` (id or path)."""
        self.trigger_tokens[token] = project
        self.branches.setdefault(project, set()).update(branches)

    def fail(
        self,
        method: str,
        path: str,
        status: int,
        *,
        headers: dict[str, str] | None = None,
        body: Any = None,
        times: int = 1,
    ) -> None:
        """The next ``times`` requests ``method`` on a path matching the regex ``path`` get
        this answer instead of the real one."""
        with self._lock:
            self._faults.append(
                Fault(
                    method.upper(),
                    re.compile(path),
                    status,
                    headers or {},
                    body or {"message": "injected"},
                    times,
                )
            )

    # --- queries for assertions ------------------------------------------------------------

    def calls(self, method: str | None = None, path: str | None = None) -> list[Recorded]:
        pattern = re.compile(path) if path else None
        return [
            r
            for r in self.requests
            if (method is None or r.method == method.upper()) and (pattern is None or pattern.search(r.path))
        ]

    def github_comments(self, repo: str, number: int) -> list[dict]:
        return self.github_issues[(repo, number)].comments

    # --- internals ------------------------------------------------------------------------

    def _id(self) -> int:
        self._next_id += 1
        return self._next_id

    def _github_comment(self, repo: str, number: int, body: str, login: str) -> dict:
        comment_id = self._id()
        now = _now()
        return {
            "id": comment_id,
            "node_id": f"IC_{comment_id}",
            "url": f"{self.url}/repos/{repo}/issues/comments/{comment_id}",
            "html_url": f"{HTML_HOST}/{repo}/pull/{number}#issuecomment-{comment_id}",
            "issue_url": f"{self.url}/repos/{repo}/issues/{number}",
            "body": body,
            "user": {
                "login": login,
                "id": abs(hash(login)) % 10**6,
                "type": "Bot" if "bot" in login else "User",
            },
            "created_at": now,
            "updated_at": now,
            "author_association": "NONE",
        }

    def _gitlab_note(self, body: str, login: str, *, system: bool = False, iid: int = 0) -> dict:
        now = _now()
        return {
            "id": self._id(),
            "type": None,
            "body": body,
            "author": {"id": abs(hash(login)) % 10**6, "username": login, "name": login},
            "created_at": now,
            "updated_at": now,
            "system": system,
            "noteable_id": 77,
            "noteable_type": "MergeRequest",
            "noteable_iid": iid,
            "resolvable": False,
        }


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class ApiError(Exception):
    def __init__(
        self, status: int, body: Any, headers: dict[str, str] | None = None, problem: str | None = None
    ):
        super().__init__(str(body))
        self.status = status
        self.body = body
        self.headers = headers or {}
        self.problem = problem


class _Handler(BaseHTTPRequestHandler):
    forge: FakeForge
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the tests read ``forge.requests``."""

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PATCH(self) -> None:
        self._handle("PATCH")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    # --- plumbing -------------------------------------------------------------------------

    def _handle(self, method: str) -> None:
        forge = self.forge
        split = urlsplit(self.path)
        raw_path = split.path
        length = int(self.headers.get("Content-Length") or 0)
        raw_body = self.rfile.read(length) if length else b""
        body: Any = None
        if raw_body:
            try:
                body = json.loads(raw_body)
            except ValueError:
                body = raw_body.decode("utf-8", "replace")
        record = Recorded(
            method=method,
            path=raw_path,
            query=parse_qs(split.query),
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
            at=time.time(),
        )
        authorization = record.headers.get("authorization", "")
        record.token = record.headers.get("private-token") or authorization.partition(" ")[2] or None
        with forge._lock:
            forge.requests.append(record)
        try:
            if raw_path.startswith("/_fake/"):
                status, payload, headers = self._introspect(raw_path)
            else:
                fault = self._fault(method, raw_path)
                if fault is not None:
                    status, payload, headers = fault.status, fault.body, dict(fault.headers)
                elif raw_path.startswith("/api/v4/"):
                    status, payload, headers = GitLabApi(forge, self, record).route(method, raw_path)
                elif raw_path.startswith("/repos/") or raw_path == "/user":
                    status, payload, headers = GitHubApi(forge, self, record).route(method, raw_path)
                else:
                    raise ApiError(
                        404, {"message": "Not Found"}, problem=f"unknown endpoint {method} {raw_path}"
                    )
        except ApiError as error:
            status, payload, headers = error.status, error.body, error.headers
            if error.problem:
                with forge._lock:
                    forge.problems.append(f"{method} {raw_path}: {error.problem}")
        record.status = status
        self._send(status, payload, headers)

    def _fault(self, method: str, path: str) -> Fault | None:
        forge = self.forge
        with forge._lock:
            for fault in forge._faults:
                if fault.method == method and fault.path.search(path) and fault.times > 0:
                    fault.times -= 1
                    return fault
        return None

    def _introspect(self, path: str) -> tuple[int, Any, dict[str, str]]:
        forge = self.forge
        if path == "/_fake/requests":
            return 200, [r.__dict__ for r in forge.requests], {}
        if path == "/_fake/state":
            return (
                200,
                {
                    "github": {f"{k[0]}#{k[1]}": v.comments for k, v in forge.github_issues.items()},
                    "gitlab": {f"{k[0]}!{k[1]}": v for k, v in forge.gitlab_mrs.items()},
                    "check_runs": forge.check_runs,
                    "statuses": forge.statuses,
                    "gitlab_statuses": forge.gitlab_statuses,
                    "dispatches": forge.dispatches,
                    "pipelines": forge.pipelines,
                    "problems": forge.problems,
                },
                {},
            )
        raise ApiError(404, {"message": "Not Found"})

    def _send(self, status: int, payload: Any, headers: dict[str, str]) -> None:
        data = b"" if status == 204 or payload is None else json.dumps(payload).encode()
        self.send_response(status)
        if data:
            self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        if data:
            self.wfile.write(data)


def _paginate(items: list, record: Recorded, *, default: int, base_url: str, path: str, gitlab: bool):
    query = record.query
    try:
        per_page = int((query.get("per_page") or [default])[0])
        page = int((query.get("page") or ["1"])[0])
    except ValueError:
        raise ApiError(400, {"message": "invalid pagination"}, problem="non-numeric per_page/page") from None
    if not 1 <= per_page <= 100 or page < 1:
        raise ApiError(422, {"message": "per_page must be 1-100"}, problem=f"per_page={per_page} page={page}")
    pages = max(1, -(-len(items) // per_page))
    chunk = items[(page - 1) * per_page : page * per_page]
    others = {k: v[0] for k, v in query.items() if k not in ("page", "per_page")}

    def link(number: int) -> str:
        params = "&".join(f"{k}={v}" for k, v in {**others, "per_page": per_page, "page": number}.items())
        return f"{base_url}{path}?{params}"

    links = []
    if page < pages:
        links.append(f'<{link(page + 1)}>; rel="next"')
        links.append(f'<{link(pages)}>; rel="last"')
    if page > 1:
        links.append(f'<{link(1)}>; rel="first"')
        links.append(f'<{link(page - 1)}>; rel="prev"')
    headers = {"Link": ", ".join(links)} if links else {}
    if gitlab:
        headers.update(
            {
                "x-page": str(page),
                "x-per-page": str(per_page),
                "x-next-page": str(page + 1) if page < pages else "",
                "x-prev-page": str(page - 1) if page > 1 else "",
                "x-total": str(len(items)),
                "x-total-pages": str(pages),
            }
        )
    return chunk, headers


def _require_fields(
    body: Any, *, required: dict[str, type | tuple], optional: dict[str, type | tuple] | None = None
):
    optional = optional or {}
    if not isinstance(body, dict):
        raise ApiError(
            400, {"message": "Problems parsing JSON"}, problem=f"body is not a JSON object: {body!r}"
        )
    for name, kind in required.items():
        if name not in body:
            raise ApiError(422, {"message": f"{name} is missing"}, problem=f"missing field {name!r}")
        if not isinstance(body[name], kind):
            raise ApiError(
                422,
                {"message": f"{name} is invalid"},
                problem=f"field {name!r} has type {type(body[name]).__name__}",
            )
    for name, value in body.items():
        if name in required:
            continue
        if name not in optional:
            raise ApiError(422, {"message": f"unknown field {name}"}, problem=f"unexpected field {name!r}")
        if value is not None and not isinstance(value, optional[name]):
            raise ApiError(
                422,
                {"message": f"{name} is invalid"},
                problem=f"field {name!r} has type {type(value).__name__}",
            )


class GitHubApi:
    def __init__(self, forge: FakeForge, handler: _Handler, record: Recorded) -> None:
        self.forge = forge
        self.handler = handler
        self.record = record

    def auth(self) -> Token:
        value = self.record.headers.get("authorization", "")
        scheme, _, token = value.partition(" ")
        if scheme.lower() not in ("token", "bearer") or not token:
            raise ApiError(
                401, {"message": "Requires authentication"}, problem="no GitHub Authorization header"
            )
        self.record.token = token
        if token not in self.forge.tokens:
            raise ApiError(401, {"message": "Bad credentials"})
        if not self.record.headers.get("user-agent"):
            raise ApiError(403, {"message": "User-Agent required"}, problem="no User-Agent")
        return self.forge.tokens[token]

    def route(self, method: str, path: str) -> tuple[int, Any, dict[str, str]]:
        token = self.auth()
        if path == "/user":
            if method != "GET":
                raise ApiError(
                    404, {"message": "Not Found"}, problem=f"unknown GitHub endpoint {method} {path}"
                )
            return self.get_user(token)
        repo_match = re.match(r"^/repos/([^/]+/[^/]+)(/.*)?$", path)
        repo, rest = repo_match.group(1), repo_match.group(2) or ""
        routes = [
            ("GET", r"^/issues/(\d+)/comments$", self.list_comments),
            ("POST", r"^/issues/(\d+)/comments$", self.create_comment),
            ("PATCH", r"^/issues/comments/(\d+)$", self.edit_comment),
            ("DELETE", r"^/issues/comments/(\d+)$", self.delete_comment),
            ("POST", r"^/check-runs$", self.create_check_run),
            ("POST", r"^/statuses/([0-9a-f]{7,40})$", self.create_status),
            ("GET", r"^/commits/([0-9a-f]{7,40})$", self.get_commit),
            ("GET", r"^/pulls/(\d+)$", self.get_pull),
            ("GET", r"^$", self.get_repo),
            ("POST", r"^/actions/workflows/([^/]+)/dispatches$", self.workflow_dispatch),
            ("POST", r"^/dispatches$", self.repository_dispatch),
        ]
        for verb, pattern, handler in routes:
            match = re.match(pattern, rest)
            if match and verb == method:
                return handler(token, repo, *match.groups())
        raise ApiError(404, {"message": "Not Found"}, problem=f"unknown GitHub endpoint {method} {path}")

    def _pull(self, repo: str, number: str) -> PullRequest:
        pull = self.forge.github_issues.get((repo, int(number)))
        if pull is None:
            raise ApiError(404, {"message": "Not Found"}, problem=f"no pull request {repo}#{number}")
        return pull

    def _writable(self, token: Token) -> None:
        if not token.write:
            raise ApiError(
                403,
                {
                    "message": "Resource not accessible by integration",
                    "documentation_url": "https://docs.github.com/rest",
                },
            )

    def get_user(self, token: Token):
        """GET /user: the authenticated user; an installation token has none (403)."""
        if token.installation:
            raise ApiError(
                403,
                {
                    "message": "Resource not accessible by integration",
                    "documentation_url": "https://docs.github.com/rest/users/users#get-the-authenticated-user",
                    "status": "403",
                },
            )
        return (
            200,
            {
                "login": token.login,
                "id": abs(hash(token.login)) % 10**6,
                "type": "Bot" if "bot" in token.login else "User",
                "url": f"{self.forge.url}/users/{token.login}",
                "html_url": f"{HTML_HOST}/{token.login}",
            },
            {},
        )

    def list_comments(self, token: Token, repo: str, number: str):
        pull = self._pull(repo, number)
        chunk, headers = _paginate(
            list(pull.comments),
            self.record,
            default=30,
            base_url=self.forge.url,
            path=self.record.path,
            gitlab=False,
        )
        return 200, chunk, headers

    def create_comment(self, token: Token, repo: str, number: str):
        pull = self._pull(repo, number)
        self._writable(token)
        _require_fields(self.record.body, required={"body": str})
        if len(self.record.body["body"]) > GITHUB_COMMENT_LIMIT:
            raise ApiError(
                422,
                {
                    "message": "Validation Failed",
                    "errors": [
                        {
                            "field": "body",
                            "code": "custom",
                            "message": "body is too long (maximum is 65536 characters)",
                        }
                    ],
                },
                problem="comment body over 65536 characters",
            )
        with self.forge._lock:
            comment = self.forge._github_comment(repo, int(number), self.record.body["body"], token.login)
            pull.comments.append(comment)
        return 201, comment, {}

    def _find(self, repo: str, comment_id: str) -> tuple[PullRequest, dict]:
        for (r, _), pull in self.forge.github_issues.items():
            if r != repo:
                continue
            for comment in pull.comments:
                if comment["id"] == int(comment_id):
                    return pull, comment
        raise ApiError(404, {"message": "Not Found"}, problem=f"no comment {comment_id}")

    def edit_comment(self, token: Token, repo: str, comment_id: str):
        _, comment = self._find(repo, comment_id)
        self._writable(token)
        if comment["user"]["login"] != token.login:
            raise ApiError(
                403,
                {"message": "Must have admin rights to Repository."},
                problem="edited another user's comment",
            )
        _require_fields(self.record.body, required={"body": str})
        if len(self.record.body["body"]) > GITHUB_COMMENT_LIMIT:
            raise ApiError(
                422, {"message": "Validation Failed"}, problem="comment body over 65536 characters"
            )
        comment["body"] = self.record.body["body"]
        comment["updated_at"] = _now()
        return 200, comment, {}

    def delete_comment(self, token: Token, repo: str, comment_id: str):
        pull, comment = self._find(repo, comment_id)
        self._writable(token)
        if comment["user"]["login"] != token.login:
            raise ApiError(
                403,
                {"message": "Must have admin rights to Repository."},
                problem="deleted another user's comment",
            )
        pull.comments.remove(comment)
        return 204, None, {}

    def create_check_run(self, token: Token, repo: str):
        self._writable(token)
        if not token.app:
            raise ApiError(403, {"message": "You must authenticate via a GitHub App."})
        body = self.record.body
        _require_fields(
            body,
            required={"name": str, "head_sha": str},
            optional={
                "status": str,
                "conclusion": str,
                "output": dict,
                "details_url": str,
                "external_id": str,
                "started_at": str,
                "completed_at": str,
                "actions": list,
            },
        )
        if body.get("status", "queued") not in ("queued", "in_progress", "completed"):
            raise ApiError(422, {"message": "Invalid status"}, problem=f"status {body.get('status')!r}")
        conclusions = (
            "action_required",
            "cancelled",
            "failure",
            "neutral",
            "success",
            "skipped",
            "stale",
            "timed_out",
        )
        if body.get("status") == "completed" and body.get("conclusion") not in conclusions:
            raise ApiError(
                422, {"message": "Invalid conclusion"}, problem=f"conclusion {body.get('conclusion')!r}"
            )
        output = body.get("output")
        if output is not None:
            _require_fields(
                output,
                required={"title": str, "summary": str},
                optional={"text": str, "annotations": list, "images": list},
            )
            if len(output["summary"]) > GITHUB_CHECK_TEXT_LIMIT:
                raise ApiError(
                    422, {"message": "Invalid request"}, problem="check-run summary over 65535 characters"
                )
        check_id = self.forge._id()
        check = dict(
            body,
            id=check_id,
            url=f"{self.forge.url}/repos/{repo}/check-runs/{check_id}",
            html_url=f"{HTML_HOST}/{repo}/runs/{check_id}",
        )
        self.forge.check_runs.append(check)
        return 201, check, {}

    def create_status(self, token: Token, repo: str, sha: str):
        self._writable(token)
        body = self.record.body
        _require_fields(
            body, required={"state": str}, optional={"target_url": str, "description": str, "context": str}
        )
        if body["state"] not in ("error", "failure", "pending", "success"):
            raise ApiError(422, {"message": "Validation Failed"}, problem=f"state {body['state']!r}")
        if len(body.get("description") or "") > 140:
            raise ApiError(
                422, {"message": "Validation Failed"}, problem="status description over 140 characters"
            )
        status_id = self.forge._id()
        status = dict(body, id=status_id, sha=sha, url=f"{self.forge.url}/repos/{repo}/statuses/{sha}")
        self.forge.statuses.append(status)
        return 201, status, {}

    def get_commit(self, token: Token, repo: str, sha: str):
        return (
            200,
            {
                "sha": sha,
                "url": f"{self.forge.url}/repos/{repo}/commits/{sha}",
                "html_url": f"{HTML_HOST}/{repo}/commit/{sha}",
            },
            {},
        )

    def get_pull(self, token: Token, repo: str, number: str):
        pull = self._pull(repo, number)
        return (
            200,
            {
                "number": int(number),
                "url": f"{self.forge.url}/repos/{repo}/pulls/{number}",
                "html_url": f"{HTML_HOST}/{repo}/pull/{number}",
                "state": "open",
                "head": {
                    "sha": pull.head_sha,
                    "ref": "feature",
                    "repo": {"full_name": "fork-owner/" + repo.split("/")[1]},
                },
                "base": {"sha": "0" * 40, "ref": "main", "repo": {"full_name": repo}},
            },
            {},
        )

    def get_repo(self, token: Token, repo: str):
        owner, name = repo.split("/", 1)
        return (
            200,
            {
                "id": abs(hash(repo)) % 10**6,
                "name": name,
                "full_name": repo,
                "owner": {"login": owner},
                "default_branch": "main",
                "url": f"{self.forge.url}/repos/{repo}",
                "html_url": f"{HTML_HOST}/{repo}",
            },
            {},
        )

    def workflow_dispatch(self, token: Token, repo: str, workflow: str):
        """POST /repos/{owner}/{repo}/actions/workflows/{workflow_id}/dispatches: 204; the
        workflow must exist, the ref too, and every input must be declared (422 otherwise)."""
        workflow = unquote(workflow)
        declared = self.forge.workflows.get((repo, workflow))
        if declared is None:
            raise ApiError(404, {"message": "Not Found"}, problem=f"no workflow {workflow} in {repo}")
        self._writable(token)
        body = self.record.body
        _require_fields(body, required={"ref": str}, optional={"inputs": dict, "return_run_details": bool})
        ref = body["ref"].removeprefix("refs/heads/")
        if ref not in self.forge.branches.get(repo, set()):
            raise ApiError(
                422, {"message": f"No ref found for: {body['ref']}"}, problem=f"unknown ref {ref!r}"
            )
        inputs = body.get("inputs") or {}
        if len(inputs) > 25:
            raise ApiError(
                422, {"message": "you may only define up to 25 `inputs`"}, problem="over 25 inputs"
            )
        unexpected = sorted(set(inputs) - set(declared))
        if unexpected:
            raise ApiError(
                422,
                {"message": f"Unexpected inputs provided: {json.dumps(unexpected)}"},
                problem=f"undeclared inputs {unexpected}",
            )
        for name, required in declared.items():
            if required and name not in inputs:
                raise ApiError(
                    422, {"message": f"Required input '{name}' not provided"}, problem=f"missing input {name}"
                )
        for name, value in inputs.items():
            if not isinstance(value, (str, int, float, bool)):
                raise ApiError(
                    422,
                    {"message": f"input {name} is invalid"},
                    problem=f"input {name} is {type(value).__name__}",
                )
        self.forge.dispatches.append(
            {"kind": "workflow_dispatch", "repo": repo, "workflow": workflow, "ref": ref, "inputs": inputs}
        )
        return 204, None, {}

    def repository_dispatch(self, token: Token, repo: str):
        """POST /repos/{owner}/{repo}/dispatches: 204; event_type 1-100 characters,
        client_payload at most 10 top-level properties."""
        self._writable(token)
        body = self.record.body
        _require_fields(body, required={"event_type": str}, optional={"client_payload": dict})
        if not 1 <= len(body["event_type"]) <= 100:
            raise ApiError(422, {"message": "Invalid request"}, problem="event_type length")
        payload = body.get("client_payload") or {}
        if len(payload) > 10:
            raise ApiError(
                422,
                {"message": "client_payload can have no more than 10 top-level properties"},
                problem="client_payload over 10 properties",
            )
        self.forge.dispatches.append(
            {
                "kind": "repository_dispatch",
                "repo": repo,
                "event_type": body["event_type"],
                "client_payload": payload,
            }
        )
        return 204, None, {}


class GitLabApi:
    def __init__(self, forge: FakeForge, handler: _Handler, record: Recorded) -> None:
        self.forge = forge
        self.handler = handler
        self.record = record

    def auth(self) -> Token:
        token = self.record.headers.get("private-token")
        if not token:
            problem = (
                "CI_JOB_TOKEN used for notes"
                if self.record.headers.get("job-token")
                else "no PRIVATE-TOKEN header"
            )
            raise ApiError(401, {"message": "401 Unauthorized"}, problem=problem)
        self.record.token = token
        if token not in self.forge.tokens:
            raise ApiError(401, {"message": "401 Unauthorized"})
        return self.forge.tokens[token]

    def route(self, method: str, path: str) -> tuple[int, Any, dict[str, str]]:
        trigger = re.match(r"^/api/v4/projects/([^/]+)/trigger/pipeline$", path)
        if trigger and method == "POST":
            # Authenticated by the trigger token in the body, not by a header.
            return self.trigger_pipeline(unquote(trigger.group(1)))
        token = self.auth()
        if path == "/api/v4/user" and method == "GET":
            return self.current_user(token)
        match = re.match(r"^/api/v4/projects/([^/]+)(/.*)$", path)
        if not match:
            raise ApiError(
                404, {"message": "404 Not Found"}, problem=f"unknown GitLab endpoint {method} {path}"
            )
        project, rest = unquote(match.group(1)), match.group(2)
        routes = [
            ("GET", r"^/merge_requests/(\d+)/notes$", self.list_notes),
            ("POST", r"^/merge_requests/(\d+)/notes$", self.create_note),
            ("PUT", r"^/merge_requests/(\d+)/notes/(\d+)$", self.edit_note),
            ("DELETE", r"^/merge_requests/(\d+)/notes/(\d+)$", self.delete_note),
            ("POST", r"^/statuses/([0-9a-f]{7,40})$", self.create_status),
            ("POST", r"^/pipeline$", self.create_pipeline),
        ]
        for verb, pattern, handler in routes:
            found = re.match(pattern, rest)
            if found and verb == method:
                return handler(token, project, *found.groups())
        raise ApiError(404, {"message": "404 Not Found"}, problem=f"unknown GitLab endpoint {method} {path}")

    def _notes(self, project: str, iid: str) -> list[dict]:
        notes = self.forge.gitlab_mrs.get((project, int(iid)))
        if notes is None:
            raise ApiError(
                404, {"message": "404 Merge Request Not Found"}, problem=f"no merge request {project}!{iid}"
            )
        return notes

    def _writable(self, token: Token) -> None:
        if not token.write:
            raise ApiError(403, {"message": "403 Forbidden"})

    def current_user(self, token: Token):
        """GET /user: the token's user (a project access token's bot user, too)."""
        return (
            200,
            {
                "id": abs(hash(token.login)) % 10**6,
                "username": token.login,
                "name": token.login,
                "state": "active",
                "bot": "bot" in token.login,
                "web_url": f"{self.forge.url}/{token.login}",
            },
            {},
        )

    def list_notes(self, token: Token, project: str, iid: str):
        notes = list(self._notes(project, iid))
        sort = (self.record.query.get("sort") or ["desc"])[0]
        if sort not in ("asc", "desc"):
            raise ApiError(400, {"error": "sort does not have a valid value"}, problem=f"sort={sort}")
        order = (self.record.query.get("order_by") or ["created_at"])[0]
        if order not in ("created_at", "updated_at"):
            raise ApiError(
                400, {"error": "order_by does not have a valid value"}, problem=f"order_by={order}"
            )
        # Creation order is id order here.
        notes.sort(key=lambda n: n["id"], reverse=sort == "desc")
        chunk, headers = _paginate(
            notes, self.record, default=20, base_url=self.forge.url, path=self.record.path, gitlab=True
        )
        return 200, chunk, headers

    def create_note(self, token: Token, project: str, iid: str):
        notes = self._notes(project, iid)
        self._writable(token)
        _require_fields(
            self.record.body, required={"body": str}, optional={"internal": bool, "created_at": str}
        )
        if len(self.record.body["body"]) > GITLAB_NOTE_LIMIT:
            raise ApiError(
                400,
                {"message": {"note": ["is too long (maximum is 1000000 characters)"]}},
                problem="note over 1000000 characters",
            )
        with self.forge._lock:
            note = self.forge._gitlab_note(self.record.body["body"], token.login, iid=int(iid))
            notes.append(note)
        return 201, note, {}

    def _note(self, project: str, iid: str, note_id: str) -> tuple[list[dict], dict]:
        notes = self._notes(project, iid)
        for note in notes:
            if note["id"] == int(note_id):
                return notes, note
        raise ApiError(404, {"message": "404 Not found"}, problem=f"no note {note_id}")

    def edit_note(self, token: Token, project: str, iid: str, note_id: str):
        _, note = self._note(project, iid, note_id)
        self._writable(token)
        if note["author"]["username"] != token.login:
            raise ApiError(403, {"message": "403 Forbidden"}, problem="edited another user's note")
        _require_fields(self.record.body, required={"body": str})
        note["body"] = self.record.body["body"]
        note["updated_at"] = _now()
        return 200, note, {}

    def delete_note(self, token: Token, project: str, iid: str, note_id: str):
        notes, note = self._note(project, iid, note_id)
        self._writable(token)
        if note["author"]["username"] != token.login:
            raise ApiError(403, {"message": "403 Forbidden"}, problem="deleted another user's note")
        notes.remove(note)
        return 204, None, {}

    def create_status(self, token: Token, project: str, sha: str):
        self._writable(token)
        body = self.record.body
        _require_fields(
            body,
            required={"state": str},
            optional={
                "name": str,
                "context": str,
                "target_url": str,
                "description": str,
                "pipeline_id": int,
                "ref": str,
                "coverage": (int, float),
            },
        )
        if body["state"] not in ("pending", "running", "success", "failed", "canceled", "skipped"):
            raise ApiError(400, {"message": "state is invalid"}, problem=f"state {body['state']!r}")
        status = dict(body, id=self.forge._id(), sha=sha, status=body["state"], project=project)
        self.forge.gitlab_statuses.append(status)
        return 201, status, {}

    def _pipeline(self, project: str, ref: str, variables: dict[str, str], source: str) -> dict:
        pipeline_id = self.forge._id()
        pipeline = {
            "id": pipeline_id,
            "iid": len(self.forge.pipelines) + 1,
            "project_id": 77,
            "ref": ref,
            "sha": "0" * 40,
            "status": "created",
            "source": source,
            "web_url": f"{HTML_HOST}/{project}/-/pipelines/{pipeline_id}",
            "created_at": _now(),
        }
        self.forge.pipelines.append(dict(pipeline, project=project, variables=variables))
        return pipeline

    def trigger_pipeline(self, project: str):
        """POST /projects/:id/trigger/pipeline with ``token``, ``ref`` and ``variables``
        (a hash of strings) in the body; an unknown token is a 404, an unknown ref a 400."""
        body = self.record.body
        _require_fields(
            body, required={"token": str, "ref": str}, optional={"variables": dict, "inputs": dict}
        )
        self.record.token = body["token"]
        if self.forge.trigger_tokens.get(body["token"]) != project:
            raise ApiError(404, {"message": "404 Not Found"})
        if body["ref"] not in self.forge.branches.get(project, set()):
            raise ApiError(
                400, {"message": {"base": ["Reference not found"]}}, problem=f"unknown ref {body['ref']!r}"
            )
        variables = body.get("variables") or {}
        for key, value in variables.items():
            if not isinstance(value, str) or not re.match(r"^[A-Za-z0-9_]+$", key):
                raise ApiError(
                    400, {"message": f"variables[{key}] is invalid"}, problem=f"variable {key!r}={value!r}"
                )
        return 201, self._pipeline(project, body["ref"], variables, "trigger"), {}

    def create_pipeline(self, token: Token, project: str):
        """POST /projects/:id/pipeline with ``ref`` and ``variables`` as a list of
        {key, value, variable_type}."""
        self._writable(token)
        body = self.record.body
        _require_fields(body, required={"ref": str}, optional={"variables": list, "inputs": dict})
        if body["ref"] not in self.forge.branches.get(project, set()):
            raise ApiError(
                400, {"message": {"base": ["Reference not found"]}}, problem=f"unknown ref {body['ref']!r}"
            )
        variables = {}
        for item in body.get("variables") or []:
            _require_fields(item, required={"key": str, "value": str}, optional={"variable_type": str})
            variables[item["key"]] = item["value"]
        return 201, self._pipeline(project, body["ref"], variables, "api"), {}


def main() -> None:
    parser = argparse.ArgumentParser(description="Serve the fake GitHub/GitLab API until interrupted.")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument(
        "--token",
        action="append",
        default=[],
        help="TOKEN[:read][:pat][:installation][:login=NAME], repeatable",
    )
    parser.add_argument("--pull", action="append", default=[], help="OWNER/REPO#NUMBER@SHA, repeatable")
    parser.add_argument("--merge-request", action="append", default=[], help="PROJECT!IID, repeatable")
    args = parser.parse_args()
    tokens = {}
    for spec in args.token:
        value, *flags = spec.split(":")
        logins = [flag.partition("=")[2] for flag in flags if flag.startswith("login=")]
        tokens[value] = Token(
            login=logins[-1] if logins else Token.login,
            write="read" not in flags,
            app="pat" not in flags,
            installation="installation" in flags,
        )
    forge = FakeForge(tokens).start(args.port)
    for spec in args.pull:
        repo, _, rest = spec.partition("#")
        number, _, sha = rest.partition("@")
        forge.add_pull_request(repo, int(number), head_sha=sha)
    for spec in args.merge_request:
        project, _, iid = spec.partition("!")
        forge.add_merge_request(project, int(iid))
    print(forge.url, flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        forge.stop()


if __name__ == "__main__":
    main()
