"""Deployment to Kubernetes (mlops_ci/deploy/kubernetes_target.py): a request rendered and
validated into manifests, the profile's recommendation passed in as data, and a cluster
that does not answer. No Kubernetes API server can run on these machines (none is packaged
for Debian 12, PyPI or npm), so a rollout is not tested here; see the README."""

from __future__ import annotations

import pytest
import yaml

from mlops_ci.deploy.audit import AuditTrail
from mlops_ci.deploy.errors import SettingError
from mlops_ci.deploy.kube_manifests import Sizing
from mlops_ci.deploy.kubernetes_target import (
    ClusterAccess,
    KubernetesDeployRequest,
    KubernetesRollbackRequest,
    deploy_kubernetes,
    rollback_kubernetes,
)
from mlops_ci.deploy.service import ImageRef
from mlops_ci.errors import ExternalServiceError
from tests.helpers import free_port

IMAGE = "ghcr.io/acme/census-income:9f2c1ab"
DIGEST = "sha256:" + "4b825dc6" * 8


def no_registry():
    raise AssertionError("rendering logs nothing")


def local_trail(tmp_path) -> AuditTrail:
    return AuditTrail(tmp_path / "deployments.jsonl", no_registry, "unused")


def request(tmp_path, **changes) -> KubernetesDeployRequest:
    fields = {
        "name": "census-income",
        "image": ImageRef(IMAGE, DIGEST),
        "manifests_dir": tmp_path / "kubernetes",
        "namespace": "ml",
        "model": "census-income",
        "version": "7",
        "commit": "9f2c1ab",
        **changes,
    }
    return KubernetesDeployRequest(**fields)


def test_render_only_with_the_profile_recommendation(tmp_path):
    recommended = Sizing(cpu_request="300m", cpu_limit="1500m", memory_request="160Mi", replicas=3)
    outcome = deploy_kubernetes(
        request(tmp_path, sizing=Sizing(memory_limit="400Mi", max_replicas=9), recommended=recommended),
        local_trail(tmp_path),
    )
    assert (outcome.target, outcome.action, outcome.ok) == ("kubernetes", "rendered", True)
    path = tmp_path / "kubernetes" / "census-income.yaml"
    assert outcome.message == (
        "rendered Deployment, Service, HorizontalPodAutoscaler, PodDisruptionBudget for census-income "
        "(3 replicas, CPU 300m/1500m, memory 160Mi/400Mi from flags+profile) into " + str(path)
    )
    assert outcome.image == f"ghcr.io/acme/census-income@{DIGEST}"
    assert (outcome.model, outcome.version, outcome.manifests) == (
        "census-income",
        "7",
        tmp_path / "kubernetes",
    )
    assert outcome.artifacts == (path,) and outcome.deployment_id is None
    (valid,) = outcome.checks
    assert valid.name == "manifests valid" and valid.passed
    assert dict(valid.details) == {"problems": [], "resources": "flags+profile"}
    deployment, _, autoscaler, _ = yaml.safe_load_all(path.read_text())
    assert deployment["spec"]["replicas"] == 3 and autoscaler["spec"]["maxReplicas"] == 9
    assert deployment["metadata"]["annotations"]["mlops-ci/model-uri"] == "models:/census-income/7"
    assert deployment["spec"]["progressDeadlineSeconds"] == 120
    assert not (tmp_path / "deployments.jsonl").exists()


def test_an_unnamed_model_reports_empty_values(tmp_path):
    outcome = deploy_kubernetes(
        request(tmp_path, model=None, version=None, image=ImageRef(IMAGE), kind="kserve"),
        local_trail(tmp_path),
    )
    assert outcome.ok and (outcome.model, outcome.version, outcome.image) == ("", "", IMAGE)


def test_a_bad_setting_is_refused_before_anything_is_written(tmp_path):
    with pytest.raises(SettingError) as caught:
        deploy_kubernetes(request(tmp_path, kind="knative"), local_trail(tmp_path))
    assert caught.value.setting == "kind"
    with pytest.raises(SettingError) as caught:
        deploy_kubernetes(request(tmp_path, kubernetes_version="2"), local_trail(tmp_path))
    assert caught.value.setting == "kubernetes-version"
    assert not (tmp_path / "kubernetes").exists()


def unreachable(tmp_path) -> ClusterAccess:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": f"http://127.0.0.1:{free_port()}"}}],
                "users": [{"name": "u", "user": {"token": "t0ken-for-nothing"}}],
                "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "x",
            }
        )
    )
    return ClusterAccess(kubeconfig, retry_budget_s=1)


def test_a_cluster_that_does_not_answer(tmp_path):
    cluster = unreachable(tmp_path)
    with pytest.raises(
        ExternalServiceError, match="the Kubernetes API did not let us reach the Kubernetes API"
    ):
        deploy_kubernetes(request(tmp_path, cluster=cluster), local_trail(tmp_path))
    assert (tmp_path / "kubernetes" / "census-income.yaml").is_file()  # rendered before applying
    with pytest.raises(ExternalServiceError, match="did not let us reach the Kubernetes API"):
        rollback_kubernetes(
            KubernetesRollbackRequest("census-income", cluster, tmp_path / "kubernetes"),
            local_trail(tmp_path),
        )
