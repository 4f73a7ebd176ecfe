"""Registry promotion with compare-and-set: the challenger becomes ``champion`` only if the
champion is still the version it was validated against; the old champion stays reachable
as ``previous-champion``; a rollback swaps them back.

Everything that reads and moves aliases runs under the model's deployment lock (see
``mlops_ci.deploy.lock``), so two promotions racing from two pipelines cannot both win:
the second one re-reads the champion under the lock, finds the first one's version there,
and is refused with "champion changed since validation".
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mlops_ci.deploy.lock import HeldLock, model_lock
from mlops_ci.errors import UsageError
from mlops_ci.tracking import validation_record
from mlops_ci.tracking.provenance import ProvenanceKey
from mlops_ci.tracking.store import TrackingStore, tracking_errors

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

log = logging.getLogger(__name__)

VALIDATION_STATUS_TAG = validation_record.STATUS_TAG
VALIDATION_CHAMPION_TAG = validation_record.CHAMPION_TAG
NO_CHAMPION = "none"


class _Any:
    """Expectation placeholder: promote over whatever the champion is (no validation)."""

    def __repr__(self) -> str:
        return "any"


ANY = _Any()


@dataclass(frozen=True)
class Outcome:
    """What a promotion or rollback did.

    ``action``: promoted, unchanged (already the champion), rolled-back, or refused.
    ``reason`` (when refused): champion-changed, not-validated, validation-failed, validation-unsigned,
    no-previous.
    """

    action: str
    model: str
    version: str | None
    previous: str | None
    message: str
    reason: str | None = None
    expected: str | None = None
    lock_waited_s: float = 0.0

    @property
    def refused(self) -> bool:
        return self.action == "refused"


@dataclass(frozen=True)
class Expectation:
    """The champion a promotion expects to replace (None: no champion), or ANY."""

    champion: str | None | _Any
    source: str  # "validation", "flag" or "none"
    problem: Outcome | None = None


def alias_version(client: MlflowClient, store: TrackingStore, name: str, alias: str) -> str | None:
    from mlflow.exceptions import MlflowException

    with tracking_errors(store):
        try:
            return str(client.get_model_version_by_alias(name, alias).version)
        except MlflowException as exc:
            if getattr(exc, "error_code", None) in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
                return None
            raise


def get_version(client: MlflowClient, store: TrackingStore, name: str, version: str):
    from mlflow.exceptions import MlflowException

    with tracking_errors(store):
        try:
            return client.get_model_version(name, version)
        except MlflowException as exc:
            if getattr(exc, "error_code", None) in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
                raise UsageError(
                    f"model {name} has no version {version} in {store.display_uri}; check the version "
                    "and the model name"
                ) from None
            raise


def expectation(
    tags: dict[str, str],
    *,
    name: str,
    version: str,
    require_validation: bool,
    expected_flag: str | None,
    key: ProvenanceKey | None = None,
) -> Expectation:
    """Which champion the candidate may replace: ``expected_flag`` if given, else the
    version validate compared it against. Without validation tags: refused, unless
    validation is not required (then whatever champion is found under the lock). With the
    provenance ``key``, only a record a trusted job signed counts (SECURITY.md)."""
    status = tags.get(VALIDATION_STATUS_TAG)
    if require_validation:
        refusal = None
        if status is None:
            refusal = (
                "not-validated",
                f"{name} v{version} was never validated; run `mlops-ci validate` on it first",
            )
        elif status != "passed":
            refusal = (
                "validation-failed",
                f"{name} v{version} failed validation ({VALIDATION_STATUS_TAG}={status}); it is not promoted",
            )
        elif key is not None and not validation_record.verified(key, name, version, tags):
            refusal = (
                "validation-unsigned",
                f"{name} v{version} has a validation record that no trusted job signed; validate it in a "
                "trusted job (one holding the provenance key) first",
            )
        if refusal is not None:
            reason, text = refusal
            source = "none" if reason == "not-validated" else "validation"
            return Expectation(ANY, source, Outcome("refused", name, version, None, text, reason=reason))
    if expected_flag is not None:
        return Expectation(None if expected_flag == NO_CHAMPION else expected_flag, "flag")
    validated_against = tags.get(VALIDATION_CHAMPION_TAG)
    if validated_against is not None:
        return Expectation(None if validated_against == NO_CHAMPION else validated_against, "validation")
    return Expectation(ANY, "none")


def promote(
    client: MlflowClient,
    store: TrackingStore,
    *,
    name: str,
    version: str,
    expected: Expectation,
    alias: str = "champion",
    previous_alias: str = "previous-champion",
    lock_timeout_s: float = 120.0,
    stale_after_s: float = 300.0,
    audit: Callable[[Outcome, HeldLock], None] | None = None,
) -> Outcome:
    """Point ``alias`` at ``version`` if the current holder is the expected one.

    ``audit`` runs under the lock with the outcome (tags, the deployment log), so the log's
    order is the order in which the aliases moved.
    """
    if expected.problem is not None:
        return expected.problem
    with model_lock(
        client,
        store,
        name,
        purpose=f"promote v{version} to {alias}",
        timeout_s=lock_timeout_s,
        stale_after_s=stale_after_s,
    ) as held:
        current = alias_version(client, store, name, alias)
        wanted = expected.champion
        shown = "no champion" if wanted is None else f"v{wanted}"
        if current == version:
            outcome = Outcome(
                "unchanged",
                name,
                version,
                alias_version(client, store, name, previous_alias),
                f"{name} v{version} is already {alias}; nothing to do",
                expected=_text(wanted),
                lock_waited_s=held.waited_s,
            )
        elif wanted is not ANY and current != wanted:
            now = "no champion" if current is None else f"v{current}"
            outcome = Outcome(
                "refused",
                name,
                version,
                current,
                f"champion changed since validation: {name} v{version} was validated against "
                f"{shown}, but {alias} is now {now}; re-run validate against the new champion",
                reason="champion-changed",
                expected=_text(wanted),
                lock_waited_s=held.waited_s,
            )
        else:
            with tracking_errors(store):
                if current is not None:
                    client.set_registered_model_alias(name, previous_alias, current)
                client.set_registered_model_alias(name, alias, version)
            before = "no champion" if current is None else f"v{current}"
            outcome = Outcome(
                "promoted",
                name,
                version,
                current,
                f"{name} v{version} is now {alias} (was {before}"
                + (f"; kept as {previous_alias}" if current is not None else "")
                + ")",
                expected=_text(wanted),
                lock_waited_s=held.waited_s,
            )
        if audit is not None:
            audit(outcome, held)
        return outcome


def rollback(
    client: MlflowClient,
    store: TrackingStore,
    *,
    name: str,
    alias: str = "champion",
    previous_alias: str = "previous-champion",
    lock_timeout_s: float = 120.0,
    stale_after_s: float = 300.0,
    audit: Callable[[Outcome, HeldLock], None] | None = None,
) -> Outcome:
    """Swap ``alias`` and ``previous_alias``: the previous champion serves again, and the
    one rolled back from stays reachable (a second rollback rolls forward)."""
    with model_lock(
        client,
        store,
        name,
        purpose=f"roll back {alias}",
        timeout_s=lock_timeout_s,
        stale_after_s=stale_after_s,
    ) as held:
        previous = alias_version(client, store, name, previous_alias)
        current = alias_version(client, store, name, alias)
        if previous is None:
            outcome = Outcome(
                "refused",
                name,
                current,
                None,
                f"{name} has no {previous_alias} to roll back to (nothing was promoted over a champion yet)",
                reason="no-previous",
                lock_waited_s=held.waited_s,
            )
        else:
            with tracking_errors(store):
                client.set_registered_model_alias(name, alias, previous)
                if current is not None and current != previous:
                    client.set_registered_model_alias(name, previous_alias, current)
            was = "no champion" if current is None else f"v{current}"
            outcome = Outcome(
                "rolled-back",
                name,
                previous,
                current,
                f"{name} {alias} rolled back to v{previous} (was {was}"
                + (f"; now {previous_alias}" if current is not None and current != previous else "")
                + ")",
                lock_waited_s=held.waited_s,
            )
        if audit is not None:
            audit(outcome, held)
        return outcome


def _text(value: str | None | _Any) -> str | None:
    if value is ANY:
        return "any"
    return NO_CHAMPION if value is None else str(value)
