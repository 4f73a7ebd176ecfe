"""Storing a finished profile with the model version it measured: the folder as artifacts
on the version's run, the headline figures as tags on the version (the next profile finds
the champion's exact model and numbers there)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from pathlib import Path

from mlops_ci.profiling.models import ModelUnderTest
from mlops_ci.profiling.summary import RECOMMENDATION_KEYS
from mlops_ci.tracking.store import TrackingStore

log = logging.getLogger(__name__)

# The figures stored as tags on the version, by figure name (mlops_ci.profiling.summary).
TAGGED_FIGURES = (*RECOMMENDATION_KEYS, "inprocess_p50_ms", "inprocess_p99_ms", "latency_ratio", "server")


def store_profile(
    candidate: ModelUnderTest,
    folder: Path,
    *,
    figures: Mapping[str, str],
    status: str,
    at: str,
    commit: str | None,
    store: Callable[[], TrackingStore],
) -> str | None:
    """Where the profile in ``folder`` was stored (runs:/<run>/mlops-ci/profile), or None
    when the candidate is not a registered model version."""
    if not candidate.registered:
        log.info(
            "profile: %s is not a registered model version; the profile is not stored in MLflow",
            candidate.label,
        )
        return None
    from mlops_ci.tracking.profiles import RegistryRef, get_version, log_profile
    from mlops_ci.tracking.store import connect

    tracking = store()
    client = connect(tracking)
    version = get_version(client, tracking, RegistryRef(candidate.name, candidate.version))
    if version is None:
        log.info(
            "profile: %s is not in the registry at %s; not stored", candidate.label, tracking.display_uri
        )
        return None
    tags = {key: figures[key] for key in TAGGED_FIGURES if figures.get(key)}
    tags["status"] = status
    tags["at"] = at
    if commit:
        tags["commit"] = commit
    location = log_profile(client, tracking, version, folder, tags)
    log.info("profile: stored with %s v%s at %s", version.name, version.version, location)
    return location
