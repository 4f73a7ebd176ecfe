"""`mlops-ci package` and `mlops-ci serve` through the CLI, on real models; the image
test builds with the real Docker engine that scripts/setup/20-docker.sh starts."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest
import requests

from mlops_ci.result import read_step_result
from tests.helpers import BASE_IMAGE, EXAMPLE, cli_env, free_port, require_tool, run_cli, wait_http
from tests.model_fixtures import (
    CATEGORICAL,
    NUMERIC,
    census_frames,
    census_pipeline,
    example_record,
    v2_request,
    write_model_dir,
)

pytestmark = pytest.mark.slow


def save_mlflow_model(path, pipeline, **kwargs):
    import mlflow.sklearn
    from mlflow.models import infer_signature

    features = census_frames(50)[0][NUMERIC + CATEGORICAL]
    mlflow.sklearn.save_model(
        pipeline,
        str(path),
        signature=infer_signature(features, pipeline.predict(features)),
        input_example=features.head(5),
        **kwargs,
    )
    return path


@pytest.fixture(scope="module")
def mlflow_model(tmp_path_factory):
    return save_mlflow_model(tmp_path_factory.mktemp("mlflow-model") / "model", census_pipeline(rows=2000))


def package(tmp_path, *args, env=None):
    return run_cli(
        [
            "package",
            "--holdout",
            str(EXAMPLE / "data/holdout.csv"),
            "--target",
            "class",
            "--out-dir",
            str(tmp_path / "out"),
            *args,
        ],
        cwd=tmp_path,
        env=env or cli_env(),
    )


def test_without_an_engine_the_context_is_rendered_and_the_step_says_so(tmp_path, mlflow_model):
    result = package(
        tmp_path, "--model-uri", str(mlflow_model), "--model-name", "census-income", "--engine", "none"
    )
    assert result.returncode == 0, result.stderr
    saved = read_step_result(tmp_path / "out/package.json")
    assert saved.outputs["image-built"] == "false" and saved.outputs["image"] == "census-income:1"
    assert "no image built" in saved.summary
    build = next(c for c in saved.checks if c.name == "image-build")
    assert build.status == "warning" and not build.blocking
    context = tmp_path / "out/package/context"
    assert f"docker build -t census-income:1 {context}" in build.message
    assert "image building is switched off (--engine none)" in build.message
    assert {c.name for c in saved.checks if c.details.get("kind") == "parity"} >= {
        "parity-labels",
        "parity-probabilities",
        "parity-accuracy",
        "parity-roc-auc",
    }
    assert all(c.status == "passed" for c in saved.checks if c.name.startswith("parity"))
    dockerfile = (context / "Dockerfile").read_text()
    assert (
        "FROM python:3.11-slim" in dockerfile
        and "USER 10001:10001" in dockerfile
        and "HEALTHCHECK" in dockerfile
    )
    assert '"io.mlops-ci.model.uri"' not in dockerfile and "io.mlops-ci.model.uri=" in dockerfile
    wheels = sorted(p.name for p in (context / "wheels").iterdir())
    assert any(w.startswith("onnxruntime-") for w in wheels) and any(
        w.startswith("mlops_ci-") for w in wheels
    )
    requirements = (context / "wheels/requirements.txt").read_text()
    assert "onnxruntime==" in requirements and "mlflow" not in requirements and "pandas" not in requirements
    settings = json.loads((context / "model/model-settings.json").read_text())
    assert settings["lineage"]["model_uri"] == str(mlflow_model)
    assert saved.outputs["onnx-path"].endswith("model.onnx")

    strict = package(tmp_path, "--model-uri", str(mlflow_model), "--engine", "none", "--require-image")
    assert strict.returncode == 1
    assert read_step_result(tmp_path / "out/package.json").status == "failed"


def test_a_mismatched_conversion_fails_the_step(tmp_path, mlflow_model):
    from sklearn.linear_model import LogisticRegression

    wrong = write_model_dir(
        tmp_path / "wrong", census_pipeline(LogisticRegression(C=0.001, max_iter=200), rows=300)
    )
    assert wrong.settings.name
    result = package(
        tmp_path,
        "--model-uri",
        str(mlflow_model),
        "--onnx-model",
        str(tmp_path / "wrong/model.onnx"),
        "--engine",
        "none",
    )
    assert result.returncode == 1, result.stderr
    saved = read_step_result(tmp_path / "out/package.json")
    failed = {c.name for c in saved.checks if c.status == "failed"}
    assert {"parity-probabilities", "parity-log-loss"} <= failed
    assert saved.outputs["image-built"] == "false" and "parity failed" in saved.summary
    probabilities = next(c for c in saved.checks if c.name == "parity-probabilities")
    assert probabilities.details["kind"] == "parity" and len(probabilities.details["worst_rows"]) == 5
    assert "Worst rows" in (tmp_path / "out/package/parity.md").read_text()


def test_an_unconvertible_model_fails_naming_the_estimator(tmp_path):
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    train, _ = census_frames(500)
    pipeline = Pipeline(
        [
            ("pre", ColumnTransformer([("n", StandardScaler(), NUMERIC)])),
            ("model", HistGradientBoostingClassifier(max_iter=5)),
        ]
    ).fit(train[NUMERIC + CATEGORICAL], train["class"])
    trusted = ["sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"]
    folder = save_mlflow_model(tmp_path / "hgb", pipeline, skops_trusted_types=trusted)
    result = package(tmp_path, "--model-uri", str(folder), "--engine", "none")
    assert result.returncode == 1, result.stderr
    saved = read_step_result(tmp_path / "out/package.json")
    conversion = next(c for c in saved.checks if c.name == "onnx-conversion")
    assert (
        conversion.status == "failed" and conversion.details["estimator"] == "HistGradientBoostingClassifier"
    )
    assert conversion.message.endswith("to package an ONNX file converted by hand, pass it with --onnx-model")
    assert "HistGradientBoostingClassifier cannot be converted" in saved.summary


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--onnx-model", "missing.onnx"], "--onnx-model"),
        (["--image", "Bad Image!"], "not a valid image reference"),
        (["--target", "salary"], "target column 'salary'"),
        (["--python-version", "three"], "--python-version"),
        (["--image", "{name}:{tag}"], "--image '{name}:{tag}' has an unknown placeholder"),
        (["--model-uri", "missing.onnx"], "ONNX file missing.onnx does not exist; check --model-uri"),
    ],
)
def test_bad_inputs_exit_2_and_write_nothing(tmp_path, mlflow_model, args, message):
    result = package(tmp_path, "--model-uri", str(mlflow_model), "--engine", "none", *args)
    assert result.returncode == 2 and message in result.stderr
    assert not (tmp_path / "out/package.json").exists()


@pytest.mark.parametrize("status", ["passed", "failed"])
def test_the_model_defaults_to_that_of_the_last_passed_register(tmp_path, mlflow_model, status):
    from mlops_ci.result import StepResult

    out = tmp_path / "out"
    StepResult("register", status, "registered", {"model-uri": str(mlflow_model)}).write(out)
    result = run_cli(["package", "--out-dir", str(out), "--engine", "none"], cwd=tmp_path, env=cli_env())
    if status == "failed":
        assert result.returncode == 2 and "no model to package: pass --model-uri" in result.stderr
        return
    assert result.returncode == 0, result.stderr
    saved = read_step_result(out / "package.json")
    assert saved.outputs["model-uri"] == str(mlflow_model) and saved.outputs["model-name"] == "model"
    assert {c.name: c.details.get("source") for c in saved.checks}["parity-probabilities"] == "input example"


def test_serve_command_serves_a_packaged_folder_until_sigterm(tmp_path, census_model_dir_for_cli):
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "mlops_ci", "serve", str(census_model_dir_for_cli), "--port", str(port)],
        cwd=tmp_path,
        env=cli_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_http(url + "/v2/health/ready", timeout_s=60, process=process)
        answer = requests.post(
            url + "/v2/models/census-income/infer", json=v2_request([example_record()])
        ).json()
        assert answer["outputs"][0]["name"] == "label"
        answer = requests.post(url + "/invocations", json={"dataframe_records": [example_record()]}).json()
        assert answer["predictions"][0] in ("<=50K", ">50K")
    finally:
        process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0
    assert b"serving census-income version 7" in process.stderr.read()


def test_serve_names_its_argument_when_the_model_does_not_exist(tmp_path):
    result = run_cli(["serve", "missing.onnx"], cwd=tmp_path, env=cli_env())
    assert result.returncode == 2
    assert "ONNX file missing.onnx does not exist; check the MODEL argument" in result.stderr


@pytest.fixture
def census_model_dir_for_cli(tmp_path):
    folder = tmp_path / "model"
    write_model_dir(folder, census_pipeline(rows=500))
    return folder


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    """A local registry (Debian's docker-registry) with basic auth, on loopback."""
    for tool in ("docker-registry", "htpasswd"):
        require_tool(tool, install="scripts/setup/20-docker.sh installs it")
    root = tmp_path_factory.mktemp("registry")
    subprocess.run(
        ["htpasswd", "-Bbc", str(root / "htpasswd"), "ci-user", "s3cret-pass"],
        check=True,
        capture_output=True,
    )
    port = free_port()
    (root / "config.yml").write_text(
        f"version: 0.1\nlog: {{level: error}}\nstorage: {{filesystem: {{rootdirectory: {root / 'data'}}}}}\n"
        f"http: {{addr: 127.0.0.1:{port}}}\nauth: {{htpasswd: {{realm: test, path: {root / 'htpasswd'}}}}}\n"
    )
    process = subprocess.Popen(
        ["docker-registry", "serve", str(root / "config.yml")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_http(f"http://127.0.0.1:{port}/v2/", timeout_s=30, process=process)
    yield f"127.0.0.1:{port}"
    process.terminate()
    process.wait(timeout=10)


def test_train_register_package_builds_and_serves_a_real_image(
    example_project, docker_engine, registry, unique_name
):
    env = cli_env(DOCKER_HOST=os.environ["DOCKER_HOST"], MLOPS_CI_MODEL_NAME=unique_name)
    for step in ("train", "register"):
        done = run_cli([step], cwd=example_project, env=env)
        assert done.returncode == 0, done.stderr
    push_env = {**env, "MLOPS_CI_REGISTRY_USERNAME": "ci-user", "MLOPS_CI_REGISTRY_PASSWORD": "s3cret-pass"}
    args = [
        "package",
        "--base-image",
        BASE_IMAGE,
        "--engine",
        "docker",
        "--push",
        "--image",
        registry + "/{name}:{version}",
    ]
    result = run_cli(args, cwd=example_project, env=push_env, timeout=900)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "s3cret-pass" not in result.stdout + result.stderr
    assert "s3cret-pass" not in (example_project / ".mlops-ci/package.json").read_text()
    saved = read_step_result(example_project / ".mlops-ci/package.json")
    outputs = saved.outputs
    image = outputs["image"]
    assert image == f"{registry}/{unique_name}:1" and outputs["image-built"] == "true"
    assert outputs["model-uri"] == f"models:/{unique_name}/1"
    assert outputs["image-id"].startswith("sha256:") and int(outputs["image-size-bytes"]) > 0
    assert {c.name: c.status for c in saved.checks}["smoke-test"] == "passed"
    manifest = requests.get(
        f"http://{registry}/v2/{unique_name}/manifests/1",
        auth=("ci-user", "s3cret-pass"),
        headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"},
        timeout=10,
    )
    assert (
        manifest.status_code == 200 and manifest.headers["Docker-Content-Digest"] == outputs["image-digest"]
    )
    # Without credentials the registry refuses the push: an external failure (exit 3).
    from mlops_ci.errors import ExternalServiceError

    with pytest.raises(ExternalServiceError, match="push of"):
        docker_engine.push(image, None)
    try:
        attrs = docker_engine.client.images.get(image).attrs
        config = attrs["Config"]
        assert config["User"] == "10001:10001" and config["Healthcheck"]["Test"][0] == "CMD"
        assert config["Labels"]["io.mlops-ci.model.uri"] == f"models:/{unique_name}/1"
        assert config["Labels"]["org.opencontainers.image.revision"] == saved.context["commit"]
        with docker_engine.run(image, cpus=1.0, memory="512m") as container:
            container.wait_ready(timeout_s=60)
            record = example_record()
            v2 = requests.post(
                f"{container.url}/v2/models/{unique_name}/infer", json=v2_request([record]), timeout=10
            )
            assert v2.status_code == 200 and v2.json()["model_version"] == "1"
            mlflow = requests.post(
                f"{container.url}/invocations",
                json={"dataframe_split": {"columns": list(record), "data": [list(record.values())]}},
                timeout=10,
            )
            assert mlflow.status_code == 200 and mlflow.json()["predictions"] == [
                v2.json()["outputs"][0]["data"][0]
            ]
            bad = requests.post(f"{container.url}/v2/models/{unique_name}/infer", data=b"{", timeout=10)
            assert bad.status_code == 400 and "error" in bad.json()
            assert container.stats().memory_bytes
    finally:
        docker_engine.remove_image(image)
        docker_engine.prune_build_stages()
