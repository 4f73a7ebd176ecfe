"""`mlops-ci profile` through the CLI on real components: `mlops-ci serve` and a real
image under Docker CPU/memory limits, wrk, a real MLflow server for storing the profile
with the model version and finding the champion's. Durations are cut to a second per
point: these tests check behaviour, not speed."""

from __future__ import annotations

import json
import os
import re
import time
import uuid
from pathlib import Path

import pytest
import yaml

from mlops_ci.profiling import errors
from mlops_ci.result import read_step_result
from mlops_ci.steps.profile_request import flag_error
from mlops_ci.steps.profile_result import build_result
from tests.helpers import cli_env, free_port, missing, run_cli

pytestmark = pytest.mark.slow
BASE_IMAGE = os.environ.get("MLOPS_CI_TEST_BASE_IMAGE", "localhost/mlops-ci-test-base:bookworm")
# Short everything: one second per end-to-end point, a few hundred ms in-process.
QUICK = [
    "--duration", "1", "--warmup", "0.2", "--inprocess-duration", "0.05", "--threads", "1",
    "--batch-sizes", "1,64", "--compare-duration", "1", "--compare-rounds", "12",
    "--bootstrap-resamples", "500",
]  # fmt: skip
CPU = re.compile(r"^\d+m?$")
MEMORY = re.compile(r"^\d+(Mi|Gi)$")
CONTRACT = (
    "cpu-request",
    "cpu-limit",
    "memory-request",
    "memory-limit",
    "replicas",
    "throughput-rps",
    "p50-ms",
    "p99-ms",
)


def profile(cwd, *args, env=None, timeout=600):
    return run_cli(["profile", *QUICK, *args], cwd=cwd, env=env or cli_env(), timeout=timeout)


