"""The gate on GitLab CI, against a local HTTP server implementing the REST endpoints
(tests/fake_forge.py), which checks every request."""

from __future__ import annotations

import json
import time

from tests.forge_cases import GITLAB_READ_TOKEN, GITLAB_TOKEN, SHA, copy_case, gitlab_env, set_commit

MARKER = "<!-- mlops-ci:default -->"
NOTES = r"^/api/v4/projects/17/merge_requests/5/notes$"


def mine(forge):
    return [n for n in forge.gitlab_mrs[("17", 5)] if n["body"].startswith(MARKER)]


def assert_clean(forge, token=GITLAB_TOKEN):
    assert forge.problems == []
    for request in forge.requests:
        assert request.headers.get("private-token") == token, request.path
        assert "job-token" not in request.headers
        assert request.headers["user-agent"].startswith("mlops-ci/")


def test_three_runs_make_one_note_edited_in_place(forge, gate, tmp_path):
    forge.add_merge_request("17", 5)
    forge.add_gitlab_note("17", 5, "Please add a changelog entry")
    forge.add_gitlab_note("17", 5, "added 1 commit", system=True)
    out = copy_case("pass", tmp_path / ".mlops-ci")
    shas = [SHA, "a" * 40, "b" * 40]
    for run, sha in enumerate(shas):
        set_commit(out, sha)
        ran = gate(["gate", "--out-dir", str(out)], gitlab_env(forge, sha=sha, pipeline=str(600 + run)))
        assert ran.code == 0, ran

    (ours,) = mine(forge)
    assert len(forge.gitlab_mrs[("17", 5)]) == 3
    assert f"commit `{shas[-1][:7]}`" in ours["body"]
    assert len(forge.calls("POST", NOTES)) == 1
    puts = forge.calls("PUT", r"/notes/\d+$")
    assert len(puts) == 2 and {p.path for p in puts} == {
        f"/api/v4/projects/17/merge_requests/5/notes/{ours['id']}"
    }
    for listing in forge.calls("GET", NOTES):
        assert listing.query["sort"] == ["asc"] and listing.query["order_by"] == ["created_at"]
    statuses = forge.gitlab_statuses
    assert [(s["sha"], s["state"], s["pipeline_id"]) for s in statuses] == [
        (SHA, "success", 600),
        ("a" * 40, "success", 601),
        ("b" * 40, "success", 602),
    ]
    assert statuses[0]["name"] == "mlops-ci"
    assert statuses[0]["target_url"] == "https://gitlab.example/acme/census-income/-/pipelines/600"
    assert_clean(forge)


def test_marker_found_beyond_the_first_page(forge, gate, tmp_path):
    forge.add_merge_request("17", 5)
    for i in range(120):
        forge.add_gitlab_note("17", 5, f"note {i}")
    ours = forge.add_gitlab_note("17", 5, f"{MARKER}\nold verdict", login="mlops-ci-bot")
    for i in range(50):
        forge.add_gitlab_note("17", 5, f"later {i}")
    out = copy_case("block", tmp_path / ".mlops-ci")

    ran = gate(["gate", "--out-dir", str(out), "--no-status"], gitlab_env(forge))

    assert ran.code == 1, ran
    listings = forge.calls("GET", NOTES)
    assert [r.query.get("page", ["1"])[0] for r in listings] == ["1", "2"]
    assert forge.calls("POST", NOTES) == []
    (put,) = forge.calls("PUT")
    assert put.path.endswith(f"/notes/{ours['id']}") and put.body == {"body": mine(forge)[0]["body"]}
    assert_clean(forge)


def test_a_429_waits_for_ratelimit_reset_and_succeeds(forge, gate, tmp_path):
    forge.add_merge_request("17", 5)
    reset = int(time.time()) + 1
    forge.fail(
        "GET",
        NOTES,
        429,
        headers={"RateLimit-Reset": str(reset), "RateLimit-Remaining": "0"},
        body={"message": "Retry later"},
    )
    forge.fail("POST", NOTES, 502, body={"message": "502 Bad Gateway"})
    out = copy_case("pass", tmp_path / ".mlops-ci")

    ran = gate(["gate", "--out-dir", str(out), "--no-status"], gitlab_env(forge))

    assert ran.code == 0, ran
    statuses = [(r.method, r.status) for r in forge.requests]
    assert statuses == [("GET", 429), ("GET", 200), ("POST", 502), ("GET", 200), ("POST", 201)]
    assert forge.calls("GET", NOTES)[1].at >= reset
    # Our bounded retry did the waiting, not python-gitlab's own (switched off).
    assert ran.err.count("failed (HTTP 429); retrying in") == 1
    assert ran.err.count("failed (HTTP 502); retrying in") == 1
    assert len(mine(forge)) == 1
    assert_clean(forge)


def test_a_429_with_retry_after_is_honoured(forge, gate, tmp_path):
    forge.add_merge_request("17", 5)
    forge.fail("POST", r"/statuses/", 429, headers={"Retry-After": "1"}, body={"message": "Retry later"})
    out = copy_case("pass", tmp_path / ".mlops-ci")
    ran = gate(["gate", "--out-dir", str(out), "--no-comment"], gitlab_env(forge))
    assert ran.code == 0, ran
    limited, done = forge.calls("POST", r"/statuses/")
    assert (limited.status, done.status) == (429, 201) and done.at - limited.at >= 1


def test_only_the_job_token_degrades_and_says_why(forge, gate, tmp_path):
    forge.add_merge_request("17", 5)
    out = copy_case("block", tmp_path / ".mlops-ci")
    ran = gate(["gate", "--out-dir", str(out)], gitlab_env(forge, token=None))
    assert ran.code == 1, ran  # by the verdict
    assert "CI_JOB_TOKEN cannot write merge-request notes" in ran.err
    assert "project access token with the api scope" in ran.err
    assert forge.requests == []
    assert (out / "comment.md").read_text().startswith(MARKER)


def test_a_token_without_write_access_degrades(forge, gate, tmp_path):
    forge.add_merge_request("17", 5)
    out = copy_case("pass", tmp_path / ".mlops-ci")
    ran = gate(["gate", "--out-dir", str(out)], gitlab_env(forge, token=GITLAB_READ_TOKEN))
    assert ran.code == 0, ran
    assert "GitLab refused to write the note (HTTP 403" in ran.err
    assert [r.status for r in forge.calls("POST")] == [403, 403]
    assert mine(forge) == []
    result = json.loads((out / "gate.json").read_text())
    assert (
        result["outputs"]["comment-action"] == "degraded" and result["outputs"]["status-action"] == "degraded"
    )
    assert_clean(forge, GITLAB_READ_TOKEN)


def test_a_branch_pipeline_sets_only_the_status_and_writes_reports(forge, gate, tmp_path):
    out = copy_case("block", tmp_path / ".mlops-ci")
    ran = gate(["gate", "--out-dir", str(out)], gitlab_env(forge, iid=None))
    assert ran.code == 1
    assert [s["state"] for s in forge.gitlab_statuses] == ["failed"]
    assert forge.calls("GET", NOTES) == []
    # Outputs for later jobs (dotenv) and the reports GitLab's MR widget reads.
    assert "MLOPS_CI_GATE_VERDICT=block\n" in (out / "gate.env").read_text()
    assert (out / "gate-junit.xml").is_file() and (out / "gate-metrics.txt").is_file()
