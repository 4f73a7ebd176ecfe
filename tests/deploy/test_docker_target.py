"""Blue/green on Docker (mlops_ci/deploy/docker_target.py) against the real Docker engine
that scripts/setup/20-docker.sh starts, with real serving images built by
mlops_ci.container: a deploy that replaces a running version, a broken image that leaves
the old one serving, rollback, nothing to roll back, and an engine that does not answer.
The step's bad input (flags, exit codes) is tested in tests/steps/test_deploy.py."""

from __future__ import annotations

import json

import pytest
import requests

from mlops_ci.deploy.audit import AuditTrail
from mlops_ci.deploy.docker_target import (
    DockerDeployRequest,
    DockerService,
    connect,
    deploy_docker,
    rollback_docker,
)
from mlops_ci.deploy.outcome import CheckRecord
from mlops_ci.deploy.service import ImageRef
from mlops_ci.errors import ExternalServiceError
from tests.deploy.docker_helpers import build_census_image, on_engine, trail
from tests.helpers import free_port

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def images(docker_engine, tmp_path_factory):
    """Version 1 and version 2 of a real serving image, and a broken version 3 whose model
    file is missing (its server never becomes ready)."""
    first, tag = build_census_image(docker_engine, tmp_path_factory, "deploy-test")
    # Version 2: the same server on a new image (what a retrain produces, as far as Docker knows).
    second = f"{tag}:2"
    docker_engine.client.images.get(first).tag(tag, "2")
    broken_dir = tmp_path_factory.mktemp("broken")
    (broken_dir / "Dockerfile").write_text(
        f"FROM {first}\nUSER root\nRUN rm /model/model.onnx\nUSER 10001:10001\n"
    )
    broken = docker_engine.build(broken_dir, f"{tag}:3-broken").ref
    yield {"v1": first, "v2": second, "broken": broken}
    for ref in (broken, second, first):
        docker_engine.remove_image(ref)
    docker_engine.prune_build_stages()


def deploy(tmp_path, docker_service: str, image: str):
    return deploy_docker(DockerDeployRequest(on_engine(docker_service), ImageRef(image)), trail(tmp_path))


def serving(docker_engine, name: str) -> list[str]:
    """Names of the running containers that hold the docker_service alias."""
    network = docker_engine.client.networks.get(f"mlops-ci-{name}")
    network.reload()
    holders = []
    for container in network.containers:
        container.reload()
        aliases = container.attrs["NetworkSettings"]["Networks"][network.name].get("Aliases") or []
        if name in aliases and container.status == "running":
            holders.append(container.name)
    return holders


def answers(endpoint_url: str) -> int:
    return requests.get(endpoint_url + "/v2/health/ready", timeout=5).status_code


def test_blue_green_replace_refuse_a_broken_image_and_roll_back(
    tmp_path, docker_engine, images, docker_service
):
    first = deploy(tmp_path, docker_service, images["v1"])
    assert first.ok and first.action == "deployed", first.message
    # The version and the model come from the image's labels.
    assert (first.model, first.version, first.previous_version) == ("census-income", "1", "")
    assert first.checks == (CheckRecord("blue/green", True, first.message),)
    assert serving(docker_engine, docker_service) == [f"{docker_service}-blue"]
    v1_url = first.endpoint.split("; ")[1].removesuffix(" on the host")
    assert first.endpoint.startswith(f"http://{docker_service}:8080 on network mlops-ci-{docker_service}; ")
    assert answers(v1_url) == 200

    second = deploy(tmp_path, docker_service, images["v2"])
    assert second.ok, second.message
    assert second.previous_version == "1"
    assert serving(docker_engine, docker_service) == [f"{docker_service}-green"]
    assert (
        docker_engine.client.containers.get(f"{docker_service}-blue").status == "exited"
    )  # kept for a rollback
    assert second.message.endswith(f"{docker_service}-blue stopped, kept for a rollback")

    broken = deploy(tmp_path, docker_service, images["broken"])
    assert not broken.ok and broken.action == "failed"
    assert "failed (the container exited" in broken.message
    assert broken.checks[0].name == "blue/green" and not broken.checks[0].passed
    assert (
        docker_engine.client.containers.list(all=True, filters={"name": f"{docker_service}-candidate"}) == []
    )
    assert f"{docker_service}-green keeps serving" in broken.message
    assert serving(docker_engine, docker_service) == [f"{docker_service}-green"]
    v2_url = second.endpoint.split("; ")[1].removesuffix(" on the host")
    assert answers(v2_url) == 200

    back = rollback_docker(on_engine(docker_service), trail(tmp_path))
    assert back.ok and back.action == "rolled-back", back.message
    assert serving(docker_engine, docker_service) == [f"{docker_service}-blue"]
    assert answers(back.endpoint) == 200

    records = [json.loads(line) for line in (tmp_path / "deployments.jsonl").read_text().splitlines()]
    assert [(r["action"], r["status"]) for r in records] == [
        ("deploy", "succeeded"),
        ("deploy", "succeeded"),
        ("deploy", "failed"),
        ("rollback", "succeeded"),
    ]
    assert [r["id"] for r in records] == [o.deployment_id for o in (first, second, broken, back)]
    assert {r["commit"] for r in records} == {"abc123"}


def test_nothing_to_roll_back(tmp_path, docker_engine, docker_service):
    def no_registry():
        raise AssertionError("a refusal logs nothing")

    refused = rollback_docker(
        on_engine(docker_service), AuditTrail(tmp_path / "deployments.jsonl", no_registry, "unused")
    )
    assert (refused.ok, refused.action) == (False, "refused")
    assert refused.message == f"{docker_service} is not serving on this Docker host; nothing to roll back"
    assert refused.checks == (CheckRecord("rollback", False, refused.message),)
    assert not (tmp_path / "deployments.jsonl").exists()


def test_an_engine_that_does_not_answer():
    where = f"tcp://127.0.0.1:{free_port()}"
    with pytest.raises(ExternalServiceError, match=f"^no Docker engine answers at {where} ") as caught:
        connect(where, {})
    assert "--" not in str(caught.value)


def test_the_environment_is_never_shown():
    where = DockerService(name="svc", env={"GITHUB_TOKEN": "t0ken"})
    assert "t0ken" not in repr(where) and "t0ken" not in repr(DockerDeployRequest(where, ImageRef("x:1")))