def test_serve_profile_recommends_resources_and_the_gate_shows_it(tmp_path, census_model_dir):
    result = profile(
        tmp_path,
        "--model", str(census_model_dir),
        "--server", "serve",
        "--concurrency", "1,4",
        "--target-rps", "150",
        "--slo-p99-ms", "250",
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    saved = read_step_result(tmp_path / ".mlops-ci/profile.json")
    out = saved.outputs
    assert all(out[key] for key in CONTRACT), out
    assert CPU.match(out["cpu-request"]) and CPU.match(out["cpu-limit"])
    assert MEMORY.match(out["memory-request"]) and MEMORY.match(out["memory-limit"])
    assert out["replicas"].isdigit() and float(out["throughput-rps"]) > 0
    assert out["server"] == "serve" and out["slo-met"] == "true" and float(out["generator-ceiling-rps"]) > 0
    # The recommendation is printed.
    assert f"cpu-request: {out['cpu-request']}" in result.stdout and "replicas:" in result.stdout
    checks = {c.name: c for c in saved.checks}
    assert checks["latency-objective"].status == "passed"
    assert checks["target-throughput"].status == "passed"
    assert checks["memory-limit"].status == "skipped"  # no container: no OOM search
    assert checks["latency p95 vs champion"].status == "skipped"
    assert checks["latency p95 vs champion"].details["kind"] == "latency"

    folder = tmp_path / ".mlops-ci/profile"
    markdown = (folder / "profile.md").read_text()
    assert (
        "**Recommendation**" in markdown
        and "Load generator ceiling" in markdown
        and "**In-process**" in markdown
    )
    assert (folder / "latency.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = json.loads((folder / "report.json").read_text())
    assert report["schema"] == "mlops-ci/profile/v1"
    assert [p["concurrency"] for p in report["end_to_end"]["points"]] == [1, 4]
    assert all(p["errors"] == 0 and p["cpu_cores"] > 0 for p in report["end_to_end"]["points"])
    assert {(p["threads"], p["batch_size"]) for p in report["inprocess"]} == {(1, 1), (1, 64)}
    assert (folder / "model/model.onnx").is_file()
    assert {str(folder / name) for name in ("profile.md", "report.json", "latency.png")} <= set(
        saved.artifacts
    )

    # deploy sizes the Kubernetes objects from these outputs.
    deploy = run_cli(
        ["deploy", "--target", "kubernetes", "--image", "localhost/census:1", "--name", "census"],
        cwd=tmp_path,
        env=cli_env(),
    )
    assert deploy.returncode == 0, deploy.stdout + deploy.stderr
    manifests = yaml.safe_load_all((tmp_path / ".mlops-ci/kubernetes/census.yaml").read_text())
    deployment = next(m for m in manifests if m["kind"] == "Deployment")
    resources = deployment["spec"]["template"]["spec"]["containers"][0]["resources"]
    assert resources == {
        "requests": {"cpu": out["cpu-request"], "memory": out["memory-request"]},
        "limits": {"cpu": out["cpu-limit"], "memory": out["memory-limit"]},
    }
    assert deployment["spec"]["replicas"] == int(out["replicas"])
    assert "from profile" in deploy.stdout

    comment = run_cli(["report", "--out-dir", str(tmp_path / ".mlops-ci")], cwd=tmp_path, env=cli_env())
    assert comment.returncode == 0, comment.stderr
    assert "#### Profile" in comment.stdout
    assert (
        f"req/s** per replica · p50 {out['p50-ms']} ms · p99 {out['p99-ms']} ms → recommended"
        in comment.stdout
    )


def test_an_objective_that_cannot_be_met_fails_with_a_clear_message(tmp_path, census_model_dir):
    result = profile(
        tmp_path,
        "--model", str(census_model_dir),
        "--server", "serve",
        "--concurrency", "1,4",
        "--slo-p99-ms", "0.001",
        "--load-generator", "python",  # the asyncio generator end to end (wrk elsewhere)
    )  # fmt: skip
    assert result.returncode == 1, result.stdout + result.stderr
    # One line first: what failed, and what to do about it.
    headline = result.stdout.splitlines()[0]
    assert headline.startswith("profile: failed - latency-objective failed"), headline
    assert "the latency objective p99 <= 0.001 ms cannot be met" in headline
    assert "relax profile.slo-p99-ms" in headline
    saved = read_step_result(tmp_path / ".mlops-ci/profile.json")
    assert saved.status == "failed" and saved.outputs["slo-met"] == "false"
    check = next(c for c in saved.checks if c.name == "latency-objective")
    assert check.status == "failed" and check.blocking and check.threshold == 0.001


def test_nothing_to_profile_is_a_usage_error(tmp_path):
    result = profile(tmp_path)
    assert result.returncode == 2
    assert "nothing to profile" in result.stderr and "run `mlops-ci package` first" in result.stderr
    assert len(result.error_lines) == 1 and "Traceback" not in result.stderr
    assert not (tmp_path / ".mlops-ci").exists()


def test_an_unreachable_endpoint_fails_after_bounded_retries(tmp_path, census_model_dir):
    started = time.monotonic()
    result = profile(
        tmp_path,
        "--model", str(census_model_dir),
        "--endpoint", f"http://127.0.0.1:{free_port()}",
        "--retry-timeout", "2",
    )  # fmt: skip
    assert result.returncode == 3, result.stdout + result.stderr
    assert "is not ready" in result.stderr and "check --endpoint" in result.stderr
    assert len(result.error_lines) == 1 and "Traceback" not in result.stderr
    assert time.monotonic() - started < 60
    # Failed before measuring: the result says so, and no profile folder was written.
    assert read_step_result(tmp_path / ".mlops-ci/profile.json").status == "error"
    assert not (tmp_path / ".mlops-ci/profile").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--cpus", "fast"], "is not a CPU quantity"),
        (["--concurrency", "0"], "--concurrency takes numbers of at least 1"),
        (["--server", "container", "--engine", "docker"], "--server container needs an image"),
        (["--endpoint", "localhost:8080"], "--endpoint must be an http(s) URL"),
        (["--utilization", "1.5"], "--utilization must be at least 0.01 and at most 1"),
    ],
)
def test_bad_options_exit_2_before_measuring(tmp_path, census_model_dir, args, message):
    result = profile(tmp_path, "--model", str(census_model_dir), *args)
    assert result.returncode == 2 and message in result.stderr, result.stderr
    assert not (tmp_path / ".mlops-ci/profile").exists()


