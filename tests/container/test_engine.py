"""Choosing a container engine (container.engine.find_engine): the real Docker engine when
it answers, buildah when installed, otherwise None and a reason in domain terms."""

from __future__ import annotations

import os

import pytest

from mlops_ci.container.buildah_engine import BuildahEngine
from mlops_ci.container.docker_engine import DockerEngine
from mlops_ci.container.engine import find_engine
from mlops_ci.errors import UsageError

NO_DOCKER = "unix:///nonexistent/mlops-ci-test.sock"


def test_none_switches_building_off():
    assert find_engine("none", {}) == (None, "image building is switched off")


def test_an_unknown_engine_is_a_usage_error_that_names_no_flag():
    with pytest.raises(
        UsageError, match="container engine must be one of auto, docker, buildah, none"
    ) as caught:
        find_engine("kaniko", {})
    assert "--" not in str(caught.value)


def test_without_docker_or_buildah_the_reasons_are_given(tmp_path):
    env = {"DOCKER_HOST": NO_DOCKER, "PATH": str(tmp_path)}
    engine, why = find_engine("docker", env)
    assert engine is None and why.startswith(f"no Docker engine answers at {NO_DOCKER} (")
    engine, why = find_engine("auto", env)
    assert engine is None and why.endswith("; buildah is not installed") and NO_DOCKER in why
    assert find_engine("buildah", env) == (None, "buildah is not installed")


def test_auto_falls_back_to_buildah_when_docker_does_not_answer(tmp_path):
    buildah = tmp_path / "buildah"
    buildah.write_text("#!/bin/sh\nexit 0\n")
    buildah.chmod(0o755)
    engine, why = find_engine("auto", {"DOCKER_HOST": NO_DOCKER, "PATH": str(tmp_path)})
    assert isinstance(engine, BuildahEngine) and why == ""


@pytest.mark.skipif(not os.environ.get("DOCKER_HOST"), reason="DOCKER_HOST names no Docker engine")
def test_the_docker_engine_that_docker_host_names_is_found():
    engine, why = find_engine("auto", os.environ)
    assert isinstance(engine, DockerEngine), why
    assert why == "" and engine.describe().startswith("Docker ")
