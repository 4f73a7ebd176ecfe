"""`mlops-ci register` end to end, against a real MLflow server process: lineage on the
run and the version, the challenger loads, the embedded store, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers import cli_env, run_cli
from tests.steps.tracking_helpers import assert_bad_input, outputs

pytestmark = pytest.mark.slow


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
    # (global: an earlier test in this worker may have pointed the registry elsewhere)
    mlflow.set_registry_uri(mlflow_server)
    model = mlflow.pyfunc.load_model(f"models:/{unique_name}@challenger")
    holdout = pd.read_csv(example_project / "data" / "holdout.csv", keep_default_na=False)
    predictions = model.predict(holdout.drop(columns=["class"]))
    assert len(predictions) == len(holdout)
    assert (predictions == holdout["class"]).mean() > 0.8


def _sha256(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_embedded_store_needs_no_server(example_project):
    env = cli_env()
    result = run_cli(["train"], cwd=example_project, env=env)
    assert result.returncode == 0, result.stderr
    assert (example_project / ".mlops-ci" / "mlflow.db").is_file()
    assert outputs(example_project, "train")["tracking-uri"].startswith("sqlite:///")
    registered = run_cli(["register"], cwd=example_project, env=env)
    assert registered.returncode == 0, registered.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["register", "--run-id", "0123456789abcdef0123456789abcdef"],
            "run 0123456789abcdef0123456789abcdef does not exist",
        ),
        (["register", "--alias", "latest"], "alias 'latest' is not valid"),
    ],
)
def test_bad_input_exits_2_with_one_line_and_creates_nothing(
    example_project, env, client, unique_name, args, message
):
    assert_bad_input(example_project, env, client, unique_name, args, None, message)