def test_an_invalid_request_file_is_a_usage_error(tmp_path, census_model_dir):
    body = tmp_path / "body.json"
    body.write_text("{not json")
    result = profile(tmp_path, "--model", str(census_model_dir), "--request", str(body))
    assert result.returncode == 2 and "is not valid JSON" in result.stderr


# -- the champion: stored with its version, compared interleaved --------------------------------


def register_census_model(tracking_uri, name):
    """Version 1 of ``name`` on the real MLflow server: the example's logistic regression,
    logged with its signature and input example (what `mlops-ci train` + `register` record,
    without a training subprocess), and aliased champion."""
    import mlflow
    import mlflow.sklearn
    from mlflow import MlflowClient
    from mlflow.models import infer_signature

    from tests.model_fixtures import CATEGORICAL, NUMERIC, census_frames, census_pipeline

    pipeline = census_pipeline(rows=3000)
    features = census_frames(50)[0][NUMERIC + CATEGORICAL]
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_experiment(name)
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(
            pipeline,
            name="model",
            input_example=features.head(5),
            signature=infer_signature(features, pipeline.predict(features)),
            pip_requirements=["scikit-learn"],  # skips MLflow's slow requirement inference
        )
    version = mlflow.register_model(info.model_uri, name)
    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    client.set_registered_model_alias(name, "champion", version.version)
    return client


def test_profile_is_stored_with_the_version_and_slower_candidates_are_flagged(
    tmp_path, mlflow_server, unique_name, other_lr_dir, slow_forest_dir
):
    client = register_census_model(mlflow_server, unique_name)
    env = cli_env(MLFLOW_TRACKING_URI=mlflow_server, MLOPS_CI_MODEL_NAME=unique_name)
    # 64-row calls and a x1.5 threshold: the forest is about x4, equal models about x1 (see
    # tests/profiling/test_compare.py), so neither outcome depends on how busy the machine is.
    compare = ["--server", "none", "--compare-batch-size", "64", "--latency-threshold", "1.5"]

    # The champion itself: converted from the registry, profiled in-process only, stored
    # with version 1. Compared with itself: nothing to compare.
    first = profile(tmp_path, *compare, "--model", f"models:/{unique_name}/1", env=env)
    assert first.returncode == 0, first.stdout + first.stderr
    saved = read_step_result(tmp_path / ".mlops-ci/profile.json")
    latency = next(c for c in saved.checks if c.name == "latency p95 vs champion")
    assert latency.status == "skipped" and "the candidate is the champion" in latency.message
    version = client.get_model_version(unique_name, "1")
    assert version.tags["mlops_ci.profile.artifacts"] == f"runs:/{version.run_id}/mlops-ci/profile"
    assert float(version.tags["mlops_ci.profile.inprocess_p50_ms"]) > 0
    assert saved.outputs["profile-uri"] == version.tags["mlops_ci.profile.artifacts"]
    stored = {f.path for f in client.list_artifacts(version.run_id, "mlops-ci/profile")}
    assert {"mlops-ci/profile/profile.md", "mlops-ci/profile/report.json", "mlops-ci/profile/model"} <= stored

    # An equal candidate (another logistic regression) against the stored champion model.
    equal = profile(tmp_path, *compare, "--model", str(other_lr_dir), env=env)
    assert equal.returncode == 0, equal.stdout + equal.stderr
    saved = read_step_result(tmp_path / ".mlops-ci/profile.json")
    latency = next(c for c in saved.checks if c.name == "latency p95 vs champion")
    assert latency.status == "passed" and latency.interval[0] <= 1.5, latency.message
    assert latency.details["kind"] == "latency" and saved.outputs["champion-version"] == "1"
    report = json.loads((tmp_path / ".mlops-ci/profile/report.json").read_text())
    assert "the model stored with its profile" in report["comparison_note"]
    # An unregistered candidate is not stored: version 1's profile is still the only one.
    assert client.get_model_version(unique_name, "1").tags == version.tags

    # A much larger forest: flagged, blocking by default (exit 1; `warn` is covered in
    # tests/profiling/test_decisions.py).
    slower = profile(tmp_path, *compare, "--model", str(slow_forest_dir), env=env)
    assert slower.returncode == 1, slower.stdout + slower.stderr
    saved = read_step_result(tmp_path / ".mlops-ci/profile.json")
    latency = next(c for c in saved.checks if c.name == "latency p95 vs champion")
    assert latency.status == "failed" and latency.blocking and latency.interval[0] > 1.5
    assert latency.details["ratio"] > 2.5 and "slower" in latency.message
    assert saved.status == "failed" and "latency p95 vs champion failed" in saved.summary
    assert saved.outputs["latency-ratio"] == f"{latency.details['ratio']:.3f}"


