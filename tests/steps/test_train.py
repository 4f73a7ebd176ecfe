"""`mlops-ci train` end to end, against a real MLflow server process: reuse, new runs on
changed inputs, unmodified autolog scripts, failures, bad input and an unreachable server."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.helpers import cli_env, run_cli
from tests.steps.tracking_helpers import assert_bad_input, outputs, runs_of

pytestmark = pytest.mark.slow


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
    (["train", "--window", "2026-11-01/2026-12-01"], None, "--window selects rows of --data-ref"),
    (["train", "--data-ref", "data/nothing.csv"], None, "data data/nothing.csv is not a file"),
    (
        ["train", "--data-ref", "data/train.csv", "--window", "2026-11-01"],
        None,
        "--window: a window is START/END",
    ),
    (
        ["train", "--data-ref", "data/train.csv", "--window", "2026-11-01/", "--time-column", "at"],
        None,
        "train.csv has no time column 'at'",
    ),
]


@pytest.mark.parametrize(("args", "config", "message"), BAD_INPUTS)
def test_bad_input_exits_2_with_one_line_and_creates_nothing(
    example_project, env, client, unique_name, args, config, message
):
    assert_bad_input(example_project, env, client, unique_name, args, config, message)


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


def test_data_ref_trains_on_the_window_and_leaves_the_holdout_for_validate(
    example_project, env, client, unique_name, tmp_path
):
    """Rows of a new file with times: the command reads the window's older 80 % through
    {data}; the newest 20 % are the holdout validate scores by default."""
    import pandas as pd

    from mlops_ci.steps.validate import _retraining_holdout

    data = pd.read_csv(example_project / "data" / "holdout.csv", keep_default_na=False).head(1000)
    data["at"] = [f"2026-11-{1 + i % 30:02d}T{i % 24:02d}:00:00Z" for i in range(len(data))]
    new = tmp_path / "new.csv"
    data.to_csv(new, index=False)
    args = [
        "train",
        "--data-ref",
        str(new),
        "--window",
        "2026-11-01/2026-11-20T23:59:59Z",
        "--time-column",
        "at",
    ]
    done = run_cli(args, cwd=example_project, env=env)
    assert done.returncode == 0, done.stderr
    out = outputs(example_project, "train")
    inside = sum("2026-11-01" <= at[:10] <= "2026-11-20" for at in data["at"])
    held = -(-inside * 2 // 10)  # the newest 20 %, rounded up
    assert f"trained logistic-regression on {inside - held} rows" in done.stdout + done.stderr
    holdout = example_project / out["holdout-path"]
    assert len(pd.read_csv(holdout)) == held and out["window"] == "2026-11-01/2026-11-20T23:59:59Z"
    tags = client.get_run(out["run-id"]).data.tags
    assert tags["mlops_ci.data_ref"] == str(new) and tags["mlops_ci.data_snapshot"] == str(new)
    assert tags["mlops_ci.data_ref.sha256"] == out["data-sha256"]

    class Context:  # what validate's default reads of a StepContext
        project_dir = example_project

        @staticmethod
        def earlier_output(step, key, statuses=()):
            return out.get(key) if step == "train" else None

    assert _retraining_holdout(Context()) == holdout
    # The same data again: the same split, and the run is reused.
    again = run_cli(args, cwd=example_project, env=env)
    assert again.returncode == 0 and outputs(example_project, "train")["reused"] == "true"
    assert outputs(example_project, "train")["holdout-path"] == out["holdout-path"]
