"""A run planted by untrusted code is never reused by a trusted `train` (SECURITY.md).

The reuse key is computable and any MLflow writer can set it, the pull request's own
training code included. Here a merge-request pipeline trains (untrusted), then jobs on a
protected branch (trusted) train the same code and data: without the provenance key they
always train again; with it they sign what they train and reuse only runs whose signature
verifies - not a planted run carrying a copied or a forged signature."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from mlops_ci.runner import run_step
from mlops_ci.tracking import provenance
from mlops_ci.tracking.provenance import KEY_ENV, ProvenanceKey
from tests.helpers import cli_env

KEY = "k" * 40
TRAIN_PY = """
import mlflow, mlflow.sklearn
from sklearn.linear_model import LogisticRegression
with mlflow.start_run():
    mlflow.sklearn.log_model(LogisticRegression().fit([[0], [1], [2], [3]], [0, 0, 1, 1]), name="model")
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    (root / "train.py").write_text(TRAIN_PY)
    (root / "mlops-ci.yaml").write_text(f"train:\n  command: {sys.executable} train.py\n")
    git = ["git", "-c", "user.name=T", "-c", "user.email=t@example.com"]
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=root, check=True)
    subprocess.run([*git, "add", "-A"], cwd=root, check=True)
    subprocess.run([*git, "commit", "-q", "-m", "tiny"], cwd=root, check=True)
    return root


def train(project: Path, env: dict[str, str], **ci: str):
    gitlab = {"GITLAB_CI": "true", "CI_PROJECT_PATH": "g/p", "CI_PIPELINE_SOURCE": "push", **ci}
    return run_step("train", {}, env={**env, **gitlab}, cwd=project)


UNTRUSTED = {"CI_MERGE_REQUEST_IID": "5", "CI_COMMIT_REF_PROTECTED": "false"}
TRUSTED = {"CI_COMMIT_REF_PROTECTED": "true"}


def test_a_trusted_train_reuses_only_runs_a_trusted_job_signed(project, mlflow_server, unique_name):
    from mlflow.tracking import MlflowClient

    env = cli_env(MLFLOW_TRACKING_URI=mlflow_server, MLOPS_CI_EXPERIMENT=unique_name)
    client = MlflowClient(mlflow_server)

    planted = train(project, env, **UNTRUSTED)  # the merge request's own run
    assert planted.status == "passed" and planted.context["trusted"] is False
    assert provenance.RUN_TAG not in client.get_run(planted.outputs["run-id"]).data.tags
    # An untrusted job may reuse it (its results are never believed anyway).
    assert train(project, env, **UNTRUSTED).outputs["reused"] == "true"

    # A trusted job without the key cannot tell it from its own: it trains again.
    unkeyed = train(project, env, **TRUSTED)
    assert unkeyed.outputs["reused"] == "false" and unkeyed.context["trusted"] is True
    assert f"without {KEY_ENV} its provenance cannot be verified" in unkeyed.summary

    keyed = {**env, KEY_ENV: KEY}
    signed = train(project, keyed, **TRUSTED)
    assert signed.outputs["reused"] == "false" and "no valid provenance signature" in signed.summary
    assert "signed by this trusted job" in signed.summary
    signature = client.get_run(signed.outputs["run-id"]).data.tags[provenance.RUN_TAG]

    reused = train(project, keyed, **TRUSTED)
    assert reused.outputs["reused"] == "true" and reused.outputs["run-id"] == signed.outputs["run-id"]

    # Newer planted runs with the signed run's signature copied onto them, or a signature
    # made with another key, are passed over; the signed run is still found behind them.
    for forged in (signature, provenance.sign(ProvenanceKey(b"x" * 40), provenance.RUN_PURPOSE, {})):
        attacker = train(project, env, **UNTRUSTED, MLOPS_CI_FORCE="true")
        client.set_tag(attacker.outputs["run-id"], provenance.RUN_TAG, forged)
        again = train(project, keyed, **TRUSTED)
        assert again.outputs["reused"] == "true" and again.outputs["run-id"] == signed.outputs["run-id"]
