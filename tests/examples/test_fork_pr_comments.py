"""The example for pull requests from forks: valid workflows in which no job both runs the
pull request's code and holds a write token, whose unverified stage never runs it, and whose
trusted stage is started by a maintainer."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import yaml

from tests.helpers import REPO

EXAMPLE = REPO / "examples" / "github-fork-pr-comments" / ".github" / "workflows"
STAGE_1 = EXAMPLE / "mlops-ci-pr.yml"
STAGE_2 = EXAMPLE / "mlops-ci-comment.yml"
STAGE_3 = EXAMPLE / "mlops-ci-trusted.yml"


def load(path: Path) -> dict:
    # PyYAML reads the key `on` as True.
    data = yaml.safe_load(path.read_text())
    data["on"] = data.pop(True)
    return data


def steps(workflow: dict) -> list[dict]:
    """Every step of every job, in order."""
    return [step for job in workflow["jobs"].values() for step in job["steps"]]


def test_workflows_match_githubs_schema():
    check = Path(sys.executable).parent / "check-jsonschema"
    done = subprocess.run(
        [str(check), "--builtin-schema", "vendor.github-workflows", str(STAGE_1), str(STAGE_2), str(STAGE_3)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_stages_fit_together():
    first, second = load(STAGE_1), load(STAGE_2)
    assert second["on"]["workflow_run"]["workflows"] == [first["name"]]
    # Stage 2 shows what stage 1's gate job (which runs no pull-request code) uploaded.
    gate_steps = first["jobs"]["gate"]["steps"]
    upload = next(s for s in reversed(gate_steps) if s.get("uses", "").startswith("actions/upload-artifact@"))
    download = next(s for s in steps(second) if s.get("uses", "").startswith("actions/download-artifact@"))
    assert upload["with"]["name"] == download["with"]["name"]
    assert download["with"]["run-id"] == "${{ github.event.workflow_run.id }}"
    assert ".mlops-ci/*.json" in upload["with"]["path"] and ".mlops-ci/*.md" in upload["with"]["path"]
    gate = next(s for s in steps(second) if "mlops-ci gate" in s.get("run", ""))
    assert f"--out-dir {download['with']['path']}" in gate["run"]
    assert gate["env"]["GITHUB_TOKEN"] == "${{ github.token }}"
    assert "--untrusted-results" in gate["run"]
    # Stage 1's gate runs even when an earlier step failed, so the verdict is always there.
    assert first["jobs"]["gate"]["if"] == "${{ !cancelled() }}"


def test_the_trusted_stage_never_runs_pull_request_code():
    second = load(STAGE_2)
    assert second["permissions"] == {}
    assert second["jobs"]["comment"]["permissions"] == {
        "contents": "read",
        "actions": "read",
        "pull-requests": "write",
        "checks": "write",
    }
    for step in steps(second):
        if step.get("uses", "").startswith("actions/checkout@"):
            assert "ref" not in (step.get("with") or {}) and "repository" not in (step.get("with") or {})
        run = step.get("run", "")
        assert "${{" not in run  # nothing from the event is interpolated into a shell
        assert not re.search(r"\b(bash|sh|python|source|\.)\s+pr-results", run)
        assert "pip install" not in run or run.strip() == "pip install mlops-ci"
