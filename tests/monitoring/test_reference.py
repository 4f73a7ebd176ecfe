"""The drift reference found through the registry (a real MLflow server): the training
data the champion's run recorded, checked by sha256; a stored sample used where the
training data is not."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pandas as pd
import pytest

from mlops_ci.errors import UsageError
from mlops_ci.runner import run_step


@pytest.fixture
def champion(mlflow_server, unique_name, tmp_path):
    """A champion whose run recorded data/train.csv as its training data (no real model:
    its predictions cannot be scored, which the step must survive)."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=mlflow_server, registry_uri=mlflow_server)
    rng = np.random.default_rng(5)
    (tmp_path / "data").mkdir()
    train = tmp_path / "data" / "train.csv"
    pd.DataFrame({"x": rng.normal(size=3000), "colour": rng.choice(["red", "blue"], 3000), "y": 0}).to_csv(
        train, index=False
    )
    digest = hashlib.sha256(train.read_bytes()).hexdigest()
    run_id = client.create_run(client.create_experiment(unique_name)).info.run_id
    client.log_text(
        run_id,
        json.dumps([{"path": "data/train.csv", "sha256": digest, "files": 1}]),
        "mlops-ci/data_fingerprints.json",
    )
    client.create_registered_model(unique_name)
    version = client.create_model_version(unique_name, source=f"runs:/{run_id}/model", run_id=run_id).version
    client.set_registered_model_alias(unique_name, "champion", version)
    current = tmp_path / "current.csv"
    pd.DataFrame({"x": rng.normal(size=800), "colour": rng.choice(["red", "blue"], 800)}).to_csv(
        current, index=False
    )
    return client, unique_name, version, current


def drift(tmp_path, mlflow_server, **flags):
    env = {"MLFLOW_TRACKING_URI": mlflow_server, "MLOPS_CI_MODEL_NAME": flags.pop("model", "")}
    return run_step("drift", {"target": "y", **flags}, env=env, cwd=tmp_path)


def test_training_data_then_the_stored_sample(tmp_path, mlflow_server, champion, caplog):
    client, name, version, current = champion
    result = drift(tmp_path, mlflow_server, model=name, current=[str(current)], store_reference=True)
    assert result.status == "passed" and result.outputs["reference-rows"] == "3000"
    assert "predictions not compared" in caplog.text  # no loadable model behind this version
    report = json.loads((tmp_path / ".mlops-ci" / "drift" / "drift-report.json").read_text())
    assert report["reference"]["source"] == f"models:/{name}/{version} training data: data/train.csv"
    tag = client.get_model_version(name, version).tags["mlops_ci.drift.reference"]
    assert tag.endswith("/mlops-ci/drift-reference.parquet")

    # Elsewhere (no training data in the checkout), the stored sample is the reference.
    (tmp_path / "data" / "train.csv").rename(tmp_path / "moved.csv")
    drift(tmp_path, mlflow_server, model=name, current=[str(current)])
    report = json.loads((tmp_path / ".mlops-ci" / "drift" / "drift-report.json").read_text())
    assert report["reference"]["source"] == f"models:/{name}/{version} (stored reference sample)"
    assert report["reference"]["rows"] == 3000


def test_changed_training_data_is_used_with_a_warning(tmp_path, mlflow_server, champion):
    _, name, _, current = champion
    with (tmp_path / "data" / "train.csv").open("a") as handle:
        handle.write("0.5,red,0\n")
    result = drift(tmp_path, mlflow_server, model=name, current=[str(current)], predictions=False)
    warning = next(c for c in result.checks if c.name == "reference data")
    assert warning.status == "warning" and "changed since" in warning.message


def test_no_champion_no_reference(tmp_path, mlflow_server, unique_name):
    from mlflow.tracking import MlflowClient

    MlflowClient(tracking_uri=mlflow_server, registry_uri=mlflow_server).create_registered_model(unique_name)
    (tmp_path / "c.csv").write_text("x\n1\n")
    with pytest.raises(
        UsageError, match="@champion does not exist .* deploy a champion first or pass --reference"
    ):
        drift(tmp_path, mlflow_server, model=unique_name, current=[str(tmp_path / "c.csv")])
    with pytest.raises(UsageError, match="no reference: pass --reference"):
        drift(tmp_path, mlflow_server, current=[str(tmp_path / "c.csv")])


def test_drift_started_retraining_is_not_repeated_within_the_cooldown(tmp_path, mlflow_server, champion):
    from tests.fake_forge import FakeForge, Token

    client, name, _, _ = champion
    rng = np.random.default_rng(9)
    shifted = tmp_path / "shifted.csv"
    pd.DataFrame({"x": rng.normal(1.0, 1, 800), "colour": rng.choice(["red", "blue"], 800)}).to_csv(
        shifted, index=False
    )
    token = "ghs_CooldownT0ken5t4r3e2w1q0"
    with FakeForge({token: Token()}) as forge:
        forge.add_workflow(
            "acme/m", "train.yml", inputs={"reason": True, "window-start": False, "window-end": False}
        )
        env = {
            "MLFLOW_TRACKING_URI": mlflow_server,
            "MLOPS_CI_MODEL_NAME": name,
            "GITHUB_ACTIONS": "true",
            "GITHUB_REPOSITORY": "acme/m",
            "GITHUB_API_URL": forge.url,
            "GITHUB_TOKEN": token,
        }
        flags = {
            "target": "y",
            "current": [str(shifted)],
            "retrain": True,
            "retrain_workflow": "train.yml",
            "predictions": False,
        }
        first = run_step("drift", flags, env=env, cwd=tmp_path)
        second = run_step("drift", flags, env=env, cwd=tmp_path)
        third = run_step("drift", {**flags, "retrain_cooldown": "0"}, env=env, cwd=tmp_path)
        assert forge.problems == []
        assert [first.outputs["retrain"], second.outputs["retrain"], third.outputs["retrain"]] == [
            "triggered",
            "cooldown",
            "triggered",
        ]
        assert len(forge.dispatches) == 2
    check = next(c for c in second.checks if c.name == "retraining")
    assert "not again within the 24 h cooldown" in check.message and "drift in x" in check.message
    assert client.get_registered_model(name).tags["mlops_ci.retrain.reason"] == "drift in x"
