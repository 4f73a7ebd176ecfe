"""Blue/green on Docker (mlops_ci/deploy/docker_target.py) against the real Docker engine
that scripts/setup/20-docker.sh starts, with real serving images built by
mlops_ci.container: a deploy that replaces a running version, a broken image that leaves
the old one serving, rollback, nothing to roll back, and an engine that does not answer.
The step's bad input (flags, exit codes) is tested in tests/steps/test_deploy.py."""

from __future__ import annotations

import json
import os
import uuid

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
from mlops_ci.tracking.store import resolve_store
from tests.helpers import free_port, missing
from tests.model_fixtures import census_pipeline, write_model_dir

pytestmark = pytest.mark.slow
BASE_IMAGE = os.environ.get("MLOPS_CI_TEST_BASE_IMAGE", "localhost/mlops-ci-test-base:bookworm")


@pytest.fixture(scope="module")
def engine():
    from mlops_ci.container.engine import find_engine

    found, why = find_engine("docker", os.environ)
    if found is None:
        missing(f"a Docker engine ({why})", install="scripts/setup/20-docker.sh")
    return found


@pytest.fixture(scope="module")
def images(engine, tmp_path_factory):
    """Version 1 and version 2 of a real serving image, and a broken version 3 whose model
    file is missing (its server never becomes ready)."""
    from mlops_ci.container.context import oci_labels, render_context
    from mlops_ci.container.wheels import default_platform
    from mlops_ci.serving.settings import load_settings

    tag = f"localhost/deploy-test-{uuid.uuid4().hex[:8]}"
    folder = tmp_path_factory.mktemp("model")
    write_model_dir(folder, census_pipeline(rows=500), name="census-income", version="1")
    settings = load_settings(folder)
    context = render_context(
        tmp_path_factory.mktemp("context") / "ctx",
        onnx_bytes=(folder / settings.model_file).read_bytes(),
        settings=settings,
        image=f"{tag}:1",
        base_image=BASE_IMAGE,
        labels=oci_labels(settings, source_url=None, commit=None, model_uri=None),
        python_version="3.11",
        platform_tag=default_platform(),
    )
    first = engine.build(context.path, f"{tag}:1").ref
    # Version 2: the same server on a new image (what a retrain produces, as far as Docker knows).
    second = f"{tag}:2"
    engine.client.images.get(first).tag(tag, "2")
    broken_dir = tmp_path_factory.mktemp("broken")
    (broken_dir / "Dockerfile").write_text(
        f"FROM {first}\nUSER root\nRUN rm /model/{settings.model_file}\nUSER 10001:10001\n"
    )
    broken = engine.build(broken_dir, f"{tag}:3-broken").ref
    yield {"v1": first, "v2": second, "broken": broken}
    for ref in (broken, second, first):
        engine.remove_image(ref)
    engine.prune_build_stages()


@pytest.fixture
def service(engine):
    name = f"svc-{uuid.uuid4().hex[:8]}"
    yield name
    for container in engine.client.containers.list(
        all=True, filters={"label": f"io.mlops-ci.service={name}"}
    ):
        container.remove(force=True)
    for network in engine.client.networks.list(names=[f"mlops-ci-{name}"]):
        network.remove()


def on_engine(name: str) -> DockerService:
    return DockerService(name=name, env={"DOCKER_HOST": os.environ["DOCKER_HOST"]}, ready_timeout_s=60)


def trail(tmp_path) -> AuditTrail:
    """The local log in tmp_path; the registry an embedded store that does not know the model
    (the deployments are then logged locally only)."""
    return AuditTrail(
        log_path=tmp_path / "deployments.jsonl",
        store=lambda: resolve_store(None, project_dir=tmp_path, retry_timeout_s=5),
        experiment="deploy-test",
        context={"commit": "abc123"},
    )


def deploy(tmp_path, service: str, image: str):
    return deploy_docker(DockerDeployRequest(on_engine(service), ImageRef(image)), trail(tmp_path))


def serving(engine, name: str) -> list[str]:
    """Names of the running containers that hold the service alias."""
    network = engine.client.networks.get(f"mlops-ci-{name}")
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


def test_blue_green_replace_refuse_a_broken_image_and_roll_back(tmp_path, engine, images, service):
    first = deploy(tmp_path, service, images["v1"])
    assert first.ok and first.action == "deployed", first.message
    # The version and the model come from the image's labels.
    assert (first.model, first.version, first.previous_version) == ("census-income", "1", "")
    assert first.checks == (CheckRecord("blue/green", True, first.message),)
    assert serving(engine, service) == [f"{service}-blue"]
    v1_url = first.endpoint.split("; ")[1].removesuffix(" on the host")
    assert first.endpoint.startswith(f"http://{service}:8080 on network mlops-ci-{service}; ")
    assert answers(v1_url) == 200

    second = deploy(tmp_path, service, images["v2"])
    assert second.ok, second.message
    assert second.previous_version == "1"
    assert serving(engine, service) == [f"{service}-green"]
    assert engine.client.containers.get(f"{service}-blue").status == "exited"  # kept for a rollback
    assert second.message.endswith(f"{service}-blue stopped, kept for a rollback")

    broken = deploy(tmp_path, service, images["broken"])
    assert not broken.ok and broken.action == "failed"
    assert "failed (the container exited" in broken.message
    assert broken.checks[0].name == "blue/green" and not broken.checks[0].passed
    assert engine.client.containers.list(all=True, filters={"name": f"{service}-candidate"}) == []
    assert f"{service}-green keeps serving" in broken.message
    assert serving(engine, service) == [f"{service}-green"]
    v2_url = second.endpoint.split("; ")[1].removesuffix(" on the host")
    assert answers(v2_url) == 200

    back = rollback_docker(on_engine(service), trail(tmp_path))
    assert back.ok and back.action == "rolled-back", back.message
    assert serving(engine, service) == [f"{service}-blue"]
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


def test_nothing_to_roll_back(tmp_path, engine, service):
    def no_registry():
        raise AssertionError("a refusal logs nothing")

    refused = rollback_docker(
        on_engine(service), AuditTrail(tmp_path / "deployments.jsonl", no_registry, "unused")
    )
    assert (refused.ok, refused.action) == (False, "refused")
    assert refused.message == f"{service} is not serving on this Docker host; nothing to roll back"
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
