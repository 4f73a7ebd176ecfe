"""Requests and model finders for the profiling tests that decide without measuring."""

from __future__ import annotations

from dataclasses import replace

import pytest

from mlops_ci.profiling.models import ModelFinder
from mlops_ci.profiling.recommend import Objective
from mlops_ci.profiling.request import ModelChoice, ProfileRequest, ServerSettings, SweepSettings


def refuse_store():
    raise AssertionError("the MLflow store is not needed here")


@pytest.fixture
def no_store():
    """A store provider that fails the test when it is called."""
    return refuse_store


@pytest.fixture
def make_request(tmp_path):
    """A request for ``models`` with the python load generator (no wrk needed) and no
    Docker engine reachable; ``server`` fields replace the defaults."""

    def make(models: ModelChoice, **server) -> ProfileRequest:
        env = {"PATH": "/nonexistent", "DOCKER_HOST": f"unix://{tmp_path}/no-docker.sock"}
        return ProfileRequest(
            models=models,
            objective=Objective(slo_p99_ms=100, target_rps=None),
            out_dir=tmp_path / ".mlops-ci",
            cwd=tmp_path,
            server=replace(ServerSettings(), **server),
            sweeps=SweepSettings(load_generator="python"),
            env=env,
        )

    return make


@pytest.fixture
def finder_for(tmp_path):
    def make(request: ProfileRequest) -> ModelFinder:
        return ModelFinder(request.models, request.out_dir, request.cwd, refuse_store)

    return make
