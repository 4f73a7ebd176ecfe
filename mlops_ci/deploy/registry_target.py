"""Deployment in the registry: promote a validated version to the champion alias
(compare-and-set, see ``promotion``) or roll the alias back, and log it (refusals too)."""

from __future__ import annotations

from dataclasses import dataclass

from mlops_ci.deploy import promotion
from mlops_ci.deploy.audit import AuditTrail, DeploymentRecord
from mlops_ci.deploy.lock import HeldLock, model_lock
from mlops_ci.deploy.outcome import CheckRecord, DeployOutcome
from mlops_ci.tracking.provenance import ProvenanceKey


@dataclass(frozen=True)
class PromotionRequest:
    """Move ``alias`` to ``version`` (or, with ``rollback``, back to ``previous_alias``).

    ``expected_champion``: the version the champion must still be ("none": no champion);
    None: the one validate compared against."""

    model: str
    version: str | None = None  # None only for a rollback
    rollback: bool = False
    alias: str = "champion"
    previous_alias: str = "previous-champion"
    require_validation: bool = True
    expected_champion: str | None = None
    # With the provenance key, only a validation record a trusted job signed is accepted.
    provenance_key: ProvenanceKey | None = None

    def __post_init__(self) -> None:
        if not self.rollback and not self.version:
            raise ValueError("a promotion needs the version to promote")


def deploy_registry(request: PromotionRequest, trail: AuditTrail) -> DeployOutcome:
    """Promote or roll back under the model's lock; every change and every refusal is
    tagged and logged (a re-run that changes nothing logs nothing)."""
    from mlops_ci.tracking.store import connect

    name = request.model
    store = trail.store()
    client = connect(store)
    records: list[DeploymentRecord] = []

    def record(outcome: promotion.Outcome, _held: HeldLock) -> None:
        if outcome.action == "unchanged":
            return  # a re-run changes nothing and logs nothing
        entry = DeploymentRecord(
            target="registry",
            action="rollback" if request.rollback else "promote",
            status="refused" if outcome.refused else "succeeded",
            model=name,
            version=outcome.version,
            previous_version=outcome.previous,
            message=outcome.message,
            context=trail.context,
            details={
                "alias": request.alias,
                "previous_alias": request.previous_alias,
                "expected_champion": outcome.expected,
                "reason": outcome.reason,
                "lock_waited_s": round(outcome.lock_waited_s, 3),
            },
        )
        trail.append_held(client, store, entry)
        records.append(entry)

    common = dict(
        name=name,
        alias=request.alias,
        previous_alias=request.previous_alias,
        lock_timeout_s=trail.lock_timeout_s,
        stale_after_s=trail.stale_after_s,
        audit=record,
    )
    if request.rollback:
        outcome = promotion.rollback(client, store, **common)
    else:
        version = str(request.version)
        found = promotion.get_version(client, store, name, version)
        expected = promotion.expectation(
            dict(found.tags or {}),
            name=name,
            version=version,
            require_validation=request.require_validation,
            expected_flag=request.expected_champion,
            key=request.provenance_key,
        )
        if expected.problem is not None:
            # Refusals are logged too, under the lock like every append to the shared log.
            with model_lock(
                client,
                store,
                name,
                purpose=f"log a refused promotion of v{version}",
                timeout_s=trail.lock_timeout_s,
                stale_after_s=trail.stale_after_s,
            ) as held:
                record(expected.problem, held)
            outcome = expected.problem
        else:
            outcome = promotion.promote(client, store, version=version, expected=expected, **common)

    check = CheckRecord(
        "rollback" if request.rollback else "compare-and-set",
        not outcome.refused,
        outcome.message,
        details={
            "reason": outcome.reason,
            "expected_champion": outcome.expected,
            "found_champion": outcome.previous if outcome.refused else None,
        },
    )
    return DeployOutcome(
        "registry",
        outcome.action,
        not outcome.refused,
        outcome.message,
        (check,),
        reason=outcome.reason,
        model=name,
        version=outcome.version or "",
        previous_version=outcome.previous or "",
        model_uri=f"models:/{name}/{outcome.version}" if outcome.version else "",
        deployment_log=trail.log_path,
        deployment_id=records[-1].id if records else None,
        artifacts=(trail.log_path,) if records else (),
    )
