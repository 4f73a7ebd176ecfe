"""The validation record on a registry version: what `validate` concluded (tags) and, when a
trusted job holding the provenance key wrote it, a signature over it. `deploy` promotes only
on this record, so it is defined once, here, for both."""

from __future__ import annotations

from collections.abc import Mapping

from mlops_ci.tracking import provenance
from mlops_ci.tracking.provenance import ProvenanceKey

STATUS_TAG = "mlops_ci.validation.status"
CHAMPION_TAG = "mlops_ci.validation.champion_version"
AT_TAG = "mlops_ci.validation.at"
SIGNATURE_TAG = "mlops_ci.validation.signature"
PURPOSE = "validation"


def _fields(model: str, version: str, tags: Mapping[str, str]) -> dict[str, str]:
    return {
        "model": model,
        "version": str(version),
        "status": tags.get(STATUS_TAG, ""),
        "champion_version": tags.get(CHAMPION_TAG, ""),
        "at": tags.get(AT_TAG, ""),
    }


def signed(key: ProvenanceKey, model: str, version: str, tags: Mapping[str, str]) -> dict[str, str]:
    """``tags`` plus the signature that binds them to this model version."""
    signature = provenance.sign(key, PURPOSE, _fields(model, version, tags))
    return {**tags, SIGNATURE_TAG: signature}


def verified(key: ProvenanceKey, model: str, version: str, tags: Mapping[str, str]) -> bool:
    """Whether a trusted job holding ``key`` wrote this very record for this version."""
    return provenance.verify(key, PURPOSE, _fields(model, version, tags), tags.get(SIGNATURE_TAG))
