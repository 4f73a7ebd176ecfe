"""The gate on GitHub Actions, against a local HTTP server implementing the REST endpoints
(tests/fake_forge.py), which checks every request."""

from __future__ import annotations

import json
import time

from tests.forge_cases import (
    PAT_TOKEN,
    READ_TOKEN,
    REPO,
    SHA,
    WRITE_TOKEN,
    copy_case,
    github_env,
    set_commit,
)

MARKER = "<!-- mlops-ci:default -->"
COMMENTS = rf"^/repos/{REPO}/issues/42/comments$"


def mine(forge):
    return [c for c in forge.github_comments(REPO, 42) if c["body"].startswith(MARKER)]


def assert_clean(forge, token=WRITE_TOKEN):
    """Every request was to a documented endpoint, well-formed, and authenticated."""
    assert forge.problems == []
    for request in forge.requests:
        assert request.headers["authorization"] in (f"token {token}", f"Bearer {token}"), request.path
        assert request.headers["user-agent"].startswith("mlops-ci/")


def test_three_runs_make_one_comment_edited_in_place(forge, gate, tmp_path):
    forge.add_pull_request(REPO, 42, head_sha=SHA)
    forge.add_github_comment(REPO, 42, "Looks good to me")
    out = copy_case("pass", tmp_path / ".mlops-ci")
    env = github_env(forge, tmp_path)

    shas = [SHA, "a" * 40, "b" * 40]
    for run, sha in enumerate(shas):
        set_commit(out, sha)
        event = {"pull_request": {"number": 42, "head": {"sha": sha}}}
        (tmp_path / "event.json").write_text(json.dumps(event))
        ran = gate(["gate", "--out-dir", str(out)], env | {"GITHUB_RUN_ID": str(100 + run)})
        assert ran.code == 0, ran

    comments = forge.github_comments(REPO, 42)
    assert len(comments) == 2 and comments[0]["body"] == "Looks good to me"
    (ours,) = mine(forge)
    assert f"commit `{shas[-1][:7]}`" in ours["body"] and '"pipeline": 102' in ours["body"]
    assert len(forge.calls("POST", COMMENTS)) == 1
    patches = forge.calls("PATCH", r"/issues/comments/\d+$")
    assert len(patches) == 2 and {p.path for p in patches} == {f"/repos/{REPO}/issues/comments/{ours['id']}"}
    assert set(patches[-1].body) == {"body"} and patches[-1].body["body"] == ours["body"]
    # One check run per push, on that push's commit, with the verdict.
    assert [c["head_sha"] for c in forge.check_runs] == shas
    assert {c["conclusion"] for c in forge.check_runs} == {"success"} and forge.statuses == []
    assert forge.check_runs[0]["name"] == "mlops-ci" and forge.check_runs[0]["output"]["summary"].startswith(
        MARKER
    )
    assert_clean(forge)


def test_an_unchanged_comment_is_not_edited_again(forge, gate, tmp_path):
    forge.add_pull_request(REPO, 42, head_sha=SHA)
    out = copy_case("pass", tmp_path / ".mlops-ci")
    env = github_env(forge, tmp_path)
    assert gate(["gate", "--out-dir", str(out), "--no-status"], env).code == 0
    ran = gate(["gate", "--out-dir", str(out), "--no-status"], env)
    assert ran.code == 0 and "comment-action: unchanged" in ran.out
    assert forge.calls("PATCH") == [] and len(forge.calls("POST")) == 1


def test_marker_found_beyond_the_first_page(forge, gate, tmp_path):
    forge.add_pull_request(REPO, 42, head_sha=SHA)
    for i in range(130):
        forge.add_github_comment(REPO, 42, f"comment {i}")
    # Quoting the marker elsewhere in a comment must not make that comment ours.
    forge.add_github_comment(REPO, 42, f"> {MARKER}\nhow do I read this?", login="mlops-ci-bot")
    ours = forge.add_github_comment(REPO, 42, f"{MARKER}\nold verdict", login="mlops-ci-bot")
    for i in range(30):
        forge.add_github_comment(REPO, 42, f"later comment {i}")
    out = copy_case("block", tmp_path / ".mlops-ci")

    ran = gate(["gate", "--out-dir", str(out), "--no-status"], github_env(forge, tmp_path))

    assert ran.code == 1, ran  # the verdict decides the exit
    pages = [r.query.get("page", ["1"])[0] for r in forge.calls("GET", COMMENTS)]
    assert pages == ["1", "2"]
    assert all(r.query["per_page"] == ["100"] for r in forge.calls("GET", COMMENTS))
    assert forge.calls("POST", COMMENTS) == []
    (patch,) = forge.calls("PATCH")
    assert patch.path.endswith(f"/issues/comments/{ours['id']}")
    assert len(mine(forge)) == 1 and "blocked" in mine(forge)[0]["body"]
    assert_clean(forge)


