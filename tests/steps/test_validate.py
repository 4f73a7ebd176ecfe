"""`mlops-ci validate` end to end on the census-income example against a real MLflow server:
a first model (absolute checks only), a truly worse retrain (blocked) and an equal-quality
retrain with another seed (passes); and bad input, each a one-line exit 2 that writes
nothing to the registry."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.helpers import cli_env, run_cli

pytestmark = pytest.mark.slow

# Logistic regression fitted by stochastic gradient descent: unlike the default solver (which
# ends at the same optimum whatever the seed) the seed decides the order the rows are
# visited in, so each seed gives a genuinely different model of the same expected quality.
SGD = ["--param", "model=sgd"]


def result_of(project: Path) -> dict:
    return json.loads((project / ".mlops-ci" / "validate.json").read_text())


def checks_of(result: dict) -> dict[str, dict]:
    return {c["name"]: c for c in result["checks"]}


def train_and_register(project: Path, env: dict, *args: str) -> str:
    trained = run_cli(["train", *args], cwd=project, env=env)
    assert trained.returncode == 0, trained.stderr
    registered = run_cli(["register"], cwd=project, env=env)
    assert registered.returncode == 0, registered.stderr
    return json.loads((project / ".mlops-ci" / "register.json").read_text())["outputs"]["model-version"]


def test_first_model_then_a_worse_retrain_is_blocked_and_an_equal_one_passes(
    example_project, env, client, unique_name
):
    # 1. First model: no champion yet, so only the absolute floor runs.
    v1 = train_and_register(example_project, env, *SGD)
    # (Robustness runs once below, on the worse model; here it would only add time.)
    first = run_cli(["validate", "--no-robustness"], cwd=example_project, env=env)
    assert first.returncode == 0, first.stderr + first.stdout
    result = result_of(example_project)
    assert result["outputs"]["first-model"] == "true" and result["outputs"]["baseline-version"] == ""
    assert result["outputs"]["candidate-version"] == v1
    checks = checks_of(result)
    assert checks["accuracy floor"]["status"] == "passed"
    assert checks["accuracy floor"]["interval"][0] >= 0.80
    skipped = checks["accuracy no-regression"]
    assert skipped["status"] == "skipped" and skipped["message"].startswith("first model")
    assert "first model, no champion yet" in result["summary"]
    tags = client.get_model_version(unique_name, v1).tags
    assert tags["mlops_ci.validation.status"] == "passed"
    assert tags["mlops_ci.validation.champion_version"] == "none"

    # 2. Promote it (the deploy step will do this; `register --alias` does it by hand).
    assert run_cli(["register", "--alias", "champion"], cwd=example_project, env=env).returncode == 0

    # 3. A truly worse change: the same model on two features only.
    v2 = train_and_register(example_project, env, *SGD, "--param", "features=age,hours-per-week")
    worse = run_cli(["validate"], cwd=example_project, env=env)
    assert worse.returncode == 1, worse.stderr + worse.stdout
    assert worse.stdout.startswith("validate: failed - ") and "blocked by" in worse.stdout
    assert all(
        check["status"] == "passed"
        for check in result_of(example_project)["checks"]
        if check["details"]["kind"] == "robustness"
    )
    result = result_of(example_project)
    assert result["status"] == "failed" and result["outputs"]["baseline-version"] == v1
    checks = checks_of(result)
    accuracy = checks["accuracy no-regression"]
    assert accuracy["status"] == "failed" and accuracy["blocking"]
    assert accuracy["interval"][1] < 0 and accuracy["value"] < accuracy["baseline"]
    details = accuracy["details"]
    assert details["kind"] == "comparison" and details["rule"] == "no-regression"
    assert details["difference"] == pytest.approx(accuracy["value"] - accuracy["baseline"])
    # Two blocking no-regression checks share alpha 0.05 (Holm): 0.025 for the first.
    assert sorted(
        [details["alpha_adjusted"], checks["roc-auc no-regression"]["details"]["alpha_adjusted"]]
    ) == [
        0.025,
        0.05,
    ]
    assert details["tests"]["mcnemar"]["pvalue"] < 0.001
    assert checks["f1 no-regression"]["status"] == "warning" and not checks["f1 no-regression"]["blocking"]
    slices = [c for c in result["checks"] if c["details"].get("kind") == "slice"]
    assert any(c["status"] == "skipped" and c["message"].startswith("not enough data") for c in slices)
    version = client.get_model_version(unique_name, v2)
    assert version.tags["mlops_ci.validation.status"] == "failed"
    assert version.tags["mlops_ci.validation.champion_version"] == v1
    run = client.get_run(version.run_id)
    assert run.data.metrics["validate/accuracy/diff"] < 0
    assert run.data.metrics["validate/accuracy/champion"] == pytest.approx(accuracy["baseline"])
    logged = {a.path for a in client.list_artifacts(version.run_id, "mlops-ci/validate")}
    assert {
        "mlops-ci/validate/report.md",
        "mlops-ci/validate/junit.xml",
        "mlops-ci/validate/forest.png",
    } <= logged

    # Reports: JUnit has one test case per check, the markdown says why.
    folder = example_project / ".mlops-ci" / "validate"
    suite = ET.parse(folder / "junit.xml").getroot().find("testsuite")
    assert int(suite.get("tests")) == len(result["checks"])
    failed = [case.get("name") for case in suite.iter("testcase") if case.find("failure") is not None]
    assert "accuracy no-regression" in failed
    report = (folder / "report.md").read_text()
    assert report.startswith("# mlops-ci validate: BLOCKED") and "accuracy no-regression" in report
    for png in ("forest.png", "roc.png", "calibration.png"):
        assert (folder / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # 4. An equal-quality retrain: the same model with another seed.
    v3 = train_and_register(example_project, env, *SGD, "--seed", "7")
    equal = run_cli(["validate", "--no-robustness"], cwd=example_project, env=env)
    assert equal.returncode == 0, equal.stderr + equal.stdout
    result = result_of(example_project)
    checks = checks_of(result)
    accuracy = checks["accuracy no-regression"]
    assert accuracy["status"] == "passed"
    assert accuracy["interval"][0] < 0 < accuracy["interval"][1]  # a different model, not a copy
    assert checks["brier non-inferiority"]["status"] == "passed"
    assert client.get_model_version(unique_name, v3).tags["mlops_ci.validation.status"] == "passed"


def _tiny_model(path: Path, *, extra_label: bool = False):
    """A small scikit-learn model of the census data, saved as an MLflow model folder."""
    import mlflow.sklearn
    import pandas as pd
    from mlflow.models import infer_signature
    from sklearn.linear_model import LogisticRegression

    from tests.helpers import EXAMPLE

    data = pd.read_csv(EXAMPLE / "data" / "train.csv").head(2000)
    features, target = data[["age", "hours-per-week"]], data["class"].copy()
    if extra_label:
        target.iloc[:50] = "unknown"
    model = LogisticRegression(max_iter=500).fit(features, target)
    mlflow.sklearn.save_model(model, str(path), signature=infer_signature(features, model.predict(features)))
    return path


def test_bad_input_is_one_line_exit_2_and_writes_nothing(
    example_project, env, client, unique_name, tmp_path, mlflow_server
):
    import mlflow

    mlflow.set_tracking_uri(mlflow_server)
    mlflow.set_registry_uri(mlflow_server)
    mlflow.set_experiment(unique_name)
    with mlflow.start_run() as run:
        model_dir = _tiny_model(tmp_path / "tiny")
        mlflow.log_artifacts(str(model_dir), "model")
    registered = mlflow.register_model(f"runs:/{run.info.run_id}/model", unique_name)
    candidate = f"models:/{unique_name}/{registered.version}"
    other = _tiny_model(tmp_path / "three-labels", extra_label=True)
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    latin1 = tmp_path / "latin1.csv"
    latin1.write_bytes("age,class\n30,caf\xe9\n".encode("latin-1"))
    corrupt = tmp_path / "corrupt.parquet"
    corrupt.write_bytes(b"PAR1 this is not parquet")
    header_only = tmp_path / "header.csv"
    header_only.write_text("age,hours-per-week,class\n")
    cases = {
        "missing target column": (
            ["--target", "clas"],
            "target column 'clas' is not in holdout .*; did you mean 'class'\\?",
        ),
        "empty file": (["--holdout", str(empty)], "holdout file .*empty.csv is empty"),
        "file without rows": (
            ["--holdout", str(header_only)],
            "holdout .*header.csv has a header but no rows",
        ),
        "unreadable text": (
            ["--holdout", str(latin1)],
            "cannot read holdout .*latin1.csv: it is not UTF-8 text",
        ),
        "unreadable parquet": (["--holdout", str(corrupt)], "cannot read holdout .*corrupt.parquet"),
        "missing holdout": (
            ["--holdout", str(tmp_path / "nope.csv")],
            "holdout file .*nope.csv does not exist; set holdout in mlops-ci.yaml or pass --holdout$",
        ),
        "candidate does not exist": (
            ["--candidate", f"models:/{unique_name}/99"],
            f"candidate model models:/{unique_name}/99 does not exist in {mlflow_server}; "
            "set validate.candidate in mlops-ci.yaml or pass --candidate",
        ),
        "different label sets": (
            ["--baseline", str(other)],
            "the candidate predicts the labels \\{<=50K, >50K\\} but the baseline \\{<=50K, >50K, unknown\\}",
        ),
        "typo in a check": (
            [
                "--config",
                str(
                    _config(
                        tmp_path,
                        "  checks:\n    - metric: accuracy\n      rule: floor\n      treshold: 0.8\n",
                    )
                ),
            ],
            "unknown key 'validate.checks.0.treshold' in .*; did you mean 'threshold'\\?",
        ),
        "non-inferiority without margin": (
            [
                "--config",
                str(_config(tmp_path, "  checks:\n    - metric: roc-auc\n      rule: non-inferiority\n")),
            ],
            "checks\\[0\\]: non-inferiority needs a positive `margin`.*; set validate.checks in mlops-ci.yaml$",
        ),
    }
    import re

    for label, (args, message) in cases.items():
        outcome = run_cli(["validate", "--candidate", candidate, *args], cwd=example_project, env=env)
        assert outcome.returncode == 2, f"{label}: {outcome.returncode} {outcome.stdout} {outcome.stderr}"
        lines = outcome.stderr.strip().splitlines()
        assert len(lines) == 1, f"{label}: {outcome.stderr}"
        assert re.search(message, lines[0]), f"{label}: {lines[0]}"
        assert lines[0].startswith("mlops-ci validate: error: ")
    # Nothing written: no step result, no report, no tags, no metrics or artifacts on the run.
    assert not (example_project / ".mlops-ci" / "validate.json").exists()
    assert not (example_project / ".mlops-ci" / "validate").exists()
    version = client.get_model_version(unique_name, registered.version)
    assert not any(key.startswith("mlops_ci.validation") for key in version.tags)
    assert not client.get_run(run.info.run_id).data.metrics
    assert not client.list_artifacts(run.info.run_id, "mlops-ci")


def _config(tmp_path: Path, validate_section: str) -> Path:
    from tests.helpers import EXAMPLE

    text = (EXAMPLE / "mlops-ci.yaml").read_text()
    head = text.split("\nvalidate:\n")[0]
    path = tmp_path / f"config-{abs(hash(validate_section))}.yaml"
    path.write_text(
        f"{head}\nvalidate:\n{validate_section}".replace(
            "holdout: data/holdout.csv", f"holdout: {EXAMPLE / 'data' / 'holdout.csv'}"
        )
    )
    return path


FRAGILE = '''
import os
import signal
import time

import mlflow
import numpy as np


class Fragile(mlflow.pyfunc.PythonModel):
    """Answers normal batches, hangs on missing values and crashes on an empty batch."""

    def predict(self, context, model_input, params=None):
        if len(model_input) == 0:
            os.kill(os.getpid(), signal.SIGSEGV)
        if model_input.isna().any().any():
            time.sleep(3600)
        return np.array(["<=50K"] * len(model_input), dtype=object)


mlflow.models.set_model(Fragile())
'''


def test_a_crash_or_a_hang_on_a_malformed_batch_fails_robustness(example_project, tmp_path):
    import mlflow.pyfunc

    code = tmp_path / "fragile.py"
    code.write_text(FRAGILE)
    model = tmp_path / "fragile-model"
    mlflow.pyfunc.save_model(str(model), python_model=str(code))
    outcome = run_cli(
        [
            "validate",
            "--candidate",
            str(model),
            "--baseline",
            "none",
            "--robustness-timeout",
            "3",
            "--no-record",
        ],
        cwd=example_project,
        env=cli_env(),
    )
    assert outcome.returncode == 1, outcome.stderr + outcome.stdout
    checks = checks_of(result_of(example_project))
    assert checks["robustness: nan"]["status"] == "failed"
    assert "hang: no answer within 3 s" in checks["robustness: nan"]["message"]
    assert checks["robustness: empty"]["status"] == "failed"
    assert "crash: the model process was killed by SIGSEGV" in checks["robustness: empty"]["message"]
    for handled in ("wrong-dtype", "missing-column", "extra-column"):
        assert checks[f"robustness: {handled}"]["status"] == "passed", checks[f"robustness: {handled}"]
    assert "no baseline" in result_of(example_project)["summary"]
