"""`mlops-ci deploy --target registry` against a real MLflow server: compare-and-set
promotion, previous-champion, rollback, the audit trail, and racing promotions."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time

import pytest

from mlops_ci.deploy import audit, lock, promotion
from mlops_ci.errors import ExternalServiceError
from mlops_ci.result import StepResult
from mlops_ci.runner import run_step
from mlops_ci.tracking.store import TrackingStore
from tests.helpers import REPO, run_cli


def deploy(args, tmp_path, env):
    """`mlops-ci deploy --target registry ARGS` as a subprocess: exit code, output, result."""
    done = run_cli(["deploy", "--target", "registry", *args], cwd=tmp_path, env=env)
    result = tmp_path / ".mlops-ci" / "deploy.json"
    data = json.loads(result.read_text()) if result.is_file() else None
    return done, data


def promote(tmp_path, env, **flags) -> StepResult:
    """The same in this process (MLflow imported once: seconds faster per call)."""
    return run_step("deploy", {"target": "registry", **flags}, env=env, cwd=tmp_path)


def registry_log(client, versions) -> list[dict]:
    runs = client.search_runs(
        [client.get_experiment_by_name(versions.name).experiment_id],
        filter_string=f"tags.`{audit.LOG_RUN_TAG}` = '{versions.name}'",
    )
    assert len(runs) == 1
    text = audit.read_registry_log(client, store_of(client), runs[0].info.run_id)
    assert audit.verify_chain(text) is None
    return [json.loads(line) for line in text.splitlines()]


def store_of(client) -> TrackingStore:
    return TrackingStore(uri=client._tracking_client.tracking_uri, artifact_root=None, retry_timeout_s=10)


def test_promote_keep_previous_and_roll_back(tmp_path, env, client, versions):
    v1 = versions.add(validated_against="none")
    done, result = deploy(["--version", v1], tmp_path, env)
    assert done.returncode == 0, done.stderr
    assert result["outputs"]["action"] == "promoted" and result["outputs"]["previous-version"] == ""
    assert versions.alias("champion") == v1 and versions.alias("previous-champion") is None

    v2 = versions.add(validated_against=v1)
    result = promote(tmp_path, env, version=v2)
    assert result.status == "passed"
    assert result.summary == f"{versions.name} v{v2} is now champion (was v{v1}; kept as previous-champion)"
    assert (versions.alias("champion"), versions.alias("previous-champion")) == (v2, v1)
    tags = client.get_model_version(versions.name, v2).tags
    assert tags["mlops_ci.deploy.registry.status"] == "succeeded"
    assert tags["mlops_ci.deploy.registry.actor"] and tags["mlops_ci.deploy.registry.at"]
    assert tags["mlops_ci.deploy.registry.id"] == result.outputs["deployment-id"]

    # A re-run changes nothing and logs nothing.
    result = promote(tmp_path, env, version=v2)
    assert result.status == "passed" and result.outputs["action"] == "unchanged"
    assert len(registry_log(client, versions)) == 2

    result = promote(tmp_path, env, rollback=True)
    assert result.status == "passed" and result.outputs["action"] == "rolled-back"
    assert (versions.alias("champion"), versions.alias("previous-champion")) == (v1, v2)

    records = registry_log(client, versions)
    assert [(r["action"], r["status"], r["version"], r["previous_version"]) for r in records] == [
        ("promote", "succeeded", v1, None),
        ("promote", "succeeded", v2, v1),
        ("rollback", "succeeded", v1, v2),
    ]
    local = (tmp_path / ".mlops-ci" / "deployments.jsonl").read_text()
    assert audit.verify_chain(local) is None and len(local.splitlines()) == 3


def test_refuses_when_the_champion_changed_since_validation(tmp_path, env, versions):
    v1 = versions.add(validated_against="none")
    v2 = versions.add(validated_against=v1)
    v3 = versions.add(validated_against=v1)
    assert promote(tmp_path, env, version=v1).status == "passed"
    assert promote(tmp_path, env, version=v2).status == "passed"
    done, result = deploy(["--version", v3], tmp_path, env)
    assert done.returncode == 1
    assert "champion changed since validation" in done.stdout
    assert f"validated against v{v1}, but champion is now v{v2}; re-run validate" in done.stdout
    assert result["checks"][0]["details"]["reason"] == "champion-changed"
    assert versions.alias("champion") == v2


def test_validation_is_required_unless_switched_off(tmp_path, env, versions):
    unvalidated = versions.add()
    failed = versions.add(validated_against="none", status="failed")
    result = promote(tmp_path, env, version=unvalidated)
    assert result.status == "failed" and "was never validated; run `mlops-ci validate`" in result.summary
    result = promote(tmp_path, env, version=failed)
    assert result.status == "failed" and "failed validation" in result.summary
    assert versions.alias("champion") is None
    result = promote(tmp_path, env, version=unvalidated, require_validation=False)
    assert result.status == "passed" and versions.alias("champion") == unvalidated
    # An explicit expectation is compare-and-set too.
    other = versions.add()
    result = promote(tmp_path, env, version=other, require_validation=False, expected_champion="none")
    assert result.status == "failed" and "champion changed" in result.summary


def test_bad_input_and_nothing_to_roll_back(tmp_path, env, versions):
    done, _ = deploy(["--version", "99"], tmp_path, env)
    assert done.returncode == 2 and "has no version 99" in done.error_lines[0]
    done, _ = deploy(["--rollback"], tmp_path, env)
    assert done.returncode == 1 and "no previous-champion to roll back to" in done.stdout
    done = run_cli(["deploy", "--target", "kubernets"], cwd=tmp_path, env=env)
    assert done.returncode == 2
    assert "--target must be one of registry, docker, kubernetes" in done.stderr.strip().splitlines()[-1]


def test_racing_promotions_exactly_one_wins(client, versions):
    """Two threads promote two challengers validated against the same champion at the same
    instant, three times over: each time exactly one wins, the other is refused."""
    store = store_of(client)
    champion = versions.add(validated_against="none")
    client.set_registered_model_alias(versions.name, "champion", champion)
    for _ in range(3):
        contenders = [versions.add(validated_against=champion) for _ in range(2)]
        barrier = threading.Barrier(2)
        outcomes: dict[str, promotion.Outcome] = {}

        def race(version: str, barrier=barrier, outcomes=outcomes) -> None:
            from mlflow.tracking import MlflowClient

            own = MlflowClient(tracking_uri=store.uri, registry_uri=store.uri)
            tags = own.get_model_version(versions.name, version).tags
            expected = promotion.expectation(
                tags, name=versions.name, version=version, require_validation=True, expected_flag=None
            )
            barrier.wait()
            outcomes[version] = promotion.promote(
                own, store, name=versions.name, version=version, expected=expected
            )

        threads = [threading.Thread(target=race, args=(v,)) for v in contenders]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        actions = sorted(o.action for o in outcomes.values())
        assert actions == ["promoted", "refused"], outcomes
        winner = next(v for v, o in outcomes.items() if o.action == "promoted")
        loser = next(o for o in outcomes.values() if o.refused)
        assert loser.reason == "champion-changed" and f"champion is now v{winner}" in loser.message
        assert versions.alias("champion") == winner and versions.alias("previous-champion") == champion
        assert lock.read_lock(client, store, lock.lock_name(versions.name)) is None
        # The next round's contenders are validated against the new champion.
        champion = winner


def test_racing_cli_promotions(tmp_path, env, client, versions):
    """The same race between two `mlops-ci deploy` processes: one exits 0, the other 1 with
    the "champion changed" message."""
    champion = versions.add(validated_against="none")
    client.set_registered_model_alias(versions.name, "champion", champion)
    a, b = versions.add(validated_against=champion), versions.add(validated_against=champion)
    procs = []
    for version, folder in ((a, tmp_path / "a"), (b, tmp_path / "b")):
        folder.mkdir()
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "mlops_ci", "deploy", "--target", "registry", "--version", version],
                cwd=folder,
                env={**env, "PYTHONPATH": str(REPO)},
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    results = [(p.wait(timeout=300), p.stdout.read(), p.stderr.read()) for p in procs]
    codes = sorted(code for code, _, _ in results)
    assert codes == [0, 1], results
    loser = next(out for code, out, _ in results if code == 1)
    assert "champion changed since validation" in loser
    assert versions.alias("champion") in (a, b) and versions.alias("previous-champion") == champion
    records = registry_log(client, versions)
    assert sorted(r["status"] for r in records) == ["refused", "succeeded"]


def test_lock_waits_times_out_and_breaks_stale_locks(tmp_path, env, client, versions, caplog):
    store = store_of(client)
    v1 = versions.add(validated_against="none")
    name = lock.lock_name(versions.name)
    client.create_registered_model(name, tags={lock.HOLDER_TAG: "a crashed job", lock.OWNER_TAG: "x"})
    with pytest.raises(
        ExternalServiceError, match=r"another deployment of .* holds its lock \(a crashed job"
    ):
        promote(tmp_path, env, version=v1, lock_timeout="1")
    assert versions.alias("champion") is None

    time.sleep(2.5)
    result = promote(tmp_path, env, version=v1, stale_lock_after="2")
    assert result.status == "passed"
    assert "broke a stale deployment lock" in caplog.text and "a crashed job" in caplog.text
    assert versions.alias("champion") == v1
    assert lock.read_lock(client, store, name) is None


@pytest.mark.parametrize("text", ["", "x"])
def test_chain_detects_edits(text):
    first = audit.chain_line(audit.DeploymentRecord("registry", "promote", "succeeded", model="m"), None)
    second = audit.chain_line(audit.DeploymentRecord("registry", "promote", "succeeded", model="m"), first)
    assert audit.verify_chain(first + "\n" + second + "\n") is None
    edited = first.replace('"model":"m"', '"model":"n' + text + '"')
    assert "line 2 does not follow line 1" in audit.verify_chain(edited + "\n" + second + "\n")
    assert "line 1 does not follow" in audit.verify_chain(second + "\n")