def test_duplicates_from_racing_pipelines_are_removed(forge, gate, tmp_path):
    forge.add_pull_request(REPO, 42, head_sha=SHA)
    first = forge.add_github_comment(REPO, 42, f"{MARKER}\nfrom pipeline A", login="mlops-ci-bot")
    forge.add_github_comment(REPO, 42, f"{MARKER}\nfrom pipeline B", login="mlops-ci-bot")
    out = copy_case("pass", tmp_path / ".mlops-ci")
    assert gate(["gate", "--out-dir", str(out), "--no-status"], github_env(forge, tmp_path)).code == 0
    (ours,) = mine(forge)
    assert ours["id"] == first["id"] and len(forge.calls("DELETE")) == 1


def test_a_later_pipelines_comment_is_not_overwritten_by_an_earlier_one(forge, gate, tmp_path):
    forge.add_pull_request(REPO, 42, head_sha=SHA)
    newer = f'{MARKER}\n<!-- mlops-ci:run {{"commit": "{"c" * 40}", "pipeline": 900}} -->\nnewer verdict'
    forge.add_github_comment(REPO, 42, newer, login="mlops-ci-bot")
    out = copy_case("block", tmp_path / ".mlops-ci")
    ran = gate(["gate", "--out-dir", str(out), "--no-status"], github_env(forge, tmp_path, run_id="800"))
    assert ran.code == 1 and "comment-action: kept-newer" in ran.out
    assert mine(forge)[0]["body"] == newer and forge.calls("PATCH") == []


def test_a_502_is_retried_without_duplicating_the_comment(forge, gate, tmp_path):
    forge.add_pull_request(REPO, 42, head_sha=SHA)
    forge.fail("POST", COMMENTS, 502, body={"message": "Server Error"})
    forge.fail("POST", r"/check-runs$", 502, body={"message": "Server Error"})
    out = copy_case("pass", tmp_path / ".mlops-ci")

    ran = gate(["gate", "--out-dir", str(out)], github_env(forge, tmp_path))

    assert ran.code == 0, ran
    assert [r.status for r in forge.calls("POST", COMMENTS)] == [502, 201]
    # The comment list is read again before the second create.
    assert len(forge.calls("GET", COMMENTS)) == 2
    assert len(mine(forge)) == 1
    assert [r.status for r in forge.calls("POST", r"/check-runs$")] == [502, 201]
    assert "failed (HTTP 502); retrying" in ran.err
    assert_clean(forge)


def test_a_rate_limit_waits_for_the_reset_and_succeeds(forge, gate, tmp_path):
    forge.add_pull_request(REPO, 42, head_sha=SHA)
    reset = int(time.time()) + 1
    forge.fail(
        "GET",
        COMMENTS,
        403,
        headers={"x-ratelimit-limit": "5000", "x-ratelimit-remaining": "0", "x-ratelimit-reset": str(reset)},
        body={
            "message": "API rate limit exceeded for installation ID 1.",
            "documentation_url": "https://docs.github.com",
        },
    )
    out = copy_case("pass", tmp_path / ".mlops-ci")

    ran = gate(["gate", "--out-dir", str(out), "--no-status"], github_env(forge, tmp_path))

    assert ran.code == 0, ran
    limited, retried = forge.calls("GET", COMMENTS)
    assert (limited.status, retried.status) == (403, 200)
    assert retried.at >= reset  # waited for the reset the server announced
    assert ran.err.count("failed (HTTP 403 rate limited); retrying in") == 1  # ours, not PyGithub's
    assert len(mine(forge)) == 1
    assert_clean(forge)


def test_a_secondary_rate_limit_honours_retry_after(forge, gate, tmp_path):
    forge.add_pull_request(REPO, 42, head_sha=SHA)
    forge.fail(
        "POST",
        COMMENTS,
        403,
        headers={"Retry-After": "1"},
        body={"message": "You have exceeded a secondary rate limit."},
    )
    out = copy_case("pass", tmp_path / ".mlops-ci")
    ran = gate(["gate", "--out-dir", str(out), "--no-status"], github_env(forge, tmp_path))
    assert ran.code == 0, ran
    limited, created = forge.calls("POST", COMMENTS)
    assert (limited.status, created.status) == (403, 201) and created.at - limited.at >= 1


