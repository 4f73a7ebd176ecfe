"""`mlops-ci drift` end to end: files and request logs, the report, bad input, and the
retraining dispatch checked against the local GitHub/GitLab stand-in."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlops_ci.errors import ExternalServiceError, UsageError
from mlops_ci.runner import run_step
from tests.fake_forge import FakeForge, Token
from tests.helpers import EXAMPLE, cli_env, run_cli

HOLDOUT = EXAMPLE / "data" / "holdout.csv"
TRAIN = EXAMPLE / "data" / "train.csv"
REPO = "acme/census-income"
GITHUB_TOKEN = "ghs_DriftDispatchT0ken9x8c7v6b5n4m"
GITLAB_TOKEN = "glpat-DriftApiT0ken1q2w3e4r5t6y"
TRIGGER_TOKEN = "glptt-DriftTriggerT0ken0p9o8i7u6"


@pytest.fixture(scope="module")
def shifted(tmp_path_factory) -> Path:
    """The holdout with age moved by 5 years and a workclass the model never saw."""
    data = pd.read_csv(HOLDOUT, keep_default_na=False)
    data["age"] = data["age"] + 5
    data.loc[data.index[:300], "workclass"] = "Gig-economy"
    path = tmp_path_factory.mktemp("drift") / "shifted.csv"
    data.to_csv(path, index=False)
    return path


@pytest.fixture
def forge():
    with FakeForge({GITHUB_TOKEN: Token(), GITLAB_TOKEN: Token()}) as server:
        yield server


def drift(tmp_path: Path, env: dict[str, str] | None = None, **flags):
    flags = {
        key: (list(map(str, value)) if isinstance(value, list) else value) for key, value in flags.items()
    }
    return run_step("drift", flags, env=env or {}, cwd=tmp_path)


def github_env(forge: FakeForge, tmp_path: Path) -> dict[str, str]:
    return {
        "GITHUB_ACTIONS": "true",
        "GITHUB_REPOSITORY": REPO,
        "GITHUB_API_URL": forge.url,
        "GITHUB_TOKEN": GITHUB_TOKEN,
        "GITHUB_RUN_ID": "99",
        "GITHUB_OUTPUT": str(tmp_path / "github-output"),
        "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md"),
    }


def gitlab_env(forge: FakeForge) -> dict[str, str]:
    return {
        "GITLAB_CI": "true",
        "CI_SERVER_URL": forge.url,
        "CI_PROJECT_ID": "77",
        "CI_DEFAULT_BRANCH": "main",
        "CI_PIPELINE_ID": "500",
    }


def test_cli_finds_drift_and_writes_the_report(tmp_path, shifted):
    done = run_cli(
        ["drift", "--reference", str(TRAIN), "--current", str(shifted), "--target", "class"],
        cwd=tmp_path,
        env=cli_env(),
    )
    assert done.returncode == 1, done.stderr
    result = json.loads((tmp_path / ".mlops-ci" / "drift.json").read_text())
    assert result["outputs"]["drift"] == "true"
    assert result["outputs"]["drifted-features"] == "age,workclass"
    report = json.loads((tmp_path / ".mlops-ci" / "drift" / "drift-report.json").read_text())
    workclass = next(f for f in report["features"] if f["feature"] == "workclass")
    assert workclass["unseen_categories"] == ["Gig-economy"] and workclass["unseen_share"] > 0.04
    assert report["correction"] == "benjamini-hochberg" and report["features_tested"] == 14
    markdown = (tmp_path / ".mlops-ci" / "drift" / "drift-report.md").read_text()
    assert "❌ Drift: drift in 2 of 14 features: age, workclass" in markdown and "`Gig-economy`" in markdown
    assert (tmp_path / ".mlops-ci" / "drift" / "drift-report.png").read_bytes()[:4] == b"\x89PNG"


def test_cli_bad_input_exits_2_with_one_line(tmp_path):
    other = tmp_path / "other.csv"
    pd.read_csv(HOLDOUT, keep_default_na=False).drop(columns=["age"]).assign(extra=1).to_csv(
        other, index=False
    )
    done = run_cli(
        ["drift", "--reference", str(TRAIN), "--current", str(other), "--target", "class"],
        cwd=tmp_path,
        env=cli_env(),
    )
    assert done.returncode == 2
    assert done.error_lines == [
        "mlops-ci drift: error: reference and current data have different columns (missing from the current "
        "data: age; not in the reference: extra); pass --features to compare a subset, or --ignore-columns"
    ]
    assert not (tmp_path / ".mlops-ci" / "drift.json").exists()
    done = run_cli(
        ["drift", "--reference", str(TRAIN), "--current", "nowhere.csv"], cwd=tmp_path, env=cli_env()
    )
    assert done.returncode == 2 and "nowhere.csv does not exist" in done.error_lines[0]


def test_no_drift_on_a_sample_of_the_same_data(tmp_path):
    result = drift(tmp_path, reference=[TRAIN], current=[HOLDOUT], target="class")
    assert result.status == "passed" and result.outputs["drift"] == "false"
    assert result.outputs["retrain"] == "skipped"


def log_record(
    at: datetime, rows: dict[str, list], labels: list[str], probabilities: list[list[float]]
) -> str:
    return json.dumps(
        {
            "schema": "mlops-ci/request-log/v1",
            "time": at.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
            "model": "census-income",
            "version": "3",
            "endpoint": "v2_infer",
            "rows": len(labels),
            "latency_ms": 0.4,
            "inputs": rows,
            "outputs": {"label": labels, "probabilities": probabilities},
        }
    )


def test_request_logs_with_a_window_and_prediction_drift(tmp_path):
    rng = np.random.default_rng(0)
    now = datetime.now(timezone.utc)
    logs = tmp_path / "logs"
    logs.mkdir()

    def records(n: int, age_shift: float, positive: float, days_ago: float) -> list[str]:
        out = []
        for _ in range(n):
            ages = (rng.normal(40, 10, 4) + age_shift).round(1).tolist()
            labels = [">50K" if rng.random() < positive else "<=50K" for _ in range(4)]
            out.append(
                log_record(
                    now - timedelta(days=days_ago, minutes=float(rng.uniform(0, 600))),
                    {"age": ages, "sex": rng.choice(["Male", "Female"], 4).tolist()},
                    labels,
                    [[0.7, 0.3]] * 4,
                )
            )
        return out

    # Old traffic (outside a 7-day window) looks like the reference; this week's is shifted.
    (logs / "requests.jsonl.1").write_text("\n".join(records(100, 0, 0.25, 20)) + "\n")
    (logs / "requests.jsonl").write_text(
        "\n".join(records(100, 8, 0.6, 1)) + "\n" + '{"schema": "mlops-ci/req'
    )
    reference = tmp_path / "reference.parquet"
    pd.DataFrame(
        {
            "age": rng.normal(40, 10, 2000),
            "sex": rng.choice(["Male", "Female"], 2000),
            "prediction": np.where(rng.random(2000) < 0.25, ">50K", "<=50K"),
        }
    ).to_parquet(reference)

    result = drift(tmp_path, reference=[reference], current=[logs], window_days="7")
    assert result.outputs["current-rows"] == "400"  # 100 records x 4 rows, the old file's left out
    assert result.outputs["drifted-features"] == "age"
    assert result.outputs["prediction-drift"] == "true"
    start = datetime.fromisoformat(result.outputs["window-start"].replace("Z", "+00:00"))
    assert timedelta(days=6.9) < now - start < timedelta(days=7.1)

    everything = drift(tmp_path, reference=[reference], current=[logs])
    assert everything.outputs["current-rows"] == "800"

    (logs / "requests.jsonl.2").write_text('{"schema": "something/else"}\n{"x": 1}\n')
    with pytest.raises(UsageError, match=r"requests.jsonl.2 line 1 is not a mlops-ci request-log record"):
        drift(tmp_path, reference=[reference], current=[logs])


def test_window_needs_a_time_column_for_tables(tmp_path):
    with pytest.raises(UsageError, match="--window-days needs --time-column"):
        drift(tmp_path, reference=[TRAIN], current=[HOLDOUT], window_days="7")


def test_per_feature_thresholds_from_the_config(tmp_path, shifted):
    (tmp_path / "mlops-ci.yaml").write_text(
        "target: class\ndrift:\n  thresholds:\n    age: {psi: 5, wasserstein: 5}\n    workclass: {ignore: true}\n"
    )
    result = drift(tmp_path, reference=[TRAIN], current=[shifted])
    assert result.outputs["drift"] == "false"
    age = next(c for c in result.checks if c.name == "feature age")
    assert age.threshold == 5 and "significant but small" in age.message
    assert not any(c.name == "feature workclass" for c in result.checks)
    (tmp_path / "mlops-ci.yaml").write_text("drift:\n  thresholds:\n    age: {psi: -1}\n")
    with pytest.raises(UsageError, match="drift.thresholds.age.psi"):
        drift(tmp_path, reference=[TRAIN], current=[shifted])


def test_drift_dispatches_the_github_workflow_with_reason_and_window(tmp_path, shifted, forge):
    forge.add_workflow(REPO, "train.yml", inputs={"reason": True, "window-start": False, "window-end": False})
    result = drift(
        tmp_path,
        github_env(forge, tmp_path),
        reference=[TRAIN],
        current=[shifted],
        target="class",
        retrain=True,
        retrain_workflow="train.yml",
    )
    assert forge.problems == []
    assert result.status == "failed" and result.outputs["retrain"] == "triggered"
    (dispatch,) = forge.dispatches
    assert dispatch["workflow"] == "train.yml" and dispatch["ref"] == "main"
    assert dispatch["inputs"]["reason"] == "drift in age, workclass"
    call = forge.calls("POST", r"/dispatches$")[0]
    assert call.token == GITHUB_TOKEN
    written = (tmp_path / ".mlops-ci" / "drift.json").read_text() + (tmp_path / "github-output").read_text()
    assert GITHUB_TOKEN not in written and "retrain=triggered" in written


def test_undeclared_inputs_fail_the_check_not_the_report(tmp_path, shifted, forge):
    forge.add_workflow(REPO, "train.yml", inputs={"reason": True})
    when = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    data = pd.read_csv(shifted, keep_default_na=False).assign(at=when)
    current = tmp_path / "timed.csv"
    data.to_csv(current, index=False)
    result = drift(
        tmp_path,
        github_env(forge, tmp_path),
        reference=[TRAIN],
        current=[current],
        target="class",
        time_column="at",
        window_days="30",
        retrain=True,
        retrain_workflow="train.yml",
    )
    assert result.outputs["retrain"] == "failed" and result.status == "failed"
    check = next(c for c in result.checks if c.name == "retraining")
    assert "Unexpected inputs provided" in check.message and "must declare the inputs" in check.message
    assert forge.dispatches == [] and (tmp_path / ".mlops-ci" / "drift" / "drift-report.md").is_file()


def test_repository_dispatch_and_always(tmp_path, forge):
    result = drift(
        tmp_path,
        github_env(forge, tmp_path),
        reference=[TRAIN],
        current=[HOLDOUT],
        target="class",
        always=True,
        retrain_via="repository_dispatch",
        retrain_input=["cause=nightly"],
    )
    assert forge.problems == [] and result.status == "passed"
    (dispatch,) = forge.dispatches
    assert dispatch["event_type"] == "mlops-ci-retrain"
    assert dispatch["client_payload"]["reason"] == "scheduled retraining; no drift found"
    assert dispatch["client_payload"]["inputs"] == {"cause": "nightly"}


def test_no_drift_no_dispatch(tmp_path, forge):
    forge.add_workflow(REPO, "train.yml", inputs={"reason": True})
    result = drift(
        tmp_path,
        github_env(forge, tmp_path),
        reference=[TRAIN],
        current=[HOLDOUT],
        target="class",
        retrain=True,
        retrain_workflow="train.yml",
    )
    assert result.outputs["retrain"] == "not-needed" and forge.dispatches == []


def test_gitlab_pipeline_trigger_and_create_pipeline(tmp_path, shifted, forge):
    forge.add_trigger_token("77", TRIGGER_TOKEN)
    env = {**gitlab_env(forge), "GITLAB_TRIGGER_TOKEN": TRIGGER_TOKEN}
    result = drift(tmp_path, env, reference=[TRAIN], current=[shifted], target="class", retrain=True)
    assert forge.problems == [] and result.outputs["retrain"] == "triggered"
    (pipeline,) = forge.pipelines
    assert pipeline["source"] == "trigger" and pipeline["ref"] == "main"
    assert pipeline["variables"]["RETRAIN_REASON"] == "drift in age, workclass"
    assert pipeline["variables"]["RETRAIN_DRIFTED_FEATURES"] == "age,workclass"
    assert result.outputs["retrain-url"].endswith(f"/-/pipelines/{pipeline['id']}")
    assert TRIGGER_TOKEN not in (tmp_path / ".mlops-ci" / "drift.json").read_text()

    env = {**gitlab_env(forge), "GITLAB_TOKEN": GITLAB_TOKEN}
    drift(tmp_path, env, reference=[TRAIN], current=[shifted], target="class", retrain=True)
    assert forge.problems == [] and forge.pipelines[1]["source"] == "api"
    assert forge.pipelines[1]["variables"]["RETRAIN_REASON"] == "drift in age, workclass"


def test_retrain_settings_are_checked_before_reading_data(tmp_path):
    with pytest.raises(UsageError, match="need a code host"):
        drift(tmp_path, reference=[TRAIN], current=["missing.csv"], retrain=True)
    with pytest.raises(UsageError, match="needs --retrain-workflow"):
        drift(tmp_path, reference=[TRAIN], current=["missing.csv"], retrain=True, retrain_platform="github")
    with pytest.raises(UsageError, match="--retrain-via pipeline does not exist on github"):
        drift(
            tmp_path,
            reference=[TRAIN],
            current=["missing.csv"],
            always=True,
            retrain_platform="github",
            retrain_via="pipeline",
        )


def test_an_unreachable_forge_exits_3(tmp_path, shifted, forge):
    forge.add_workflow(REPO, "train.yml", inputs={"reason": True, "window-start": False, "window-end": False})
    forge.fail("POST", r"/dispatches$", 502, times=100)
    with pytest.raises(ExternalServiceError, match="GitHub API at .* failed to dispatch workflow train.yml"):
        drift(
            tmp_path,
            {**github_env(forge, tmp_path), "MLOPS_CI_RETRY_TIMEOUT": "1"},
            reference=[TRAIN],
            current=[shifted],
            target="class",
            retrain=True,
            retrain_workflow="train.yml",
        )
