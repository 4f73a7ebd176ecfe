"""The fake server's dispatch endpoints check what they are sent, as GitHub and GitLab do:
a drift test that asserts no problems would fail on a malformed dispatch."""

from __future__ import annotations

import requests

from tests.fake_forge import FakeForge, Token

TOKEN = "ghs_FakeDispatchT0ken1a2s3d4f5g"
READ = "ghs_FakeDispatchReadT0ken6h7j8k"
HEADERS = {"Authorization": f"token {TOKEN}", "User-Agent": "test"}


def test_workflow_dispatch_contract():
    with FakeForge({TOKEN: Token(), READ: Token(write=False)}) as forge:
        forge.add_workflow("o/r", "train.yml", inputs={"reason": True, "window-start": False})
        url = f"{forge.url}/repos/o/r/actions/workflows"
        ok = requests.post(
            f"{url}/train.yml/dispatches", json={"ref": "main", "inputs": {"reason": "x"}}, headers=HEADERS
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
                requests.post(f"{url}/{workflow}/dispatches", json=body, headers=HEADERS).status_code
                == status
            )
        assert len(forge.problems) == len(cases)
        read_only = HEADERS | {"Authorization": f"token {READ}"}
        refused = requests.post(f"{url}/train.yml/dispatches", json={"ref": "main"}, headers=read_only)
        assert refused.status_code == 403 and len(forge.dispatches) == 1


def test_repository_dispatch_contract():
    with FakeForge({TOKEN: Token()}) as forge:
        url = f"{forge.url}/repos/o/r/dispatches"
        assert (
            requests.post(
                url, json={"event_type": "e", "client_payload": {"a": 1}}, headers=HEADERS
            ).status_code
            == 204
        )
        too_many = {str(i): i for i in range(11)}
        assert (
            requests.post(
                url, json={"event_type": "e", "client_payload": too_many}, headers=HEADERS
            ).status_code
            == 422
        )
        assert requests.post(url, json={"event_type": "x" * 101}, headers=HEADERS).status_code == 422
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
