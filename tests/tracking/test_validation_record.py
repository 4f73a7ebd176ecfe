"""The validation record deploy believes: a signature binds every field to one version."""

from __future__ import annotations

import pytest

from mlops_ci.tracking import validation_record as record
from mlops_ci.tracking.provenance import ProvenanceKey

KEY = ProvenanceKey(b"v" * 32)
TAGS = {record.STATUS_TAG: "passed", record.CHAMPION_TAG: "3", record.AT_TAG: "2026-12-07T10:00:00+00:00"}


def test_a_signed_record_verifies_for_its_own_version_only():
    signed = record.signed(KEY, "census", "4", TAGS)
    assert record.verified(KEY, "census", "4", signed)
    assert not record.verified(KEY, "census", "5", signed)
    assert not record.verified(KEY, "census-candidates", "4", signed)
    assert not record.verified(ProvenanceKey(b"w" * 32), "census", "4", signed)
    assert not record.verified(KEY, "census", "4", TAGS)  # unsigned


@pytest.mark.parametrize(
    ("tag", "value"),
    [(record.STATUS_TAG, "failed"), (record.CHAMPION_TAG, "2"), (record.AT_TAG, "2026-12-08T10:00:00+00:00")],
)
def test_changing_any_field_after_signing_breaks_the_signature(tag, value):
    signed = record.signed(KEY, "census", "4", TAGS)
    assert not record.verified(KEY, "census", "4", {**signed, tag: value})
