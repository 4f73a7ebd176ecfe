"""The closed loop, for real (tests/pipelines/test_retrain_loop_*.py, one per platform so the
two slow runs go to different workers): a drift check on a shifted window dispatches a retraining with
that window and the data's location (recorded by the GitHub/GitLab stand-in,
tests/fake_forge.py); the dispatched pipeline of examples/deploy-and-monitor runs under act
(GitHub) and gitlab-ci-local (GitLab) with exactly those inputs: train reads the new data
cut to the window, validate blocks a worse model and passes a good one on the window's
holdout, and deploy promotes the good one to `champion`.

The new data is a seeded transform of the census data (see ``new_window_data``), generated
here, never committed. Each test starts from a champion trained on the example's own
train.csv, then runs the retraining twice: with a worse model (two features), then with the
example's model. Slow: two pipeline runs of a few minutes each per platform.
"""

from __future__ import annotations

import hashlib
import math
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from tests.helpers import EXAMPLE, REPO, cli_env, run_cli
from tests.pipelines.runs import (
    commit_all,
    example_copy,
)

LOOP = REPO / "examples" / "deploy-and-monitor"
FORGE_REPO = "acme/census-income"
GITHUB_TOKEN = "ghs_RetrainLoopDispatchT0ken1a2b3c"
TRIGGER_TOKEN = "glptt-RetrainLoopTriggerT0ken4d5e6f"
GITLAB_PROJECT_ID = "31"
WORSE = "age,hours-per-week"
# The serving window drift looks at, inside the new data's two months.
SERVED = ("2026-11-01", "2026-12-01")


def new_window_data(path: Path) -> Path:
    """The census population a while later, by a seeded transform of adult.csv: 12,000
    rows drawn with replacement (seed 2026), everyone 5 years older (at most 90), and wages
    risen so that everyone with a bachelor's degree or more (education-num >= 13) now earns
    >50K; each row gets a time uniformly at random (seed 2026) between 2026-10-15 and
    2026-12-15 in a `time` column. Age drifts and the champion, which never saw the new
    relation, loses accuracy (about 0.79 on the window's holdout, under the 0.80 floor); the
    example's model retrained on the window reaches about 0.89, a two-feature one 0.63."""
    rng = np.random.default_rng(2026)
    data = pd.read_csv(EXAMPLE / "data" / "adult.csv", keep_default_na=False)
    data = data.sample(n=12000, replace=True, random_state=2026).reset_index(drop=True)
    data["age"] = (data["age"] + 5).clip(upper=90)
    data.loc[data["education-num"] >= 13, "class"] = ">50K"
    seconds = rng.integers(0, 61 * 86400, len(data))
    times = pd.Timestamp("2026-10-15", tz="UTC") + pd.to_timedelta(seconds, unit="s")
    data["time"] = times.strftime("%Y-%m-%dT%H:%M:%SZ")
    data.to_csv(path, index=False)
    return path


def served_rows(new_data: Path, path: Path) -> Path:
    """What the serving containers logged in the served window: the new data's rows of it."""
    data = pd.read_csv(new_data, keep_default_na=False)
    data[(data["time"] >= SERVED[0]) & (data["time"] < SERVED[1])].to_csv(path, index=False)
    return path


def loop_project(tmp_path: Path, name: str) -> Path:
    """The census example with the deploy-and-monitor pipelines, as its own repository."""
    project = example_copy(tmp_path, name)
    shutil.copy2(LOOP / ".github" / "workflows" / "retrain.yml", project / ".github" / "workflows")
    shutil.copy2(LOOP / ".gitlab-ci.yml", project / ".gitlab-ci.yml")
    return commit_all(project)


def set_features(project: Path, features: str) -> None:
    """A commit that changes the model's features (the worse model, and back)."""
    config = project / "mlops-ci.yaml"
    settings = yaml.safe_load(config.read_text())
    settings["train"]["params"]["features"] = features
    config.write_text(yaml.safe_dump(settings, sort_keys=False))
    git = ["git", "-c", "user.name=Test", "-c", "user.email=test@example.com"]
    subprocess.run([*git, "commit", "-q", "-am", f"features: {features}"], cwd=project, check=True)


def champion_from_the_old_data(project: Path, mlflow_server: str, client, name: str) -> None:
    """Version 1, trained on the example's train.csv, is the champion."""
    env = cli_env(MLFLOW_TRACKING_URI=mlflow_server)
    for step in ("train", "register"):
        done = run_cli([step, "--out-dir", str(project.parent / "champion")], cwd=project, env=env)
        assert done.returncode == 0, done.stderr
    client.set_registered_model_alias(name, "champion", "1")


def drift(project: Path, current: Path, env: dict[str, str], *retrain: str):
    """The scheduled drift check of monitor.yml / the drift job, on the served window."""
    args = ["drift", "--current", str(current), "--time-column", "time", "--reference", "data/train.csv"]
    args += ["--target", "class", "--ignore-columns", "time", "--retrain", *retrain]
    args += ["--out-dir", str(project.parent / "drift")]
    return run_cli(args, cwd=project, env=cli_env(**env))


def expected_holdout_rows(new_data: Path, start: str, end: str) -> int:
    """The split rule: rows with start <= time <= end, the newest 20 % (rounded up)."""
    times = pd.to_datetime(pd.read_csv(new_data, keep_default_na=False)["time"], utc=True)
    inside = ((times >= pd.Timestamp(start)) & (times <= pd.Timestamp(end))).sum()
    return math.ceil(inside * 0.2)


def assert_trained_on_the_window(client, train: dict, ref: str, window: str, new_data: Path) -> None:
    assert train["window"] == window
    assert train["holdout-path"].startswith(".mlops-ci/data/") and train["holdout-path"].endswith(
        "-holdout.csv"
    )
    sha256 = hashlib.sha256(new_data.read_bytes()).hexdigest()
    assert train["data-sha256"] == sha256
    tags = client.get_run(train["run-id"]).data.tags
    assert tags["mlops_ci.data_ref"] == ref and tags["mlops_ci.data_ref.sha256"] == sha256
    assert tags["mlops_ci.data_window"] == window and tags["mlops_ci.data_snapshot"] == train["data-snapshot"]
