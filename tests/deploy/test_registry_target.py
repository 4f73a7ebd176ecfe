"""Deployment in the registry (mlops_ci/deploy/registry_target.py) against a real MLflow
server: the outcomes of a promotion, a re-run and a refusal, and the model's lock."""

from __future__ import annotations

import time

import pytest

from mlops_ci.deploy import lock
from mlops_ci.deploy.audit import AuditTrail
from mlops_ci.deploy.registry_target import PromotionRequest, deploy_registry
from mlops_ci.errors import ExternalServiceError
from tests.deploy.test_promotion import store_of


def trail(tmp_path, client, versions, **lock_settings) -> AuditTrail:
    return AuditTrail(
        tmp_path / "deployments.jsonl",
        lambda: store_of(client),
        versions.name,
        {"actor": "ci"},
        **lock_settings,
    )


def test_promoted_unchanged_and_refused_outcomes(tmp_path, client, versions):
    name = versions.name
    v1, v2 = versions.add(validated_against="none"), versions.add(validated_against="none")
    where = trail(tmp_path, client, versions)
    first = deploy_registry(PromotionRequest(name, v1), where)
    assert (first.target, first.action, first.ok) == ("registry", "promoted", True)
    assert (first.model, first.version, first.previous_version) == (name, v1, "")
    assert first.model_uri == f"models:/{name}/{v1}"
    assert first.deployment_id and first.artifacts == (where.log_path,) == (first.deployment_log,)
    (check,) = first.checks
    assert (check.name, check.passed) == ("compare-and-set", True)
    assert dict(check.details) == {"reason": None, "expected_champion": "none", "found_champion": None}
    tags = client.get_model_version(name, v1).tags
    assert tags["mlops_ci.deploy.registry.id"] == first.deployment_id
    assert tags["mlops_ci.deploy.registry.actor"] == "ci"

    again = deploy_registry(PromotionRequest(name, v1), where)
    assert (again.action, again.ok, again.deployment_id, again.artifacts) == ("unchanged", True, None, ())

    refused = deploy_registry(PromotionRequest(name, v2), where)
    assert (refused.action, refused.ok, refused.reason) == ("refused", False, "champion-changed")
    assert dict(refused.checks[0].details) == {
        "reason": "champion-changed",
        "expected_champion": "none",
        "found_champion": v1,
    }
    assert versions.alias("champion") == v1
    assert len(where.log_path.read_text().splitlines()) == 2  # the promotion and the refusal

    back = deploy_registry(PromotionRequest(name, rollback=True), where)
    assert (back.action, back.ok, back.checks[0].name) == ("refused", False, "rollback")
    assert back.reason == "no-previous"


def test_a_promotion_needs_a_version():
    with pytest.raises(ValueError, match="needs the version"):
        PromotionRequest("m")
    assert PromotionRequest("m", rollback=True).version is None


def test_lock_waits_times_out_and_breaks_stale_locks(tmp_path, client, versions, caplog):
    store = store_of(client)
    v1 = versions.add(validated_against="none")
    name = lock.lock_name(versions.name)
    client.create_registered_model(name, tags={lock.HOLDER_TAG: "a crashed job", lock.OWNER_TAG: "x"})
    with pytest.raises(
        ExternalServiceError, match=r"another deployment of .* holds its lock \(a crashed job"
    ) as caught:
        deploy_registry(
            PromotionRequest(versions.name, v1), trail(tmp_path, client, versions, lock_timeout_s=1)
        )
    assert "--" not in str(caught.value)
    assert versions.alias("champion") is None

    time.sleep(2.5)
    outcome = deploy_registry(
        PromotionRequest(versions.name, v1), trail(tmp_path, client, versions, stale_after_s=2)
    )
    assert outcome.ok and outcome.action == "promoted"
    assert "broke a stale deployment lock" in caplog.text and "a crashed job" in caplog.text
    assert versions.alias("champion") == v1
    assert lock.read_lock(client, store, name) is None
