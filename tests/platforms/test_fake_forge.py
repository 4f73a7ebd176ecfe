"""The fake GitHub/GitLab server checks what it is sent: a request that breaks the contract
is refused the way the real API would and recorded as a problem (so the gate's and the
drift step's tests, which assert there were none, can fail)."""

from __future__ import annotations

import subprocess
import sys

import requests

from tests.fake_forge import FakeForge, Token
from tests.forge_cases import GITLAB_TOKEN, READ_TOKEN, REPO, SHA, WRITE_TOKEN
from tests.helpers import REPO as REPO_ROOT

GITHUB = {"Authorization": f"token {WRITE_TOKEN}", "User-Agent": "test"}
DISPATCH_TOKEN = "ghs_FakeDispatchT0ken1a2s3d4f5g"
DISPATCH_READ = "ghs_FakeDispatchReadT0ken6h7j8k"
DISPATCH_HEADERS = {"Authorization": f"token {DISPATCH_TOKEN}", "User-Agent": "test"}


def test_malformed_github_requests_are_refused_and_recorded(forge):
    forge.add_pull_request(REPO, 42, head_sha=SHA)
    url = f"{forge.url}/repos/{REPO}"
    assert requests.post(f"{url}/issues/42/comments", json={"body": "x"}).status_code == 401
    assert (
        requests.post(f"{url}/issues/42/comments", json={"body": "x", "extra": 1}, headers=GITHUB).status_code
        == 422
    )
    assert (
        requests.post(f"{url}/issues/42/comments", json={"body": "x" * 70_000}, headers=GITHUB).status_code
        == 422
    )
    assert requests.post(f"{url}/statuses/{SHA}", json={"state": "green"}, headers=GITHUB).status_code == 422
    assert requests.get(f"{url}/issues/42/comments?per_page=500", headers=GITHUB).status_code == 422
    assert requests.get(f"{url}/no/such/thing", headers=GITHUB).status_code == 404
    assert len(forge.problems) == 6
    read_only = GITHUB | {"Authorization": f"Bearer {READ_TOKEN}"}
    assert (
        requests.post(f"{url}/issues/42/comments", json={"body": "x"}, headers=read_only).status_code == 403
    )
    assert forge.github_comments(REPO, 42) == []


def test_github_pagination_links_point_back_at_the_server(forge):
    forge.add_pull_request(REPO, 42, head_sha=SHA)
    for i in range(5):
        forge.add_github_comment(REPO, 42, f"c{i}")
    first = requests.get(f"{forge.url}/repos/{REPO}/issues/42/comments?per_page=2", headers=GITHUB)
    assert [c["body"] for c in first.json()] == ["c0", "c1"]
    following = requests.get(first.links["next"]["url"], headers=GITHUB)
    assert [c["body"] for c in following.json()] == ["c2", "c3"]
    assert first.links["last"]["url"].startswith(forge.url) and first.json()[0]["url"].startswith(forge.url)


def test_gitlab_wants_a_private_token_and_paginates_with_x_next_page(forge):
    forge.add_merge_request("17", 5)
    for i in range(3):
        forge.add_gitlab_note("17", 5, f"n{i}")
    url = f"{forge.url}/api/v4/projects/17/merge_requests/5/notes"
    assert requests.get(url, headers={"JOB-TOKEN": "job"}).status_code == 401
    assert forge.problems == ["GET /api/v4/projects/17/merge_requests/5/notes: CI_JOB_TOKEN used for notes"]
    page = requests.get(url + "?per_page=2&sort=asc", headers={"PRIVATE-TOKEN": GITLAB_TOKEN})
    assert page.headers["x-next-page"] == "2" and page.headers["x-total"] == "3"
    assert [n["body"] for n in page.json()] == ["n0", "n1"]


