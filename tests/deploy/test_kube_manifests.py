"""Kubernetes manifests (mlops_ci/deploy/kube_manifests.py): the resources chosen from what
was asked, the profile's recommendation and defaults; names; validation against the
Kubernetes schemas offline, and the setting each refusal points at."""

from __future__ import annotations

import pytest

from mlops_ci.deploy import kube_manifests
from mlops_ci.deploy.errors import SettingError
from mlops_ci.errors import UsageError

IMAGE = "ghcr.io/acme/census-income:9f2c1ab"


@pytest.mark.parametrize("version", ["1.25", "1.30", "1.37"])
def test_the_schemas_catch_mistakes(version):
    spec = kube_manifests.Spec(
        name="m",
        namespace="default",
        image=IMAGE,
        resources=kube_manifests.resources(),
    )
    objects = kube_manifests.render(spec)
    assert kube_manifests.validate(objects, version=version) == []
    objects[0]["spec"]["template"]["spec"]["containers"][0]["imagePullPolicyy"] = "Always"
    objects[3]["spec"]["maxUnavailable"] = [1]
    problems = kube_manifests.validate(objects, version=version)
    assert len(problems) == 2
    assert (
        problems[0].startswith("Deployment/m: spec.template.spec.containers.0:")
        and "imagePullPolicyy" in problems[0]
    )
    assert problems[1].startswith("PodDisruptionBudget/m: spec.maxUnavailable:")
    kserve = kube_manifests.render(
        kube_manifests.Spec(
            name="m", namespace="default", image=IMAGE, resources=spec.resources, kind="kserve"
        )
    )
    kserve[0]["spec"]["predictor"]["containers"][0]["resources"]["limits"]["memory"] = {"Mi": 5}
    kserve[0]["spec"]["predictor"]["scaleMetric"] = "gpu"
    problems = kube_manifests.validate(kserve, version=version)
    assert [p.split(":")[1].strip() for p in problems] == [
        "spec.predictor.containers.0.resources.limits.memory",
        "spec.predictor.scaleMetric",
    ]


def test_resources_asked_then_recommended_then_defaults():
    recommended = kube_manifests.Sizing(cpu_request="300m", memory_limit="320Mi", replicas=3)
    found = kube_manifests.resources(kube_manifests.Sizing(cpu_limit="2"), recommended)
    assert (found.cpu_request, found.cpu_limit, found.memory_request, found.memory_limit) == (
        "300m",
        "2",
        "256Mi",
        "320Mi",
    )
    assert (found.replicas, found.max_replicas, found.source) == (3, 12, "defaults+flags+profile")
    plain = kube_manifests.resources()
    assert (plain.replicas, plain.max_replicas, plain.source) == (2, 8, "defaults")
    asked = kube_manifests.resources(kube_manifests.Sizing(replicas=1), recommended)
    assert asked.replicas == 1 and asked.max_replicas == 4


def test_resource_refusals_name_the_setting_not_a_flag():
    with pytest.raises(SettingError) as caught:
        kube_manifests.resources(kube_manifests.Sizing(replicas=5, max_replicas=3))
    assert (caught.value.setting, str(caught.value)) == (
        "max-replicas",
        "max-replicas 3 is below the replicas 5",
    )
    with pytest.raises(UsageError, match=r"cpu-limit 'lots' \(from profile\) is not a Kubernetes quantity"):
        kube_manifests.resources(None, kube_manifests.Sizing(cpu_limit="lots"))


@pytest.mark.parametrize(
    ("spec", "setting"),
    [
        ({"name": "Bad_Name"}, "name"),
        ({"namespace": "Prod"}, "namespace"),
        ({"kind": "knative"}, "kind"),
    ],
)
def test_render_refuses_a_bad_name_namespace_or_kind(spec, setting):
    good = {"name": "m", "namespace": "ml", "image": IMAGE, "resources": kube_manifests.resources()}
    assert kube_manifests.render(kube_manifests.Spec(**good))
    with pytest.raises(SettingError) as caught:
        kube_manifests.render(kube_manifests.Spec(**{**good, **spec}))
    assert caught.value.setting == setting and "--" not in str(caught.value)


def test_names():
    assert kube_manifests.kube_name("census_income.v2") == "census-income-v2"
    assert kube_manifests.kube_name("__") == "model"
    assert kube_manifests.check_name("a" * 63) == "a" * 63
    with pytest.raises(SettingError, match=r"^namespace 'a-' is not a valid Kubernetes name") as caught:
        kube_manifests.check_name("a-", "namespace")
    assert caught.value.setting == "namespace"
    with pytest.raises(SettingError):
        kube_manifests.check_name("a" * 64)


@pytest.mark.parametrize(
    ("version", "problem"),
    [
        ("1.x", "must look like 1.30, got '1.x'"),
        ("1.99", "1.99 is outside the schemas kubernetes-validate ships"),
    ],
)
def test_validate_refuses_an_unknown_kubernetes_version(version, problem):
    objects = kube_manifests.render(
        kube_manifests.Spec(name="m", namespace="ml", image=IMAGE, resources=kube_manifests.resources())
    )
    with pytest.raises(SettingError) as caught:
        kube_manifests.validate(objects, version=version)
    assert caught.value.setting == "kubernetes-version" and caught.value.problem.startswith(problem)


def test_image_ref_pins_a_registry_digest():
    digest = "sha256:" + "4b825dc6" * 8
    assert kube_manifests.image_ref(IMAGE, digest) == f"ghcr.io/acme/census-income@{digest}"
    assert kube_manifests.image_ref("localhost:5000/m", digest) == f"localhost:5000/m@{digest}"
    assert kube_manifests.image_ref(IMAGE, None) == IMAGE
    assert kube_manifests.image_ref(IMAGE, "4b825dc6") == IMAGE
