"""`mlops-ci deploy --target kubernetes`: rendered manifests validated against the
Kubernetes schemas, resources from profile.json, bad input; the rollout logic on the
status objects a Deployment and an InferenceService report.

No Kubernetes API server can run on these machines (none is packaged for Debian 12, PyPI
or npm, and the Go module proxy is unreachable), so applying to a cluster is not tested
here; see the README."""

from __future__ import annotations

import json

import pytest
import yaml

from mlops_ci.deploy import kube_apply, kube_manifests
from mlops_ci.result import StepResult
from mlops_ci.runner import run_step
from tests.helpers import cli_env, run_cli

IMAGE = "ghcr.io/acme/census-income:9f2c1ab"
DIGEST = "sha256:" + "4b825dc6" * 8


def write_result(out_dir, step: str, outputs: dict) -> None:
    StepResult(step=step, status="passed", summary="fixture", outputs=outputs).write(out_dir)


def deploy(tmp_path, **flags):
    return run_step("deploy", {"target": "kubernetes", **flags}, env={}, cwd=tmp_path)


def manifests(tmp_path, name="census-income"):
    return list(yaml.safe_load_all((tmp_path / ".mlops-ci" / "kubernetes" / f"{name}.yaml").read_text()))


def test_renders_valid_objects_with_the_profile_recommendation(tmp_path):
    out = tmp_path / ".mlops-ci"
    write_result(out, "package", {"image": IMAGE, "image-digest": DIGEST})
    write_result(out, "register", {"model-name": "census-income", "model-version": "7"})
    write_result(
        out,
        "profile",
        {
            "cpu-request": "300m",
            "cpu-limit": "1500m",
            "memory-request": "160Mi",
            "memory-limit": "320Mi",
            "replicas": "3",
        },
    )
    result = deploy(tmp_path, namespace="ml", max_replicas="9")
    assert result.status == "passed" and result.outputs["action"] == "rendered"
    assert "valid against the Kubernetes 1.30 schemas" in result.checks[0].message
    deployment, service, autoscaler, budget = manifests(tmp_path)
    assert [m["kind"] for m in (deployment, service, autoscaler, budget)] == [
        "Deployment",
        "Service",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
    ]
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == f"ghcr.io/acme/census-income@{DIGEST}"
    assert container["resources"] == {
        "requests": {"cpu": "300m", "memory": "160Mi"},
        "limits": {"cpu": "1500m", "memory": "320Mi"},
    }
    assert container["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert deployment["spec"]["replicas"] == 3 and deployment["metadata"]["namespace"] == "ml"
    assert deployment["metadata"]["annotations"]["mlops-ci/model-uri"] == "models:/census-income/7"
    assert autoscaler["spec"]["minReplicas"] == 3 and autoscaler["spec"]["maxReplicas"] == 9
    assert (
        budget["spec"]["selector"]
        == deployment["spec"]["selector"]
        == {"matchLabels": {"app.kubernetes.io/name": "census-income"}}
    )
    assert service["spec"]["ports"][0]["targetPort"] == "http"
    # Flags win over the profile.
    deploy(tmp_path, cpu_limit="2", replicas="1")
    deployment = manifests(tmp_path)[0]
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["cpu"] == "2"


def test_kserve_inference_service_is_valid(tmp_path):
    result = deploy(tmp_path, kind="kserve", image=IMAGE, name="census")
    assert result.status == "passed", result.checks[0].message
    (service,) = manifests(tmp_path, "census")
    assert service["apiVersion"] == "serving.kserve.io/v1beta1"
    predictor = service["spec"]["predictor"]
    assert predictor["containers"][0]["ports"] == [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]
    assert predictor["minReplicas"] == 2 and predictor["scaleMetric"] == "cpu"


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


def test_bad_input_exits_2(tmp_path):
    env = cli_env()
    done = run_cli(["deploy", "--target", "kubernetes", "--name", "m"], cwd=tmp_path, env=env)
    assert done.returncode == 2
    assert done.error_lines == [
        "mlops-ci deploy: error: no image to deploy: pass --image, or run `mlops-ci package` first (no image in "
        f"{tmp_path / '.mlops-ci' / 'package.json'})"
    ]
    done = run_cli(
        ["deploy", "--target", "kubernetes", "--name", "m", "--image", IMAGE, "--cpu-limit", "lots"],
        cwd=tmp_path,
        env=env,
    )
    assert (
        done.returncode == 2
        and "cpu-limit 'lots' (from flags) is not a Kubernetes quantity" in done.error_lines[0]
    )
    done = run_cli(
        ["deploy", "--target", "kubernetes", "--name", "Bad_Name", "--image", IMAGE], cwd=tmp_path, env=env
    )
    assert done.returncode == 2 and "is not a valid Kubernetes name" in done.error_lines[0]
    done = run_cli(
        ["deploy", "--target", "kubernetes", "--name", "m", "--image", IMAGE, "--kubeconfig", "nope"],
        cwd=tmp_path,
        env=env,
    )
    assert (
        done.returncode == 2
        and "kubeconfig" in done.error_lines[0]
        and "does not exist" in done.error_lines[0]
    )


def test_an_unreachable_api_server_exits_3(tmp_path):
    from tests.helpers import free_port

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
    done = run_cli(
        [
            "deploy",
            "--target",
            "kubernetes",
            "--name",
            "m",
            "--image",
            IMAGE,
            "--kubeconfig",
            str(kubeconfig),
            "--retry-timeout",
            "1",
        ],
        cwd=tmp_path,
        env=cli_env(),
    )
    assert done.returncode == 3, done.stderr
    assert "the Kubernetes API did not let us reach the Kubernetes API" in done.error_lines[0]


def deployment(generation=2, observed=2, replicas=3, updated=3, available=3, total=3, conditions=()):
    return {
        "kind": "Deployment",
        "metadata": {"generation": generation},
        "spec": {"replicas": replicas},
        "status": {
            "observedGeneration": observed,
            "replicas": total,
            "updatedReplicas": updated,
            "availableReplicas": available,
            "conditions": list(conditions),
        },
    }


@pytest.mark.parametrize(
    ("obj", "state", "words"),
    [
        (deployment(observed=1), "progressing", "controller"),
        (deployment(updated=1, total=4), "progressing", "1 of 3 replicas updated"),
        (deployment(total=4), "progressing", "1 old replicas pending"),
        (deployment(available=2), "progressing", "2 of 3 updated replicas available"),
        (deployment(), "done", "3 of 3"),
        (
            deployment(
                updated=1,
                conditions=[
                    {
                        "type": "Progressing",
                        "status": "False",
                        "reason": "ProgressDeadlineExceeded",
                        "message": "RS timed out",
                    }
                ],
            ),
            "failed",
            "progress deadline: RS timed out",
        ),
        (
            {
                "kind": "InferenceService",
                "metadata": {"generation": 1},
                "status": {
                    "observedGeneration": 1,
                    "conditions": [{"type": "Ready", "status": "True"}],
                    "url": "http://m.ml.example",
                },
            },
            "done",
            "m.ml.example",
        ),
        (
            {
                "kind": "InferenceService",
                "metadata": {"generation": 1},
                "status": {
                    "observedGeneration": 1,
                    "conditions": [
                        {
                            "type": "PredictorReady",
                            "status": "False",
                            "reason": "RevisionFailed",
                            "message": "bad",
                        }
                    ],
                },
            },
            "failed",
            "RevisionFailed",
        ),
    ],
)
def test_rollout_state(obj, state, words):
    result = kube_apply.rollout_state(obj)
    assert result.state == state and words in result.message


def test_clean_drops_what_the_server_owns():
    found = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "m",
            "uid": "u",
            "resourceVersion": "5",
            "generation": 3,
            "managedFields": [],
            "creationTimestamp": "t",
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}"},
        },
        "spec": {"replicas": 2},
        "status": {"replicas": 2},
    }
    assert kube_apply.clean(found) == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "m"},
        "spec": {"replicas": 2},
    }
    history = kube_apply.history_manifest("m", "ml", {"current": json.dumps([])})
    assert kube_manifests.validate([history], version="1.30") == []