def test_the_fake_runs_standalone_for_ci_runs(tmp_path):
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.fake_forge", "--token", "tok123456", "--pull", f"{REPO}#7@{SHA}"],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        url = process.stdout.readline().strip()
        state = requests.get(f"{url}/_fake/state", timeout=5).json()
        assert state["github"] == {f"{REPO}#7": []} and state["problems"] == []
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_workflow_dispatch_contract():
    with FakeForge({DISPATCH_TOKEN: Token(), DISPATCH_READ: Token(write=False)}) as forge:
        forge.add_workflow("o/r", "train.yml", inputs={"reason": True, "window-start": False})
        url = f"{forge.url}/repos/o/r/actions/workflows"
        ok = requests.post(
            f"{url}/train.yml/dispatches",
            json={"ref": "main", "inputs": {"reason": "x"}},
            headers=DISPATCH_HEADERS,
        )
        assert ok.status_code == 204 and forge.dispatches[0]["inputs"] == {"reason": "x"}
        cases = [
            ("other.yml", {"ref": "main"}, 404),
            ("train.yml", {"ref": "nope", "inputs": {"reason": "x"}}, 422),
            ("train.yml", {"ref": "main", "inputs": {"reason": "x", "extra": "y"}}, 422),
            ("train.yml", {"ref": "main", "inputs": {}}, 422),
            ("train.yml", {"ref": "main", "inputs": {"reason": ["x"]}}, 422),
            ("train.yml", {"inputs": {"reason": "x"}}, 422),
        ]
        for workflow, body, status in cases:
            assert (
                requests.post(f"{url}/{workflow}/dispatches", json=body, headers=DISPATCH_HEADERS).status_code
                == status
            )
        assert len(forge.problems) == len(cases)
        read_only = DISPATCH_HEADERS | {"Authorization": f"token {DISPATCH_READ}"}
        refused = requests.post(f"{url}/train.yml/dispatches", json={"ref": "main"}, headers=read_only)
        assert refused.status_code == 403 and len(forge.dispatches) == 1


def test_repository_dispatch_contract():
    with FakeForge({DISPATCH_TOKEN: Token()}) as forge:
        url = f"{forge.url}/repos/o/r/dispatches"
        assert (
            requests.post(
                url, json={"event_type": "e", "client_payload": {"a": 1}}, headers=DISPATCH_HEADERS
            ).status_code
            == 204
        )
        too_many = {str(i): i for i in range(11)}
        assert (
            requests.post(
                url, json={"event_type": "e", "client_payload": too_many}, headers=DISPATCH_HEADERS
            ).status_code
            == 422
        )
        assert requests.post(url, json={"event_type": "x" * 101}, headers=DISPATCH_HEADERS).status_code == 422
        assert len(forge.problems) == 2 and len(forge.dispatches) == 1


def test_gitlab_trigger_and_pipeline_contract():
    with FakeForge({"glpat-FakeWriteT0ken": Token(), "glpat-FakeReadT0ken9": Token(write=False)}) as forge:
        forge.add_trigger_token("77", "glptt-FakeTriggerT0ken")
        url = f"{forge.url}/api/v4/projects/77"
        body = {"token": "glptt-FakeTriggerT0ken", "ref": "main", "variables": {"RETRAIN_REASON": "x"}}
        created = requests.post(f"{url}/trigger/pipeline", json=body)
        assert created.status_code == 201 and created.json()["web_url"].endswith(
            f"/pipelines/{created.json()['id']}"
        )
        assert requests.post(f"{url}/trigger/pipeline", json=body | {"token": "wrong"}).status_code == 404
        assert requests.post(f"{url}/trigger/pipeline", json=body | {"ref": "nope"}).status_code == 400
        assert (
            requests.post(f"{url}/trigger/pipeline", json=body | {"variables": {"A": 1}}).status_code == 400
        )
        api = {"ref": "main", "variables": [{"key": "RETRAIN_REASON", "value": "x"}]}
        assert (
            requests.post(
                f"{url}/pipeline", json=api, headers={"PRIVATE-TOKEN": "glpat-FakeWriteT0ken"}
            ).status_code
            == 201
        )
        assert (
            requests.post(
                f"{url}/pipeline", json=api, headers={"PRIVATE-TOKEN": "glpat-FakeReadT0ken9"}
            ).status_code
            == 403
        )
        assert (
            requests.post(
                f"{url}/pipeline",
                json={"ref": "main", "variables": {"A": "b"}},
                headers={"PRIVATE-TOKEN": "glpat-FakeWriteT0ken"},
            ).status_code
            == 422
        )
        assert len(forge.pipelines) == 2 and len(forge.problems) == 3
