"""`mlops-ci deploy` driven through the CLI and the runner: options and earlier results
become a request, the outcome becomes the step result (outputs, checks, exit codes,
messages naming flags). The targets themselves are tested in tests/deploy/.

Registry: against a real MLflow server. Kubernetes: rendered and validated offline (no API
server runs on these machines). Docker: bad input against the real engine."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mlops_ci.deploy import audit
from mlops_ci.deploy.outcome import CheckRecord, DeployOutcome
from mlops_ci.result import StepResult
from mlops_ci.runner import run_step
from mlops_ci.steps.deploy import to_result
from mlops_ci.tracking.store import TrackingStore
from tests.deploy.conftest import client, env, versions
from tests.deploy.test_docker_target import engine, service
from tests.helpers import REPO, cli_env, free_port, run_cli

# Fixtures shared with tests/deploy/ (a registry on the real MLflow server, the real Docker
# engine), used here by name until they move to one place.
SHARED_FIXTURES = (client, env, versions, engine, service)

IMAGE = "ghcr.io/acme/census-income:9f2c1ab"
DIGEST = "sha256:" + "4b825dc6" * 8


# --- outcome -> result ----------------------------------------------------------------------


def test_outcome_becomes_the_step_result():
    outcome = DeployOutcome(
        "docker",
        "deployed",
        True,
        "x serves as svc",
        (CheckRecord("blue/green", True, "x serves as svc", {"container": "svc-blue"}),),
        model="",
        version="3",
        previous_version="",
        image="x:1",
        endpoint="http://svc:8080",
        deployment_id="abc",
        deployment_log=Path("out/deployments.jsonl"),
    )
    result = to_result(outcome)
    assert (result.step, result.status, result.summary) == ("deploy", "passed", "x serves as svc")
    # Reported-empty values stay as empty outputs; unreported ones (model-uri, manifests) are absent.
    assert result.outputs == {
        "target": "docker",
        "action": "deployed",
        "model-name": "",
        "model-version": "3",
        "previous-version": "",
        "image": "x:1",
        "endpoint": "http://svc:8080",
        "deployment-id": "abc",
        "deployment-log": str(Path("out/deployments.jsonl")),
    }
    (check,) = result.checks
    assert (check.name, check.status, check.message) == ("blue/green", "passed", "x serves as svc")
    assert check.details == {"kind": "deploy", "container": "svc-blue"}
    assert result.artifacts == []


def test_refused_and_rendered_outcomes():
    refused = to_result(
        DeployOutcome(
            "docker", "refused", False, "nothing to roll back", (CheckRecord("rollback", False, "n"),)
        )
    )
    assert refused.status == "failed" and refused.outputs == {"target": "docker", "action": "refused"}
    assert refused.checks[0].status == "failed" and refused.checks[0].message == "n"
    rendered = to_result(
        DeployOutcome(
            "kubernetes",
            "rendered",
            True,
            "rendered Deployment into m.yaml",
            (CheckRecord("manifests valid", True, "valid"),),
            manifests=Path("k"),
            artifacts=(Path("k/m.yaml"),),
        )
    )
    assert rendered.summary == "rendered Deployment into m.yaml; pass --kubeconfig to apply"
    assert rendered.checks[0].message == "valid"
    assert rendered.outputs["manifests"] == "k" and rendered.artifacts == [str(Path("k/m.yaml"))]


# --- registry ---------------------------------------------------------------------------------


def deploy(args, tmp_path, env):
    """`mlops-ci deploy --target registry ARGS` as a subprocess: exit code, output, result."""
    done = run_cli(["deploy", "--target", "registry", *args], cwd=tmp_path, env=env)
    result = tmp_path / ".mlops-ci" / "deploy.json"
    data = json.loads(result.read_text()) if result.is_file() else None
    return done, data


def promote(tmp_path, env, **flags) -> StepResult:
    """The same in this process (MLflow imported once: seconds faster per call)."""
    return run_step("deploy", {"target": "registry", **flags}, env=env, cwd=tmp_path)


def registry_log(client, versions) -> list[dict]:
    runs = client.search_runs(
        [client.get_experiment_by_name(versions.name).experiment_id],
        filter_string=f"tags.`{audit.LOG_RUN_TAG}` = '{versions.name}'",
    )
    assert len(runs) == 1
    text = audit.read_registry_log(client, store_of(client), runs[0].info.run_id)
    assert audit.verify_chain(text) is None
    return [json.loads(line) for line in text.splitlines()]


def store_of(client) -> TrackingStore:
    return TrackingStore(uri=client._tracking_client.tracking_uri, artifact_root=None, retry_timeout_s=10)


def test_promote_keep_previous_and_roll_back(tmp_path, env, client, versions):
    v1 = versions.add(validated_against="none")
    done, result = deploy(["--version", v1], tmp_path, env)
    assert done.returncode == 0, done.stderr
    assert result["outputs"]["action"] == "promoted" and result["outputs"]["previous-version"] == ""
    assert versions.alias("champion") == v1 and versions.alias("previous-champion") is None

    v2 = versions.add(validated_against=v1)
    result = promote(tmp_path, env, version=v2)
    assert result.status == "passed"
    assert result.summary == f"{versions.name} v{v2} is now champion (was v{v1}; kept as previous-champion)"
    assert (versions.alias("champion"), versions.alias("previous-champion")) == (v2, v1)
    tags = client.get_model_version(versions.name, v2).tags
    assert tags["mlops_ci.deploy.registry.status"] == "succeeded"
    assert tags["mlops_ci.deploy.registry.actor"] and tags["mlops_ci.deploy.registry.at"]
    assert tags["mlops_ci.deploy.registry.id"] == result.outputs["deployment-id"]

    # A re-run changes nothing and logs nothing.
    result = promote(tmp_path, env, version=v2)
    assert result.status == "passed" and result.outputs["action"] == "unchanged"
    assert len(registry_log(client, versions)) == 2

    result = promote(tmp_path, env, rollback=True)
    assert result.status == "passed" and result.outputs["action"] == "rolled-back"
    assert (versions.alias("champion"), versions.alias("previous-champion")) == (v1, v2)

    records = registry_log(client, versions)
    assert [(r["action"], r["status"], r["version"], r["previous_version"]) for r in records] == [
        ("promote", "succeeded", v1, None),
        ("promote", "succeeded", v2, v1),
        ("rollback", "succeeded", v1, v2),
    ]
    local = (tmp_path / ".mlops-ci" / "deployments.jsonl").read_text()
    assert audit.verify_chain(local) is None and len(local.splitlines()) == 3


def test_refuses_when_the_champion_changed_since_validation(tmp_path, env, versions):
    v1 = versions.add(validated_against="none")
    v2 = versions.add(validated_against=v1)
    v3 = versions.add(validated_against=v1)
    assert promote(tmp_path, env, version=v1).status == "passed"
    assert promote(tmp_path, env, version=v2).status == "passed"
    done, result = deploy(["--version", v3], tmp_path, env)
    assert done.returncode == 1
    assert "champion changed since validation" in done.stdout
    assert f"validated against v{v1}, but champion is now v{v2}; re-run validate" in done.stdout
    assert result["checks"][0]["details"]["reason"] == "champion-changed"
    assert versions.alias("champion") == v2


def test_validation_is_required_unless_switched_off(tmp_path, env, versions):
    unvalidated = versions.add()
    failed = versions.add(validated_against="none", status="failed")
    result = promote(tmp_path, env, version=unvalidated)
    assert result.status == "failed" and "was never validated; run `mlops-ci validate`" in result.summary
    # The domain's refusal gets the flag that switches validation off, in the summary and the check.
    assert result.summary.endswith("(or pass --no-require-validation)")
    assert result.checks[0].message == result.summary
    result = promote(tmp_path, env, version=failed)
    assert result.status == "failed" and "failed validation" in result.summary
    assert versions.alias("champion") is None
    result = promote(tmp_path, env, version=unvalidated, require_validation=False)
    assert result.status == "passed" and versions.alias("champion") == unvalidated
    # An explicit expectation is compare-and-set too.
    other = versions.add()
    result = promote(tmp_path, env, version=other, require_validation=False, expected_champion="none")
    assert result.status == "failed" and "champion changed" in result.summary


def test_bad_input_and_nothing_to_roll_back(tmp_path, env, versions):
    done, _ = deploy(["--version", "99"], tmp_path, env)
    assert done.returncode == 2 and "has no version 99" in done.error_lines[0]
    done, _ = deploy(["--rollback"], tmp_path, env)
    assert done.returncode == 1 and "no previous-champion to roll back to" in done.stdout
    done = run_cli(["deploy", "--target", "kubernets"], cwd=tmp_path, env=env)
    assert done.returncode == 2
    assert "--target must be one of registry, docker, kubernetes" in done.stderr.strip().splitlines()[-1]


def test_racing_cli_promotions(tmp_path, env, client, versions):
    """The same race between two `mlops-ci deploy` processes: one exits 0, the other 1 with
    the "champion changed" message."""
    champion = versions.add(validated_against="none")
    client.set_registered_model_alias(versions.name, "champion", champion)
    a, b = versions.add(validated_against=champion), versions.add(validated_against=champion)
    procs = []
    for version, folder in ((a, tmp_path / "a"), (b, tmp_path / "b")):
        folder.mkdir()
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "mlops_ci", "deploy", "--target", "registry", "--version", version],
                cwd=folder,
                env={**env, "PYTHONPATH": str(REPO)},
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    results = [(p.wait(timeout=300), p.stdout.read(), p.stderr.read()) for p in procs]
    codes = sorted(code for code, _, _ in results)
    assert codes == [0, 1], results
    loser = next(out for code, out, _ in results if code == 1)
    assert "champion changed since validation" in loser
    assert versions.alias("champion") in (a, b) and versions.alias("previous-champion") == champion
    records = registry_log(client, versions)
    assert sorted(r["status"] for r in records) == ["refused", "succeeded"]


# --- kubernetes -------------------------------------------------------------------------------


def write_result(out_dir, step: str, outputs: dict) -> None:
    StepResult(step=step, status="passed", summary="fixture", outputs=outputs).write(out_dir)


def render(tmp_path, **flags):
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
    result = render(tmp_path, namespace="ml", max_replicas="9")
    assert result.status == "passed" and result.outputs["action"] == "rendered"
    assert "valid against the Kubernetes 1.30 schemas" in result.checks[0].message
    deployment, k8s_service, autoscaler, budget = manifests(tmp_path)
    assert [m["kind"] for m in (deployment, k8s_service, autoscaler, budget)] == [
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
    assert k8s_service["spec"]["ports"][0]["targetPort"] == "http"
    # Flags win over the profile.
    render(tmp_path, cpu_limit="2", replicas="1")
    deployment = manifests(tmp_path)[0]
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["cpu"] == "2"


def test_kserve_inference_service_is_valid(tmp_path):
    result = render(tmp_path, kind="kserve", image=IMAGE, name="census")
    assert result.status == "passed", result.checks[0].message
    (inference_service,) = manifests(tmp_path, "census")
    assert inference_service["apiVersion"] == "serving.kserve.io/v1beta1"
    predictor = inference_service["spec"]["predictor"]
    assert predictor["containers"][0]["ports"] == [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]
    assert predictor["minReplicas"] == 2 and predictor["scaleMetric"] == "cpu"


def test_kubernetes_bad_input_exits_2(tmp_path):
    cli = cli_env()
    done = run_cli(["deploy", "--target", "kubernetes", "--name", "m"], cwd=tmp_path, env=cli)
    assert done.returncode == 2
    assert done.error_lines == [
        "mlops-ci deploy: error: no image to deploy: pass --image, or run `mlops-ci package` first (no image in "
        f"{tmp_path / '.mlops-ci' / 'package.json'})"
    ]
    done = run_cli(
        ["deploy", "--target", "kubernetes", "--name", "m", "--image", IMAGE, "--cpu-limit", "lots"],
        cwd=tmp_path,
        env=cli,
    )
    assert (
        done.returncode == 2
        and "cpu-limit 'lots' (from flags) is not a Kubernetes quantity" in done.error_lines[0]
    )
    done = run_cli(
        ["deploy", "--target", "kubernetes", "--name", "Bad_Name", "--image", IMAGE], cwd=tmp_path, env=cli
    )
    assert done.returncode == 2 and "is not a valid Kubernetes name" in done.error_lines[0]
    done = run_cli(
        ["deploy", "--target", "kubernetes", "--name", "m", "--image", IMAGE, "--kubeconfig", "nope"],
        cwd=tmp_path,
        env=cli,
    )
    assert (
        done.returncode == 2
        and "kubeconfig" in done.error_lines[0]
        and "does not exist" in done.error_lines[0]
    )


def test_setting_errors_name_the_flag(tmp_path):
    """The domain says which setting is wrong; the step says it with the flag."""
    cli = cli_env()
    cases = [
        (["--replicas", "5", "--max-replicas", "3"], "--max-replicas 3 is below the replicas 5"),
        (["--kubernetes-version", "1.x"], "--kubernetes-version must look like 1.30, got '1.x'"),
        (["--kubernetes-version", "1.99"], "--kubernetes-version 1.99 is outside the schemas"),
        (["--namespace", "Prod"], "--namespace 'Prod' is not a valid Kubernetes name"),
        (["--name", "Bad_Name"], "--name 'Bad_Name' is not a valid Kubernetes name"),
    ]
    for flags, message in cases:
        args = ["deploy", "--target", "kubernetes", "--name", "m", "--image", IMAGE, *flags]
        done = run_cli(args, cwd=tmp_path, env=cli)
        assert done.returncode == 2, (flags, done.stderr)
        assert done.error_lines[0].startswith(f"mlops-ci deploy: error: {message}"), done.error_lines
    done = run_cli(["deploy", "--target", "kubernetes", "--name", "m", "--rollback"], cwd=tmp_path, env=cli)
    assert done.returncode == 2
    assert done.error_lines == [
        "mlops-ci deploy: error: --rollback on kubernetes needs --kubeconfig (or KUBECONFIG)"
    ]


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


# --- docker ---------------------------------------------------------------------------------


@pytest.mark.slow
def test_docker_bad_input(tmp_path, engine, service):
    cli = cli_env(DOCKER_HOST=os.environ["DOCKER_HOST"])
    done = run_cli(
        ["deploy", "--target", "docker", "--name", service, "--image", "localhost/no-such:1"],
        cwd=tmp_path,
        env=cli,
    )
    assert (
        done.returncode == 2 and "image localhost/no-such:1 does not exist on Docker" in done.error_lines[0]
    )
    done = run_cli(["deploy", "--target", "docker", "--name", service], cwd=tmp_path, env=cli)
    assert done.returncode == 2 and "no image to deploy" in done.error_lines[0]
    unreachable = cli_env(DOCKER_HOST=f"tcp://127.0.0.1:{free_port()}")
    done = run_cli(
        ["deploy", "--target", "docker", "--name", service, "--image", "x:1"], cwd=tmp_path, env=unreachable
    )
    assert done.returncode == 3
    assert done.error_lines[0].startswith(
        "mlops-ci deploy: error: no Docker engine answers at tcp://127.0.0.1:"
    )


def test_with_the_provenance_key_deploy_accepts_only_a_validation_a_trusted_job_signed(
    tmp_path, env, client, versions
):
    """Any MLflow writer can tag a version `passed`; with MLOPS_CI_PROVENANCE_KEY set, deploy
    believes only a record signed by a trusted job (SECURITY.md)."""
    from mlops_ci.tracking import validation_record
    from mlops_ci.tracking.provenance import KEY_ENV, ProvenanceKey

    key = "p" * 32
    version = versions.add(validated_against="none")  # tags as a pull request's validate writes them
    keyed = {**env, KEY_ENV: key}
    done, result = deploy(["--version", version], tmp_path, keyed)
    assert done.returncode == 1, done.stderr
    assert result["outputs"]["action"] == "refused" and "no trusted job signed" in result["summary"]
    assert versions.alias("champion") is None

    tags = client.get_model_version(versions.name, version).tags
    signed = validation_record.signed(ProvenanceKey(key.encode()), versions.name, version, tags)
    client.set_model_version_tag(
        versions.name, version, validation_record.SIGNATURE_TAG, signed[validation_record.SIGNATURE_TAG]
    )
    result = promote(tmp_path, keyed, version=version)
    assert result.status == "passed" and versions.alias("champion") == version
