"""`mlops-ci deploy --target docker` against the real Docker engine that
scripts/setup/20-docker.sh starts, with real serving images built by mlops_ci.container:
a deploy that replaces a running version, a broken image that leaves the old one serving,
rollback, and bad input."""

from __future__ import annotations

import json
import os
import uuid

import pytest
import requests

from mlops_ci.runner import run_step
from tests.helpers import cli_env, free_port, run_cli
from tests.model_fixtures import census_pipeline, write_model_dir

pytestmark = pytest.mark.slow
BASE_IMAGE = os.environ.get("MLOPS_CI_TEST_BASE_IMAGE", "localhost/mlops-ci-test-base:bookworm")


@pytest.fixture(scope="module")
def engine():
    from mlops_ci.container.engine import find_engine

    found, why = find_engine("docker", os.environ)
    if found is None:
        if os.environ.get("CI"):
            pytest.fail(f"CI needs a Docker engine (scripts/setup/20-docker.sh): {why}")
        pytest.skip(why)
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


def deploy(tmp_path, **flags):
    env = {"DOCKER_HOST": os.environ["DOCKER_HOST"]}
    return run_step("deploy", {"target": "docker", "ready_timeout": "60", **flags}, env=env, cwd=tmp_path)


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
    first = deploy(tmp_path, image=images["v1"], name=service)
    assert first.status == "passed", first.summary
    assert serving(engine, service) == [f"{service}-blue"]
    v1_url = first.outputs["endpoint"].split("; ")[1].removesuffix(" on the host")
    assert answers(v1_url) == 200

    second = deploy(tmp_path, image=images["v2"], name=service)
    assert second.status == "passed", second.summary
    assert second.outputs["previous-version"] == "1"
    assert serving(engine, service) == [f"{service}-green"]
    assert engine.client.containers.get(f"{service}-blue").status == "exited"  # kept for --rollback

    broken = deploy(tmp_path, image=images["broken"], name=service)
    assert broken.status == "failed" and broken.outputs["action"] == "failed"
    assert "failed (the container exited" in broken.summary
    assert engine.client.containers.list(all=True, filters={"name": f"{service}-candidate"}) == []
    assert f"{service}-green keeps serving" in broken.summary
    assert serving(engine, service) == [f"{service}-green"]
    v2_url = second.outputs["endpoint"].split("; ")[1].removesuffix(" on the host")
    assert answers(v2_url) == 200

    back = deploy(tmp_path, name=service, rollback=True)
    assert back.status == "passed", back.summary
    assert serving(engine, service) == [f"{service}-blue"]
    assert answers(back.outputs["endpoint"]) == 200

    records = [
        json.loads(line) for line in (tmp_path / ".mlops-ci" / "deployments.jsonl").read_text().splitlines()
    ]
    assert [(r["action"], r["status"]) for r in records] == [
        ("deploy", "succeeded"),
        ("deploy", "succeeded"),
        ("deploy", "failed"),
        ("rollback", "succeeded"),
    ]


def test_bad_input(tmp_path, engine, service):
    env = cli_env(DOCKER_HOST=os.environ["DOCKER_HOST"])
    done = run_cli(
        ["deploy", "--target", "docker", "--name", service, "--image", "localhost/no-such:1"],
        cwd=tmp_path,
        env=env,
    )
    assert (
        done.returncode == 2 and "image localhost/no-such:1 does not exist on Docker" in done.error_lines[0]
    )
    done = run_cli(["deploy", "--target", "docker", "--name", service], cwd=tmp_path, env=env)
    assert done.returncode == 2 and "no image to deploy" in done.error_lines[0]
    unreachable = cli_env(DOCKER_HOST=f"tcp://127.0.0.1:{free_port()}")
    done = run_cli(
        ["deploy", "--target", "docker", "--name", service, "--image", "x:1"], cwd=tmp_path, env=unreachable
    )
    assert done.returncode == 3
    assert done.error_lines[0].startswith(
        "mlops-ci deploy: error: no Docker engine answers at tcp://127.0.0.1:"
    )
