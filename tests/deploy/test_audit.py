"""The audit trail (mlops_ci/deploy/audit.py): the hash chain of the deployment log, and
what the trail writes where."""

from __future__ import annotations

import json

import pytest

from mlops_ci.deploy import audit


@pytest.mark.parametrize("text", ["", "x"])
def test_chain_detects_edits(text):
    first = audit.chain_line(audit.DeploymentRecord("registry", "promote", "succeeded", model="m"), None)
    second = audit.chain_line(audit.DeploymentRecord("registry", "promote", "succeeded", model="m"), first)
    assert audit.verify_chain(first + "\n" + second + "\n") is None
    edited = first.replace('"model":"m"', '"model":"n' + text + '"')
    assert "line 2 does not follow line 1" in audit.verify_chain(edited + "\n" + second + "\n")
    assert "line 1 does not follow" in audit.verify_chain(second + "\n")


def no_registry():
    raise AssertionError("the registry must not be asked")


def test_a_record_without_a_model_version_stays_local(tmp_path):
    trail = audit.AuditTrail(tmp_path / "out" / "deployments.jsonl", no_registry, "unused", {"commit": "c0"})
    first = audit.DeploymentRecord("kubernetes", "deploy", "succeeded", model="m", context=trail.context)
    second = audit.DeploymentRecord("docker", "rollback", "failed", version="3", context=trail.context)
    trail.record(first)
    trail.record(second)
    text = trail.log_path.read_text()
    assert audit.verify_chain(text) is None
    lines = [json.loads(line) for line in text.splitlines()]
    assert [(r["id"], r["commit"]) for r in lines] == [(first.id, "c0"), (second.id, "c0")]


def test_a_version_the_registry_does_not_know_is_logged_locally_only(tmp_path, caplog):
    from mlops_ci.tracking.store import resolve_store

    asked = []

    def store():
        asked.append(True)
        return resolve_store(None, project_dir=tmp_path, retry_timeout_s=5)

    trail = audit.AuditTrail(tmp_path / "deployments.jsonl", store, "unused")
    caplog.set_level("INFO")
    trail.record(audit.DeploymentRecord("docker", "deploy", "succeeded", model="nobody", version="1"))
    assert asked == [True]
    assert "is not in the registry" in caplog.text and "logged locally only" in caplog.text
    assert len(trail.log_path.read_text().splitlines()) == 1
