"""Storing a profile with its model version: only a registered version has one (the version
itself, on a real MLflow server, is covered by tests/steps/test_profile.py)."""

from __future__ import annotations

from mlops_ci.profiling.models import ModelUnderTest
from mlops_ci.profiling.registry import store_profile


def test_an_unregistered_model_is_not_stored_and_the_registry_is_not_asked(tmp_path, no_store):
    for candidate in (
        ModelUnderTest(tmp_path, source="a folder"),
        ModelUnderTest(tmp_path, "s", name="census"),
    ):
        assert (
            store_profile(
                candidate, tmp_path, figures={}, status="passed", at="", commit=None, store=no_store
            )
            is None
        )