def test_a_rate_limit_beyond_the_retry_budget_fails_at_once_with_exit_3(forge, gate, tmp_path):
    forge.add_pull_request(REPO, 42, head_sha=SHA)
    forge.fail(
        "GET",
        COMMENTS,
        403,
        headers={"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(int(time.time()) + 3600)},
        body={"message": "API rate limit exceeded"},
    )
    out = copy_case("pass", tmp_path / ".mlops-ci")
    started = time.monotonic()
    ran = gate(["gate", "--out-dir", str(out), "--retry-timeout", "30"], github_env(forge, tmp_path))
    assert ran.code == 3, ran
    (line,) = [line for line in ran.err.splitlines() if line.startswith("mlops-ci gate: error:")]
    assert "rate limited" in line and "longer than the 30 s retry budget" in line and "until" in line
    assert time.monotonic() - started < 30  # it did not sleep through the budget
    assert len(forge.calls("GET", COMMENTS)) == 1
    # The comment was saved before any API call, for a rerun or a person to read.
    assert (out / "comment.md").read_text().startswith(MARKER)
    assert json.loads((out / "gate.json").read_text())["status"] == "error"


def test_server_errors_until_the_budget_ends_exit_3(forge, gate, tmp_path):
    forge.add_pull_request(REPO, 42, head_sha=SHA)
    forge.fail("GET", COMMENTS, 503, times=100)
    out = copy_case("pass", tmp_path / ".mlops-ci")
    ran = gate(["gate", "--out-dir", str(out), "--retry-timeout", "2"], github_env(forge, tmp_path))
    assert ran.code == 3, ran
    assert "GitHub API at http://127.0.0.1" in ran.err and "HTTP 503" in ran.err
    assert 2 <= len(forge.calls("GET", COMMENTS)) <= 4  # 0.5 s, 1 s backoff within 2 s


def test_fork_with_a_read_only_token_degrades_and_exits_by_the_verdict(forge, gate, tmp_path):
    forge.add_pull_request(REPO, 42, head_sha=SHA)
    for case, expected in (("pass", 0), ("block", 1)):
        out = copy_case(case, tmp_path / case)
        env = github_env(forge, tmp_path, token=READ_TOKEN, fork=True)
        summary = tmp_path / "step-summary.md"
        summary.write_text("")

        ran = gate(["gate", "--out-dir", str(out)], env)

        assert ran.code == expected, ran
        assert "::warning title=mlops-ci gate::comment not published: GitHub refused" in ran.out
        assert "workflow_run" in ran.out
        # The comment is in the job summary and saved, with what a second workflow needs.
        body = (out / "comment.md").read_text()
        assert body.startswith(MARKER) and body.rstrip() in summary.read_text()
        meta = json.loads((out / "comment.json").read_text())
        assert meta["pr"] == "42" and meta["marker"] == MARKER and meta["commit"] == SHA
        assert meta["posted"]["comment"]["action"] == "degraded"
        result = json.loads((out / "gate.json").read_text())
        assert result["outputs"]["comment-action"] == "degraded"
        assert result["outputs"]["verdict"] == ("pass" if case == "pass" else "block")
    # Tried each write once (no retry of a permission error), fell back from check run to status.
    assert [r.status for r in forge.calls("POST")] == [403] * 6
    assert mine(forge) == [] and forge.check_runs == [] and forge.statuses == []
    assert_clean(forge, READ_TOKEN)


def test_workflow_run_posts_a_forks_comment_after_verifying_the_pull_request(forge, gate, tmp_path):
    """The trusted second stage: results downloaded from the fork's run, PR number taken from
    them only because that PR's head is the commit the triggering run built."""
    forge.add_pull_request(REPO, 42, head_sha=SHA)
    first = copy_case("block", tmp_path / "first")
    assert (
        gate(["gate", "--out-dir", str(first)], github_env(forge, tmp_path, token=READ_TOKEN, fork=True)).code
        == 1
    )
    forge.requests.clear()

    event = {
        "workflow_run": {
            "id": 7712345678,
            "event": "pull_request",
            "head_sha": SHA,
            "head_branch": "wider-features",
            "html_url": "https://github.com/acme/census-income/actions/runs/7712345678",
            "pull_requests": [],  # always empty for pull requests from forks
        }
    }
    (tmp_path / "run-event.json").write_text(json.dumps(event))
    env = github_env(forge, tmp_path, pr=None) | {
        "GITHUB_EVENT_NAME": "workflow_run",
        "GITHUB_EVENT_PATH": str(tmp_path / "run-event.json"),
        "GITHUB_SHA": "d" * 40,
        "GITHUB_RUN_ID": "7712345999",
    }
    ran = gate(["gate", "--out-dir", str(first)], env)

    assert ran.code == 1, ran
    assert forge.calls("GET", r"/pulls/42$")
    (ours,) = mine(forge)
    assert ours["body"] == (first / "comment.md").read_text()
    assert "actions/runs/7712345678" in ours["body"]
    # The fork's results are shown, never believed: the check waits for the trusted run.
    assert [(c["head_sha"], c["status"], c.get("conclusion")) for c in forge.check_runs] == [
        (SHA, "in_progress", None)
    ]
    assert "Not verified: produced by the fork's run" in ours["body"]
    assert_clean(forge)


def test_workflow_run_refuses_a_pull_request_whose_head_differs(forge, gate, tmp_path):
    forge.add_pull_request(REPO, 42, head_sha="e" * 40)  # the PR moved on, or the artifact lies
    out = copy_case("pass", tmp_path / ".mlops-ci")
    event = {"workflow_run": {"id": 1, "event": "pull_request", "head_sha": SHA, "pull_requests": []}}
    (tmp_path / "run-event.json").write_text(json.dumps(event))
    env = github_env(forge, tmp_path, pr=None) | {
        "GITHUB_EVENT_NAME": "workflow_run",
        "GITHUB_EVENT_PATH": str(tmp_path / "run-event.json"),
    }
    ran = gate(["gate", "--out-dir", str(out)], env)
    assert ran.code == 0, ran
    assert "comment-action: skipped" in ran.out and "not commenting" in ran.err
    assert forge.calls("POST", COMMENTS) == []


def test_a_personal_token_falls_back_to_a_commit_status(forge, gate, tmp_path):
    forge.add_pull_request(REPO, 42, head_sha=SHA)
    out = copy_case("block", tmp_path / ".mlops-ci")
    ran = gate(
        ["gate", "--out-dir", str(out), "--status-name", "model-gate"],
        github_env(forge, tmp_path, token=PAT_TOKEN),
    )
    assert ran.code == 1, ran
    assert [r.status for r in forge.calls("POST", r"/check-runs$")] == [403]
    (status,) = forge.statuses
    assert status["sha"] == SHA and status["state"] == "failure" and status["context"] == "model-gate"
    assert (
        status["description"].startswith("Blocked: 2 blocking failures") and len(status["description"]) <= 140
    )
    assert status["target_url"] == "https://github.com/acme/census-income/actions/runs/7712345678"
    assert_clean(forge, PAT_TOKEN)


def test_a_body_over_githubs_limit_is_shortened_with_a_pointer(forge, gate, tmp_path):
    forge.add_pull_request(REPO, 42, head_sha=SHA)
    out = copy_case("block", tmp_path / ".mlops-ci")
    validate = json.loads((out / "validate.json").read_text())
    slice_check = next(c for c in validate["checks"] if c["details"].get("kind") == "slice")
    for i in range(700):  # a slice per ZIP code, say
        validate["checks"].append(
            slice_check
            | {"details": slice_check["details"] | {"slice": f"zip={10000 + i}"}, "status": "passed"}
        )
    (out / "validate.json").write_text(json.dumps(validate))

    ran = gate(["gate", "--out-dir", str(out)], github_env(forge, tmp_path))

    assert ran.code == 1, ran
    (ours,) = mine(forge)
    full = (out / "comment.md").read_text()
    assert len(full) > 65_536 and len(ours["body"]) <= 65_535
    assert "is longer than GitHub accepts" in ours["body"] and "actions/runs/7712345678" in ours["body"]
    assert ours["body"].count("<details>") == ours["body"].count("</details>")
    assert "blocked" in ours["body"].splitlines()[2]
    assert_clean(forge)


def test_no_token_degrades_with_a_hint(forge, gate, tmp_path):
    out = copy_case("pass", tmp_path / ".mlops-ci")
    ran = gate(["gate", "--out-dir", str(out)], github_env(forge, tmp_path, token=None))
    assert ran.code == 0
    assert "no GitHub token: set GITHUB_TOKEN" in ran.out
    assert forge.requests == []


def test_a_push_without_a_pull_request_sets_only_the_status(forge, gate, tmp_path):
    out = copy_case("pass", tmp_path / ".mlops-ci")
    ran = gate(["gate", "--out-dir", str(out)], github_env(forge, tmp_path, pr=None))
    assert ran.code == 0, ran
    assert "comment-action: skipped" in ran.out
    assert [c["head_sha"] for c in forge.check_runs] == [SHA]
    assert forge.calls("GET", COMMENTS) == []


def test_an_unreachable_api_exits_3_naming_it(gate, tmp_path):
    from types import SimpleNamespace

    from tests.helpers import free_port

    out = copy_case("pass", tmp_path / ".mlops-ci")
    nowhere = SimpleNamespace(url=f"http://127.0.0.1:{free_port()}")
    ran = gate(["gate", "--out-dir", str(out), "--retry-timeout", "1"], github_env(nowhere, tmp_path))
    assert ran.code == 3, ran
    (line,) = [line for line in ran.err.splitlines() if line.startswith("mlops-ci gate: error:")]
    assert (
        f"GitHub API at {nowhere.url} failed to upsert the comment on #42" in line
        and "ConnectionError" in line
    )
