"""The pieces of the Docker canary that need no engine: the nginx routes rendered for each
stage (weights, baseline, mirror), the plan's checks, and the proxy image's tag."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from mlops_ci.deploy import proxy as px
from mlops_ci.deploy.docker_canary import ProgressivePlan, routes_for, stages

STABLE, BASELINE, CANARY = (SimpleNamespace(name=n) for n in ("svc-blue", "svc-baseline", "svc-candidate"))


def split(percent: int) -> list[tuple[str, int]]:
    routes = routes_for(percent, STABLE, "10.0.0.2", BASELINE, "10.0.0.3", CANARY, "10.0.0.4")
    return [(backend.address, backend.weight) for backend in routes.servers]


def test_a_canary_step_gives_the_baseline_the_same_share():
    assert split(10) == [("10.0.0.4", 10), ("10.0.0.3", 10), ("10.0.0.2", 80)]
    assert split(50) == [("10.0.0.4", 50), ("10.0.0.3", 50)]
    # Above half there is not enough left for an equal baseline: it gets the rest.
    assert split(75) == [("10.0.0.4", 75), ("10.0.0.3", 25)]


def test_a_shadow_answers_from_the_stable_version_and_mirrors_to_the_candidate():
    routes = routes_for(0, STABLE, "10.0.0.2", STABLE, "10.0.0.2", CANARY, "10.0.0.4")
    assert routes.servers == (px.Backend("10.0.0.2", 100),) and routes.shadow == "10.0.0.4"
    text = px.render_routes("svc", routes, "gen1")
    assert "server 10.0.0.2:8080 weight=100 max_fails=0;" in text
    assert "mirror /__mlops-ci/shadow;" in text and "server 10.0.0.4:8080 max_fails=0;" in text
    assert 'return 200 "gen1\\n";' in text


def test_weighted_routes_without_a_shadow_have_no_mirror():
    text = px.render_routes("svc", px.Routes((px.Backend("10.0.0.2", 90), px.Backend("10.0.0.4", 10))), "g")
    assert "weight=90" in text and "weight=10" in text and "mirror" not in text


@pytest.mark.parametrize("servers", [(), (px.Backend("10.0.0.2", 0),), (px.Backend("10.0.0.2", 101),)])
def test_routes_need_servers_with_weights_from_1_to_100(servers):
    with pytest.raises(ValueError, match="weights 1-100"):
        px.render_routes("svc", px.Routes(servers), "g")


def test_the_plan_and_its_stages():
    assert stages(ProgressivePlan()) == (10, 50)
    assert stages(ProgressivePlan(steps=(100,))) == ()
    assert stages(ProgressivePlan(strategy="shadow")) == (0,)
    with pytest.raises(ValueError, match="`steps` must be ascending"):
        ProgressivePlan(steps=(50, 10))
    with pytest.raises(ValueError, match="`steps` must be ascending"):
        ProgressivePlan(steps=(0, 100))
    with pytest.raises(ValueError, match="`strategy` must be one of canary, shadow"):
        ProgressivePlan(strategy="replace")


def test_the_proxy_image_tag_follows_the_base_image():
    one, other = px.proxy_image_tag("python:3.11-slim"), px.proxy_image_tag("debian:bookworm-slim")
    assert one.startswith("localhost/mlops-ci-proxy:") and one != other
    assert px.proxy_image_tag("python:3.11-slim") == one
