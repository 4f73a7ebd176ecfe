"""A mutex per registered model, built on the registry's own uniqueness constraint.

MLflow aliases have no conditional write, so promotion takes a lock first: creating the
registered model ``<name>.mlops-ci-lock`` succeeds for exactly one caller (the server
answers RESOURCE_ALREADY_EXISTS to every other), whatever store backs the registry. The
holder re-reads the champion, moves the aliases and deletes the lock.

A job that crashed while holding the lock leaves it behind. A lock older than
``stale_after_s`` (by the server's creation time) is broken: it is deleted only if it is
still the very lock that was found stale (same owner token), so two jobs breaking it at
once do not delete each other's fresh lock, except in the milliseconds between that
re-read and the delete — MLflow has no conditional delete.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mlops_ci.errors import ExternalServiceError
from mlops_ci.tracking.store import TrackingStore, tracking_errors

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

log = logging.getLogger(__name__)

LOCK_SUFFIX = ".mlops-ci-lock"
OWNER_TAG = "mlops_ci.lock.owner"
HOLDER_TAG = "mlops_ci.lock.holder"
PURPOSE_TAG = "mlops_ci.lock.purpose"


def lock_name(model_name: str) -> str:
    return model_name + LOCK_SUFFIX


@dataclass(frozen=True)
class LockInfo:
    """A lock as found in the registry."""

    owner: str | None
    holder: str | None
    purpose: str | None
    created_ms: int

    def age_s(self, now: float) -> float:
        return max(0.0, now - self.created_ms / 1000.0)


@dataclass(frozen=True)
class HeldLock:
    name: str
    owner: str
    waited_s: float
    broke_stale: LockInfo | None


def describe_holder() -> str:
    """Who holds a lock, for the message another job prints while it waits."""
    parts = [f"{socket.gethostname()} pid {os.getpid()}"]
    for variable in ("GITHUB_RUN_ID", "CI_PIPELINE_ID", "CI_JOB_URL"):
        if os.environ.get(variable):
            parts.append(f"{variable}={os.environ[variable]}")
    return ", ".join(parts)


@contextmanager
def model_lock(
    client: MlflowClient,
    store: TrackingStore,
    model_name: str,
    *,
    purpose: str,
    timeout_s: float = 120.0,
    stale_after_s: float = 300.0,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[HeldLock]:
    """Hold the lock of ``model_name`` for the ``with`` block.

    Waits up to ``timeout_s`` for another holder (ExternalServiceError, exit 3, after
    that), breaks a lock older than ``stale_after_s``, and always releases its own lock.
    """
    held = _acquire(client, store, model_name, purpose, timeout_s, stale_after_s, clock, sleep)
    try:
        yield held
    finally:
        _release(client, store, held)


def _acquire(client, store, model_name, purpose, timeout_s, stale_after_s, clock, sleep) -> HeldLock:
    name = lock_name(model_name)
    owner = uuid.uuid4().hex
    started = time.monotonic()
    delay = 0.1
    broke: LockInfo | None = None
    while True:
        if _try_create(client, store, name, owner, purpose):
            return HeldLock(name, owner, time.monotonic() - started, broke)
        current = read_lock(client, store, name)
        if current is None:
            continue  # released between our create and our read: try again at once
        age = current.age_s(clock())
        if age > stale_after_s:
            if _break(client, store, name, current):
                log.warning(
                    "broke a stale deployment lock on %s: held for %.0f s (more than %.0f s) by %s (%s); "
                    "that job probably crashed",
                    model_name,
                    age,
                    stale_after_s,
                    current.holder or "an unknown job",
                    current.purpose or "unknown purpose",
                )
                broke = current
            continue
        waited = time.monotonic() - started
        if waited + delay > timeout_s:
            raise ExternalServiceError(
                f"another deployment of {model_name} holds its lock ({current.holder or 'unknown job'}, "
                f"{current.purpose or 'unknown purpose'}, for {age:.0f} s); waited {waited:.0f} s. Retry "
                f"when it finishes, wait longer for the lock, or delete the registered model {name} if that "
                "job is gone"
            )
        if delay >= 1.0:
            log.info("waiting for the deployment lock on %s, held by %s", model_name, current.holder)
        sleep(delay)
        delay = min(delay * 2, 2.0)


def _try_create(client, store, name: str, owner: str, purpose: str) -> bool:
    from mlflow.exceptions import MlflowException

    tags = {OWNER_TAG: owner, HOLDER_TAG: describe_holder()[:500], PURPOSE_TAG: purpose[:500]}
    with tracking_errors(store):
        try:
            client.create_registered_model(
                name, tags=tags, description="mlops-ci deployment lock; deleted when the deployment ends"
            )
            return True
        except MlflowException as exc:
            if getattr(exc, "error_code", None) == "RESOURCE_ALREADY_EXISTS":
                return False
            raise


def read_lock(client, store, name: str) -> LockInfo | None:
    from mlflow.exceptions import MlflowException

    with tracking_errors(store):
        try:
            model = client.get_registered_model(name)
        except MlflowException as exc:
            if getattr(exc, "error_code", None) == "RESOURCE_DOES_NOT_EXIST":
                return None
            raise
    tags = model.tags or {}
    return LockInfo(
        owner=tags.get(OWNER_TAG),
        holder=tags.get(HOLDER_TAG),
        purpose=tags.get(PURPOSE_TAG),
        created_ms=int(model.creation_timestamp or 0),
    )


def _delete(client, store, name: str) -> bool:
    from mlflow.exceptions import MlflowException

    with tracking_errors(store):
        try:
            client.delete_registered_model(name)
            return True
        except MlflowException as exc:
            if getattr(exc, "error_code", None) == "RESOURCE_DOES_NOT_EXIST":
                return False
            raise


def _break(client, store, name: str, stale: LockInfo) -> bool:
    again = read_lock(client, store, name)
    if again is None or again.owner != stale.owner or again.created_ms != stale.created_ms:
        return False  # someone else broke it and perhaps took a fresh lock: leave that one
    return _delete(client, store, name)


def _release(client, store, held: HeldLock) -> None:
    current = read_lock(client, store, held.name)
    if current is None or current.owner != held.owner:
        log.warning(
            "the deployment lock %s was broken by another job while this one held it; let locks "
            "live longer before they count as stale if deployments take that long",
            held.name,
        )
        return
    _delete(client, store, held.name)
