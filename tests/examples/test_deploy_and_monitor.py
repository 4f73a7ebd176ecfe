"""The deploy-and-monitor example pipelines: valid against the GitHub workflow and GitLab
CI schemas (offline, check-jsonschema's vendored schemas), approvals where production is
deployed, and no expression interpolated into a script."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.helpers import REPO

EXAMPLE = REPO / "examples" / "deploy-and-monitor"
WORKFLOWS = sorted((EXAMPLE / ".github" / "workflows").glob("*.yml"))


def check_jsonschema(schema: str, *files: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", schema, *map(str, files)],
        capture_output=True,
        text=True,
    )


def test_workflows_and_pipeline_are_valid():
    done = check_jsonschema("vendor.github-workflows", *WORKFLOWS)
    assert done.returncode == 0, done.stdout + done.stderr
    done = check_jsonschema("vendor.gitlab-ci", EXAMPLE / ".gitlab-ci.yml")
    assert done.returncode == 0, done.stdout + done.stderr


def test_production_needs_an_environment_and_one_deployment_at_a_time():
    deploy = yaml.safe_load((EXAMPLE / ".github" / "workflows" / "deploy.yml").read_text())
    assert deploy["jobs"]["production"]["environment"]["name"] == "production"
    assert deploy["jobs"]["production"]["needs"] == "staging"
    assert deploy["concurrency"]["cancel-in-progress"] is False
    gitlab = yaml.safe_load((EXAMPLE / ".gitlab-ci.yml").read_text())
    job = gitlab["deploy-production"]
    assert job["environment"]["name"] == "production" and job["resource_group"] == "production"


def test_retrain_workflow_declares_what_drift_sends():
    from mlops_ci.platforms.base import RetrainRequest

    train = yaml.safe_load((EXAMPLE / ".github" / "workflows" / "retrain.yml").read_text())
    declared = set(train[True]["workflow_dispatch"]["inputs"])  # YAML reads `on` as True
    # monitor.yml adds where the window's data is (--retrain-input data=...).
    sent = RetrainRequest(
        "workflow_dispatch", "drift in age", window_start="a", window_end="b", extra={"data": "s3://b/k"}
    ).inputs()
    assert set(sent) == declared
    assert '--retrain-input "data=' in (EXAMPLE / ".github" / "workflows" / "monitor.yml").read_text()


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_no_expression_inside_run_scripts(path):
    workflow = yaml.safe_load(path.read_text())
    for job in workflow["jobs"].values():
        for step in job["steps"]:
            assert not re.search(r"\$\{\{", step.get("run", "")), (path.name, step)


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_workflows_pass_actionlint(path):
    from tests.test_ci_files import actionlint

    done = actionlint(path)
    assert done.returncode == 0, done.stdout + done.stderr
