"""train and register end to end, against a real MLflow server process."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.helpers import cli_env, run_cli

pytestmark = pytest.mark.slow


@pytest.fixture
def env(mlflow_server, unique_name):
    return cli_env(
        MLFLOW_TRACKING_URI=mlflow_server, MLOPS_CI_EXPERIMENT=unique_name, MLOPS_CI_MODEL_NAME=unique_name
    )


@pytest.fixture
def client(mlflow_server):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=mlflow_server, registry_uri=mlflow_server)


def runs_of(client, experiment: str) -> list:
    exp = client.get_experiment_by_name(experiment)
    return client.search_runs([exp.experiment_id]) if exp else []


def outputs(project: Path, step: str) -> dict:
    return json.loads((project / ".mlops-ci" / f"{step}.json").read_text())["outputs"]


def test_train_register_and_load_the_challenger(example_project, env, client, unique_name, mlflow_server):
    trained = run_cli(["train"], cwd=example_project, env=env)
    assert trained.returncode == 0, trained.stderr
    assert "trained logistic-regression" in trained.stderr  # the command's output, streamed
    run_id = outputs(example_project, "train")["run-id"]

    registered = run_cli(["register"], cwd=example_project, env=env)
    assert registered.returncode == 0, registered.stderr
    reg = outputs(example_project, "register")
    assert reg["model-uri"] == f"models:/{unique_name}/1" and reg["created"] == "true"

    run = client.get_run(run_id)
    tags = run.data.tags
    assert len(tags["mlflow.source.git.commit"]) == 40
    assert tags["mlops_ci.git.dirty"] == "false"
    assert tags["mlops_ci.data.data/train.csv"] == _sha256(example_project / "data" / "train.csv")
    assert tags["mlops_ci.seed"] == "42"
    assert run.data.params["C"] == "1.0" and run.data.params["model"] == "logistic-regression"
    assert run.data.metrics["train_accuracy"] > 0.8
    artifacts = {a.path for a in client.list_artifacts(run_id, "mlops-ci")}
    assert {"mlops-ci/data_fingerprints.json", "mlops-ci/requirements.txt", "mlops-ci/train.log"} <= artifacts
    fingerprints = json.loads(
        client.download_artifacts(run_id, "mlops-ci/data_fingerprints.json", str(example_project / "dl"))
        and (example_project / "dl" / "data_fingerprints.json").read_text()
    )
    assert fingerprints[0]["rows"] == 26048 and fingerprints[0]["columns"]["age"] == "int"

    version = client.get_model_version_by_alias(unique_name, "challenger")
    assert version.version == "1"
    assert version.tags["mlops_ci.run_id"] == run_id
    assert version.tags["mlops_ci.commit"] == tags["mlflow.source.git.commit"]
    assert version.tags["mlops_ci.data_fingerprint"] == tags["mlops_ci.data_fingerprint"]
    assert version.description.startswith("Census income example")

    import mlflow
    import pandas as pd

    mlflow.set_tracking_uri(mlflow_server)
    model = mlflow.pyfunc.load_model(f"models:/{unique_name}@challenger")
    holdout = pd.read_csv(example_project / "data" / "holdout.csv", keep_default_na=False)
    predictions = model.predict(holdout.drop(columns=["class"]))
    assert len(predictions) == len(holdout)
    assert (predictions == holdout["class"]).mean() > 0.8


def _sha256(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_same_inputs_reuse_the_run_and_the_version(example_project, env, client, unique_name):
    assert run_cli(["train"], cwd=example_project, env=env).returncode == 0
    assert run_cli(["register"], cwd=example_project, env=env).returncode == 0
    first = outputs(example_project, "train")

    again = run_cli(["train"], cwd=example_project, env=env)
    assert again.returncode == 0, again.stderr
    second = outputs(example_project, "train")
    assert second["reused"] == "true" and second["run-id"] == first["run-id"]
    assert json.loads((example_project / ".mlops-ci" / "train.json").read_text())["status"] == "skipped"
    assert len(runs_of(client, unique_name)) == 1

    assert run_cli(["register"], cwd=example_project, env=env).returncode == 0
    assert outputs(example_project, "register")["created"] == "false"
    assert len(client.search_model_versions(f"name = '{unique_name}'")) == 1

    forced = run_cli(["train", "--force"], cwd=example_project, env=env)
    assert forced.returncode == 0 and outputs(example_project, "train")["reused"] == "false"
    assert len(runs_of(client, unique_name)) == 2


def test_one_changed_byte_or_parameter_makes_a_new_run(example_project, env, client, unique_name):
    assert run_cli(["train"], cwd=example_project, env=env).returncode == 0
    first = outputs(example_project, "train")["run-id"]

    changed_param = run_cli(["train", "--param", "C=0.5"], cwd=example_project, env=env)
    assert changed_param.returncode == 0, changed_param.stderr
    assert outputs(example_project, "train")["run-id"] != first

    data = example_project / "data" / "train.csv"
    content = data.read_bytes()
    data.write_bytes(content.replace(b"\n39,", b"\n38,", 1))  # one byte of one age
    changed_data = run_cli(["train"], cwd=example_project, env=env)
    assert changed_data.returncode == 0, changed_data.stderr
    assert outputs(example_project, "train")["reused"] == "false"
    assert len(runs_of(client, unique_name)) == 3


def test_unmodified_autolog_script_lands_in_the_run(tmp_path, env, client, unique_name):
    (tmp_path / "fit.py").write_text(
        "import mlflow\nimport numpy as np\nfrom sklearn.linear_model import LogisticRegression\n"
        "mlflow.autolog()\nrng = np.random.default_rng(0)\nX = rng.normal(size=(200, 3))\n"
        "LogisticRegression().fit(X, (X[:, 0] > 0).astype(int))\n"
    )
    result = run_cli(["train", "--command", "python fit.py"], cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    out = outputs(tmp_path, "train")
    assert out["model-uri"].startswith("models:/m-")
    runs = runs_of(client, unique_name)
    assert len(runs) == 1 and runs[0].info.run_id == out["run-id"]
    assert "C" in runs[0].data.params  # logged by autolog, in our run


def test_failing_command_marks_the_run_failed(tmp_path, env, client, unique_name):
    (tmp_path / "fail.py").write_text("print('loading data'); raise SystemExit('boom: bad column')\n")
    result = run_cli(["train", "--command", "python fail.py"], cwd=tmp_path, env=env)
    assert result.returncode == 1
    assert "training command failed with exit code 1" in result.stdout
    (run,) = runs_of(client, unique_name)
    assert run.info.status == "FAILED"
    log = client.download_artifacts(run.info.run_id, "mlops-ci/train.log", str(tmp_path / "dl"))
    assert "boom: bad column" in Path(log).read_text()


def test_command_that_logs_no_model_fails(tmp_path, env):
    (tmp_path / "nothing.py").write_text("print('done')\n")
    result = run_cli(["train", "--command", "python nothing.py"], cwd=tmp_path, env=env)
    assert result.returncode == 1 and "logged no model" in result.stdout


BAD_INPUTS = [
    (["train", "--data", "data/missing.csv"], None, "data path data/missing.csv does not exist"),
    (["train"], "tarin:\n  command: x\n", "unknown key 'tarin' in .*mlops-ci.yaml; did you mean 'train'"),
    (["train"], "train:\n  seed: forty-two\n", "'train.seed' in .*mlops-ci.yaml must be an integer"),
    (["train", "--bogus-flag"], None, "unrecognized arguments: --bogus-flag"),
    (["train", "--command", "pyhton train.py"], None, "'pyhton' was not found on PATH"),
    (
        ["register", "--run-id", "0123456789abcdef0123456789abcdef"],
        None,
        "run 0123456789abcdef0123456789abcdef does not exist",
    ),
    (["register", "--alias", "latest"], None, "alias 'latest' is not valid"),
]


@pytest.mark.parametrize(("args", "config", "message"), BAD_INPUTS)
def test_bad_input_exits_2_with_one_line_and_creates_nothing(
    example_project, env, client, unique_name, args, config, message
):
    import re

    if config is not None:
        (example_project / "mlops-ci.yaml").write_text(config)
    result = run_cli(args, cwd=example_project, env=env)
    assert result.returncode == 2, result.stdout + result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert re.search(message, result.stderr), result.stderr
    assert not (example_project / ".mlops-ci" / "train.json").exists()
    assert runs_of(client, unique_name) == []
    assert client.search_registered_models(f"name = '{unique_name}'") == []


def test_unreachable_server_exits_3_within_the_budget(example_project, unique_name):
    env = cli_env(MLFLOW_TRACKING_URI="http://127.0.0.1:9", MLOPS_CI_EXPERIMENT=unique_name)
    started = time.monotonic()
    result = run_cli(["train", "--retry-timeout", "4"], cwd=example_project, env=env)
    elapsed = time.monotonic() - started
    assert result.returncode == 3, result.stderr
    assert "MLflow at http://127.0.0.1:9 did not answer" in result.stderr
    assert len(result.error_lines) == 1
    assert elapsed < 4 + 10  # the budget plus interpreter start-up
    # The error is recorded for the gate: a complete result with status "error".
    saved = json.loads((example_project / ".mlops-ci" / "train.json").read_text())
    assert saved["status"] == "error"


def test_embedded_store_needs_no_server(example_project):
    env = cli_env()
    result = run_cli(["train"], cwd=example_project, env=env)
    assert result.returncode == 0, result.stderr
    assert (example_project / ".mlops-ci" / "mlflow.db").is_file()
    assert outputs(example_project, "train")["tracking-uri"].startswith("sqlite:///")
    registered = run_cli(["register"], cwd=example_project, env=env)
    assert registered.returncode == 0, registered.stderr


def test_github_outputs_are_written(example_project, env, tmp_path):
    output, summary = tmp_path / "gh-output", tmp_path / "gh-summary"
    gh_env = {
        **env,
        "GITHUB_ACTIONS": "true",
        "GITHUB_OUTPUT": str(output),
        "GITHUB_STEP_SUMMARY": str(summary),
        "GITHUB_SHA": "a" * 40,
        "GITHUB_REF_NAME": "main",
    }
    assert run_cli(["train"], cwd=example_project, env=gh_env).returncode == 0
    lines = dict(line.split("=", 1) for line in output.read_text().splitlines())
    assert lines["reused"] == "false" and len(lines["run-id"]) == 32
    assert "mlops-ci train: passed" in summary.read_text()
