"""Progressive delivery on Kubernetes, rendered and validated offline: two Deployments with
a Gateway API HTTPRoute splitting by weight (or mirroring, for a shadow), and KServe's
canaryTrafficPercent in Serverless mode; the schemas catch mistakes in the fields we
render, and the settings that cannot work are refused by name."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from mlops_ci.deploy import kube_manifests as km
from mlops_ci.deploy.audit import AuditTrail
from mlops_ci.deploy.errors import SettingError
from mlops_ci.deploy.kubernetes_target import ClusterAccess, KubernetesDeployRequest, deploy_kubernetes
from mlops_ci.deploy.service import ImageRef

IMAGE = "ghcr.io/acme/census-income:9f2c1ab"


def spec(kind: str = "deployment") -> km.Spec:
    return km.Spec(name="census", namespace="ml", image=IMAGE, resources=km.resources(), kind=kind)


def test_a_canary_step_is_two_deployments_and_a_weighted_route():
    objects = km.render_progressive(spec(), strategy="canary", percent=10, gateway="public")
    assert [(o["kind"], o["metadata"]["name"]) for o in objects] == [
        ("Deployment", "census-canary"),
        ("Service", "census-canary"),
        ("HTTPRoute", "census"),
    ]
    assert objects[0]["spec"]["selector"]["matchLabels"] == {"app.kubernetes.io/name": "census-canary"}
    refs = objects[2]["spec"]["rules"][0]["backendRefs"]
    assert [(r["name"], r["weight"]) for r in refs] == [("census", 90), ("census-canary", 10)]
    assert objects[2]["spec"]["parentRefs"][0]["name"] == "public"
    assert km.validate(objects, version="1.30") == []


def test_a_shadow_mirrors_to_the_canary():
    route = km.render_progressive(spec(), strategy="shadow", percent=0, gateway="public")[2]
    rule = route["spec"]["rules"][0]
    assert [(r["name"], r["weight"]) for r in rule["backendRefs"]] == [("census", 100)]
    assert rule["filters"][0]["requestMirror"]["backendRef"]["name"] == "census-canary"
    assert km.validate([route], version="1.30") == []


def test_the_route_schema_catches_mistakes():
    route = km.render_progressive(spec(), strategy="canary", percent=50, gateway="public")[2]
    route["spec"]["rules"][0]["backendRefs"][1]["weight"] = -1
    route["spec"]["rules"][0]["backendRefs"][0]["wieght"] = 1
    problems = km.validate([route], version="1.30")
    assert len(problems) == 2, problems
    assert all(p.startswith("HTTPRoute/census: spec.rules.0.backendRefs.") for p in problems)
    assert any("-1 is less than the minimum of 0" in p for p in problems)
    assert any("'wieght' was unexpected" in p for p in problems)


def test_kserve_canary_traffic_percent_in_serverless_mode():
    (service,) = km.render_progressive(spec("kserve"), strategy="canary", percent=10, gateway=None)
    assert service["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == "Serverless"
    assert service["spec"]["predictor"]["canaryTrafficPercent"] == 10
    assert km.validate([service], version="1.30") == []
    service["spec"]["predictor"]["canaryTrafficPercent"] = 101
    (problem,) = km.validate([service], version="1.30")
    assert problem.startswith("InferenceService/census: spec.predictor.canaryTrafficPercent: 101 is greater")


def test_settings_that_cannot_work_are_refused_by_name():
    with pytest.raises(SettingError) as caught:
        km.render_progressive(spec("kserve"), strategy="shadow", percent=0, gateway=None)
    assert caught.value.setting == "strategy"
    with pytest.raises(SettingError) as caught:
        km.render_progressive(spec(), strategy="canary", percent=10, gateway=None)
    assert caught.value.setting == "gateway"
    with pytest.raises(SettingError) as caught:
        km.render_progressive(spec(), strategy="canary", percent=10, gateway="Not_A_Name")
    assert caught.value.setting == "gateway"


def request(tmp_path: Path, **changes) -> KubernetesDeployRequest:
    values = {
        "name": "census",
        "image": ImageRef(IMAGE),
        "manifests_dir": tmp_path / "kubernetes",
        "namespace": "ml",
        "model": "census",
        "version": "4",
        "strategy": "canary",
        "steps": (10, 50, 100),
        "gateway": "public",
    }
    values.update(changes)
    return KubernetesDeployRequest(**values)


def trail(tmp_path: Path) -> AuditTrail:
    def no_registry():
        raise AssertionError("a render logs nothing to the registry")

    return AuditTrail(tmp_path / "deployments.jsonl", no_registry, "unused")


def test_deploy_renders_one_file_per_step_and_the_promotion(tmp_path):
    outcome = deploy_kubernetes(request(tmp_path), trail(tmp_path))
    assert outcome.ok and outcome.action == "rendered", outcome.message
    assert outcome.strategy == "canary"
    names = [path.name for path in outcome.artifacts]
    assert names == ["census.canary-10.yaml", "census.canary-50.yaml", "census.yaml"]
    step = list(yaml.safe_load_all(outcome.artifacts[1].read_text()))
    assert [r["weight"] for r in step[2]["spec"]["rules"][0]["backendRefs"]] == [50, 50]
    assert outcome.checks[0].passed and "3 sets of manifests" in outcome.checks[0].message

    kserve = deploy_kubernetes(request(tmp_path, kind="kserve", gateway=None), trail(tmp_path))
    assert [p.name for p in kserve.artifacts] == [
        "census.canary-10.yaml",
        "census.canary-50.yaml",
        "census.canary-100.yaml",
    ]


def test_a_cluster_rollout_is_refused_naming_the_strategy(tmp_path):
    with pytest.raises(SettingError) as caught:
        deploy_kubernetes(request(tmp_path, cluster=ClusterAccess(tmp_path / "kubeconfig")), trail(tmp_path))
    assert caught.value.setting == "strategy"
    assert not (tmp_path / "kubernetes").exists()
