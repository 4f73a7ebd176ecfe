"""Compare-and-set promotion (mlops_ci/deploy/promotion.py) against a real MLflow server:
what a candidate may replace, and racing promotions of which exactly one wins."""

from __future__ import annotations

import threading

from mlops_ci.deploy import lock, promotion
from mlops_ci.tracking.store import TrackingStore


def store_of(client) -> TrackingStore:
    return TrackingStore(uri=client._tracking_client.tracking_uri, artifact_root=None, retry_timeout_s=10)


def test_expectation_from_tags_and_the_expected_champion():
    tags = {promotion.VALIDATION_STATUS_TAG: "passed", promotion.VALIDATION_CHAMPION_TAG: "3"}
    found = promotion.expectation(tags, name="m", version="4", require_validation=True, expected_flag=None)
    assert (found.champion, found.source, found.problem) == ("3", "validation", None)
    found = promotion.expectation(tags, name="m", version="4", require_validation=True, expected_flag="none")
    assert (found.champion, found.source) == (None, "flag")
    found = promotion.expectation({}, name="m", version="4", require_validation=False, expected_flag=None)
    assert (found.champion, found.source, found.problem) == (promotion.ANY, "none", None)


def test_refusals_before_the_lock_speak_domain_terms():
    never = promotion.expectation({}, name="m", version="4", require_validation=True, expected_flag=None)
    assert never.problem is not None and never.problem.reason == "not-validated"
    assert never.problem.message == "m v4 was never validated; run `mlops-ci validate` on it first"
    failed = promotion.expectation(
        {promotion.VALIDATION_STATUS_TAG: "failed"},
        name="m",
        version="4",
        require_validation=True,
        expected_flag=None,
    )
    assert (
        failed.problem is not None and failed.problem.refused and failed.problem.reason == "validation-failed"
    )
    assert "--" not in never.problem.message + failed.problem.message


def test_with_the_provenance_key_only_a_signed_record_counts():
    from mlops_ci.tracking import validation_record
    from mlops_ci.tracking.provenance import ProvenanceKey

    key = ProvenanceKey(b"k" * 32)
    tags = {promotion.VALIDATION_STATUS_TAG: "passed", promotion.VALIDATION_CHAMPION_TAG: "3"}

    def expect(found_tags, *, with_key=key, version="4"):
        return promotion.expectation(
            found_tags, name="m", version=version, require_validation=True, expected_flag=None, key=with_key
        )

    unsigned = expect(tags)
    assert unsigned.problem is not None and unsigned.problem.reason == "validation-unsigned"
    assert "no trusted job signed" in unsigned.problem.message
    signed = validation_record.signed(key, "m", "4", tags)
    assert expect(signed).problem is None and expect(signed).champion == "3"
    # A signature copied onto another version, or the record of a PR job without the key.
    assert expect(signed, version="5").problem.reason == "validation-unsigned"
    assert expect(tags, with_key=None).problem is None
    # A failed validation is reported as such, signed or not.
    failed = validation_record.signed(key, "m", "4", {**tags, promotion.VALIDATION_STATUS_TAG: "failed"})
    assert expect(failed).problem.reason == "validation-failed"
    # Without validation required the record is not looked at.
    loose = promotion.expectation(
        tags, name="m", version="4", require_validation=False, expected_flag=None, key=key
    )
    assert loose.problem is None


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
