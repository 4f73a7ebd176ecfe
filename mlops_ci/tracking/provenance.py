"""Provenance records that untrusted credentials cannot write.

Any MLflow writer can set any tag, so a tag alone proves nothing: the training code of a
pull request receives the tracking credentials and can give a run the fingerprint that a
trusted job will look for. A trusted job therefore signs what it produced with a key that
only trusted jobs hold (``MLOPS_CI_PROVENANCE_KEY``: a CI secret of a protected branch or
an environment with required reviewers, never given to pull-request jobs), and a trusted
job reuses or loads only what carries a valid signature. The signature is an HMAC-SHA256
over a canonical JSON of the fields it covers, stored as a tag next to them.

Standard library ``hmac`` (constant-time comparison) rather than a signing library: the
signer and the verifier are the same party (trusted jobs of one project), so a shared
secret is enough and needs no key distribution.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass

from mlops_ci.errors import UsageError

KEY_ENV = "MLOPS_CI_PROVENANCE_KEY"
SIGNATURE_VERSION = "v1"
# A key shorter than this is a password, not a secret: refuse it rather than sign with it.
MIN_KEY_BYTES = 16


@dataclass(frozen=True)
class ProvenanceKey:
    """The secret trusted jobs sign with. ``repr`` never shows it."""

    secret: bytes

    def __repr__(self) -> str:
        return "ProvenanceKey(<secret>)"

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ProvenanceKey | None:
        raw = env.get(KEY_ENV, "")
        if not raw.strip():
            return None
        secret = raw.strip().encode("utf-8")
        if len(secret) < MIN_KEY_BYTES:
            raise UsageError(
                f"{KEY_ENV} is {len(secret)} bytes; use a random secret of at least {MIN_KEY_BYTES} "
                "(e.g. `openssl rand -hex 32`)"
            )
        return cls(secret)


def canonical(fields: Mapping[str, str]) -> bytes:
    """The bytes a signature covers: sorted keys, no whitespace, UTF-8."""
    return json.dumps(dict(fields), sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sign(key: ProvenanceKey, purpose: str, fields: Mapping[str, str]) -> str:
    """A signature of ``fields`` for one ``purpose`` (a signed run cannot pass for a signed
    validation): ``v1:<hex>``."""
    message = purpose.encode() + b"\n" + canonical(fields)
    return f"{SIGNATURE_VERSION}:{hmac.new(key.secret, message, hashlib.sha256).hexdigest()}"


def verify(key: ProvenanceKey, purpose: str, fields: Mapping[str, str], signature: str | None) -> bool:
    if not signature:
        return False
    return hmac.compare_digest(sign(key, purpose, fields), signature)


RUN_PURPOSE = "run"
RUN_TAG = "mlops_ci.provenance"


def run_fields(
    *, run_id: str, experiment_id: str, fingerprint: str, model_id: str, digest: str
) -> dict[str, str]:
    """What a training run's signature covers: which run, where, its reuse key, and its model
    (id and a digest of its files)."""
    return {
        "run_id": run_id,
        "experiment_id": experiment_id,
        "fingerprint": fingerprint,
        "model_id": model_id,
        "model_digest": digest,
    }