# -- a real image under CPU and memory limits -----------------------------------------------------


@pytest.fixture(scope="module")
def docker_engine():
    from mlops_ci.container.engine import find_engine

    engine, why = find_engine("docker", os.environ)
    if engine is None:
        missing(f"a Docker engine ({why})", install="scripts/setup/20-docker.sh")
    if not any(BASE_IMAGE in tag for image in engine.client.images.list() for tag in image.tags):
        pytest.fail(f"base image {BASE_IMAGE} is missing; scripts/setup/20-docker.sh creates it")
    return engine


@pytest.fixture(scope="module")
def served_image(docker_engine, census_model_dir, tmp_path_factory):
    """The serving image of the census model, built as `mlops-ci package` builds it."""
    from mlops_ci.container.context import oci_labels, render_context
    from mlops_ci.container.wheels import default_platform
    from mlops_ci.serving.settings import load_settings

    image = f"localhost/mlops-ci-profile-test:{uuid.uuid4().hex[:8]}"
    settings = load_settings(census_model_dir)
    context = render_context(
        tmp_path_factory.mktemp("profile-image") / "context",
        onnx_bytes=(census_model_dir / "model.onnx").read_bytes(),
        settings=settings,
        image=image,
        base_image=BASE_IMAGE,
        labels=oci_labels(settings, source_url=None, commit=None, model_uri=None),
        python_version="3.11",
        platform_tag=default_platform(),
    )
    docker_engine.build(context.path, image)
    yield image
    docker_engine.remove_image(image)
    docker_engine.prune_build_stages()


