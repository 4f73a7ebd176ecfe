"""Signatures that only the holder of the provenance key can make."""

from __future__ import annotations

import pytest

from mlops_ci.errors import UsageError
from mlops_ci.tracking import provenance
from mlops_ci.tracking.provenance import KEY_ENV, MIN_KEY_BYTES, ProvenanceKey

KEY = ProvenanceKey(b"k" * 32)
FIELDS = {"run_id": "abc", "fingerprint": "f" * 64}


def test_a_signature_verifies_only_for_the_same_key_purpose_and_fields():
    signature = provenance.sign(KEY, "run", FIELDS)
    assert signature.startswith("v1:") and provenance.verify(KEY, "run", FIELDS, signature)
    assert not provenance.verify(ProvenanceKey(b"x" * 32), "run", FIELDS, signature)
    assert not provenance.verify(KEY, "validation", FIELDS, signature)
    assert not provenance.verify(KEY, "run", {**FIELDS, "run_id": "abd"}, signature)
    assert not provenance.verify(KEY, "run", {**FIELDS, "extra": ""}, signature)
    assert not provenance.verify(KEY, "run", FIELDS, None)
    assert not provenance.verify(KEY, "run", FIELDS, "")


def test_field_order_does_not_matter_but_every_byte_does():
    reordered = dict(reversed(list(FIELDS.items())))
    assert provenance.sign(KEY, "run", reordered) == provenance.sign(KEY, "run", FIELDS)
    assert provenance.canonical({"a": "é"}) == '{"a":"é"}'.encode()


def test_the_key_comes_from_the_environment_and_a_short_one_is_refused():
    assert ProvenanceKey.from_env({}) is None
    assert ProvenanceKey.from_env({KEY_ENV: "  "}) is None
    assert ProvenanceKey.from_env({KEY_ENV: "s" * MIN_KEY_BYTES}) == ProvenanceKey(b"s" * MIN_KEY_BYTES)
    with pytest.raises(UsageError, match=f"{KEY_ENV} is {MIN_KEY_BYTES - 1} bytes"):
        ProvenanceKey.from_env({KEY_ENV: "s" * (MIN_KEY_BYTES - 1)})
    assert "s" * MIN_KEY_BYTES not in repr(ProvenanceKey.from_env({KEY_ENV: "s" * MIN_KEY_BYTES}))