def test_container_profile_sweeps_cpu_limits_and_finds_the_memory_that_does_not_oom(
    tmp_path, served_image, docker_engine
):
    env = cli_env(DOCKER_HOST=os.environ["DOCKER_HOST"])
    result = profile(
        tmp_path,
        "--image", served_image,
        "--engine", "docker",
        "--cpus", "0.5,1",
        "--concurrency", "1,4",
        "--memory-limits", "16Mi,32Mi,64Mi,256Mi",
        "--batch-sizes", "1,512",
        "--slo-p99-ms", "500",
        env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    saved = read_step_result(tmp_path / ".mlops-ci/profile.json")
    out = saved.outputs
    assert out["server"] == "container" and out["cpu-limit"] in ("500m", "1")
    assert MEMORY.match(out["memory-limit"]) and MEMORY.match(out["memory-request"])
    report = json.loads((tmp_path / ".mlops-ci/profile/report.json").read_text())
    # The model was copied out of the image (no --model): in-process points exist too.
    assert report["model"]["source"] == f"/model in {served_image}" and report["inprocess"]
    sweep = report["end_to_end"]
    assert {(p["cpus"], p["concurrency"]) for p in sweep["points"]} == {
        (0.5, 1),
        (0.5, 4),
        (1.0, 1),
        (1.0, 4),
    }
    assert all(p["errors"] == 0 for p in sweep["points"])
    probes = sweep["memory_probes"]
    # 256Mi runs first (the baseline), then a binary search; 16Mi cannot hold Python and
    # ONNX Runtime, so some limit fails with an OOM kill, and some smaller one passes.
    assert probes[-1]["limit_bytes"] == 256 * 2**20 and probes[-1]["passed"]
    assert any(p["oom_killed"] for p in probes), probes
    assert sweep["smallest_memory_bytes"] in (32 * 2**20, 64 * 2**20, 256 * 2**20)
    check = next(c for c in saved.checks if c.name == "memory-limit")
    assert check.status == "passed" and "OOM" in check.message
    # Every container the profile started is gone.
    leftover = [c for c in docker_engine.client.containers.list(all=True) if c.image.tags == [served_image]]
    assert not leftover


# -- the step's two sides of the line: profiling's errors as flags, the outcome as a result --------


@pytest.mark.parametrize(
    ("error", "exit_code", "message"),
    [
        (
            errors.NothingToProfile(Path("out")),
            2,
            "nothing to profile: no --model, no --image and no --endpoint, and no model from an earlier "
            "`mlops-ci package` or `mlops-ci register` in out; run `mlops-ci package` first, or pass --model "
            "(a packaged folder, an .onnx file or a model URI)",
        ),
        (
            errors.EngineUnavailable("no Docker engine answers"),
            3,
            "--server container: no Docker engine answers; start Docker (DOCKER_HOST) or use --server serve",
        ),
        (
            errors.NoRequestBody("http://h"),
            2,
            "no request to send to http://h: pass --request with a JSON body (and --infer-path), or --model so "
            "the request is built from its input example",
        ),
        (
            errors.NoRequestPath(),
            2,
            "--request needs --infer-path when there is no model to name the endpoint",
        ),
        (
            errors.NoInputExample("census"),
            2,
            "model census has no input example, so no request can be built for it; log the model with an "
            "input_example, or pass --request with a request body",
        ),
        (
            errors.NoInputExample("census", ("age",)),
            2,
            "the input example of census lacks column(s) age; log the model with a complete input_example, or "
            "pass --request",
        ),
        (
            errors.GeneratorUnavailable("wrk"),
            2,
            "--load-generator wrk: wrk is not installed; install it (apt-get install wrk, brew install wrk) or "
            "use --load-generator python",
        ),
        (
            errors.EndpointNotReady("http://h", last="refused", attempts=3, elapsed_s=2.2),
            3,
            "endpoint http://h is not ready (refused) after 3 tries in 2 s; check --endpoint and that the server "
            "runs, or raise --retry-timeout",
        ),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, Exception) else None,
)
def test_profiling_errors_name_the_flags_to_change_with_the_same_exit_code(error, exit_code, message):
    assert "--" not in str(error)
    mapped = flag_error(error)
    assert (mapped.exit_code, str(mapped)) == (exit_code, message)


def test_the_outcome_becomes_the_result_one_check_per_decision(tmp_path):
    from mlops_ci.profiling.decisions import Decision
    from mlops_ci.profiling.recommend import Objective
    from mlops_ci.profiling.report import ProfileReport
    from mlops_ci.profiling.run import ProfileOutcome

    decisions = (
        Decision(
            "latency-objective", "failed", value=3.0, threshold=1.0, message="too slow", details={"kind": "r"}
        ),
        Decision("load-generator", "warning", value=0.9, interval=(0.1, 0.2), p_value=0.5, blocking=False),
    )
    paths = {"markdown": tmp_path / "profile.md", "json": tmp_path / "report.json"}
    outcome = ProfileOutcome(
        report=ProfileReport(model={}, objective=Objective(slo_p99_ms=1, target_rps=None)),
        server="serve",
        decisions=decisions,
        status="failed",
        summary="latency-objective failed; model: too slow",
        figures={"cpu_request": "", "server": "serve", "inprocess_p50_ms": "0.1"},
        paths=paths,
        markdown="### Profile\n",
        profile_uri="runs:/r/mlops-ci/profile",
    )
    result = build_result(outcome)
    assert list(result.outputs.items()) == [
        ("cpu-request", ""),
        ("server", "serve"),
        ("report", str(paths["markdown"])),
        ("inprocess-p50-ms", "0.1"),
        ("profile-uri", "runs:/r/mlops-ci/profile"),
    ]
    assert (result.step, result.status, result.summary) == ("profile", "failed", outcome.summary)
    assert [c.to_dict() for c in result.checks] == [
        {
            "name": d.name,
            "status": d.status,
            "value": d.value,
            "baseline": d.baseline,
            "interval": list(d.interval) if d.interval else None,
            "p_value": d.p_value,
            "threshold": d.threshold,
            "message": d.message,
            "blocking": d.blocking,
            "details": d.details,
        }
        for d in decisions
    ]
    assert result.artifacts == [str(paths["json"]), str(paths["markdown"])]
    assert result.summary_markdown == "### Profile\n"


def step_context(cwd, **flags):
    """The profile step's context for ``flags``, resolved as the runner resolves it."""
    from mlops_ci.platforms import detect_platform
    from mlops_ci.runner import resolve_options
    from mlops_ci.steps.base import StepContext
    from mlops_ci.steps.profile import STEP

    env = {"PATH": os.environ["PATH"]}
    config, values = resolve_options(
        flags, env=env, cwd=cwd, top_level=STEP.top_level_options, section="profile", options=STEP.options
    )
    platform = detect_platform(env, cwd=cwd, out_dir=values.out_dir)
    return StepContext("profile", cwd, config, values, platform, platform.context(), env)


def test_earlier_results_give_the_image_the_packaged_model_and_the_champion(tmp_path):
    from mlops_ci.errors import UsageError
    from mlops_ci.result import StepResult
    from mlops_ci.steps.profile_request import build_request

    out = tmp_path / ".mlops-ci"
    settings = tmp_path / "model" / "model-settings.json"
    package = {"image-built": "true", "image": "localhost/census:2", "settings-path": str(settings)}
    StepResult("package", "passed", "", {**package, "model-name": "census", "model-version": "2"}).write(out)
    StepResult("validate", "passed", "", {"baseline-uri": "models:/census/1"}).write(out)
    request = build_request(step_context(tmp_path, threads=["4,1"]))
    models = request.models
    assert models.image == "localhost/census:2" and models.packaged.settings_path == settings
    assert (models.packaged.name, models.packaged.version) == ("census", "2")
    assert (models.champion.uri, models.champion.reason) == ("models:/census/1", "validate's baseline")
    assert request.sweeps.threads == (1, 4) and request.settings["threads"] == ["4", "1"]
    chosen = build_request(step_context(tmp_path, champion="models:/census@old", image="localhost/x:1"))
    assert chosen.models.champion.uri == "models:/census@old" and chosen.models.image == "localhost/x:1"

    StepResult("package", "passed", "", {"image-built": "false", "image": "localhost/census:2"}).write(out)
    StepResult("validate", "passed", "", {"first-model": "true"}).write(out)
    first = build_request(step_context(tmp_path, model_name="census"))
    assert first.models.image is None and first.models.champion.uri is None
    assert "first model" in first.models.champion.reason
    with pytest.raises(UsageError, match="--server container needs an image"):
        build_request(step_context(tmp_path, server="container"))
