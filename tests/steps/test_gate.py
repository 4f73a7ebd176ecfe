"""`mlops-ci gate` and `mlops-ci report` as a user runs them: exit codes, files, errors, and
tokens that never leak; and the two-stage workflow_run example for pull requests from forks
(valid workflows whose second stage never runs the pull request's code)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from mlops_ci.result import step_result_schema
from tests.forge_cases import (
    GITLAB_READ_TOKEN,
    GITLAB_TOKEN,
    READ_TOKEN,
    REPO,
    SHA,
    WRITE_TOKEN,
    copy_case,
    github_env,
    gitlab_env,
)
from tests.helpers import cli_env, run_cli


def test_gate_on_a_laptop_writes_the_comment_and_exits_by_the_verdict(tmp_path):
    out = copy_case("block", tmp_path / ".mlops-ci")
    ran = run_cli(["gate", "--require", "validate"], cwd=tmp_path, env=cli_env())
    assert ran.returncode == 1, ran.stderr
    assert ran.stdout.startswith("gate: failed - blocked: 2 blocking failures, 5 warnings")
    assert f"comment-path: {out / 'comment.md'}" in ran.stdout
    body = (out / "comment.md").read_text()
    assert body.startswith("<!-- mlops-ci:default -->\n")
    result = json.loads((out / "gate.json").read_text())
    jsonschema.validate(result, step_result_schema())
    assert result["outputs"]["verdict"] == "block" and result["outputs"]["comment-action"] == "saved"
    from mlops_ci.steps.gate import OUTPUTS

    assert set(result["outputs"]) <= {output.name for output in OUTPUTS}
    assert {c["name"]: c["status"] for c in result["checks"]}["validate"] == "failed"
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(("comment", "gate"))) == [
        "comment.json",
        "comment.md",
        "gate-junit.xml",
        "gate-metrics.txt",
        "gate.json",
    ]
    # `report` renders the same comment from the same results, and posts nothing.
    report = run_cli(["report", "--require", "validate"], cwd=tmp_path, env=cli_env())
    assert report.returncode == 0 and report.stdout == body

    copy_case("pass", out)
    (out / "gate.json").unlink()
    assert run_cli(["gate"], cwd=tmp_path, env=cli_env()).returncode == 0


def test_report_as_json_and_to_a_file(tmp_path):
    copy_case("block", tmp_path / ".mlops-ci")
    (tmp_path / "mlops-ci.yaml").write_text("gate:\n  warn: ['validate:log_loss*']\n  title: census-income\n")
    ran = run_cli(["report", "--format", "json"], cwd=tmp_path, env=cli_env())
    assert ran.returncode == 0, ran.stderr
    report = json.loads(ran.stdout)
    assert report["verdict"] == "block"
    assert [(f["step"], f["check"]) for f in report["blocking"]] == [("validate", "accuracy no-regression")]
    assert report["body"].splitlines()[2].startswith("### ❌ census-income: blocked")
    written = run_cli(
        ["report", "--output", "preview.md", "--max-length", "5000"], cwd=tmp_path, env=cli_env()
    )
    assert written.returncode == 0 and "written to preview.md" in written.stderr
    preview = (tmp_path / "preview.md").read_text()
    assert len(preview) <= 5000 and "details are left out here" in preview


@pytest.mark.parametrize(
    ("setup", "args", "message"),
    [
        (None, [], "no step results: "),
        ("empty", [], "no step results in "),
        ("invalid", [], "validate.json is not a valid step result (checks/0/status"),
        ("newer", [], "newer than this mlops-ci understands"),
        ("block", ["--comment-key", "bad key!"], "the comment key must be"),
        ("block", ["--block", "validate:"], "gate block pattern 'validate:' must be"),
        ("token-in-config", [], "github-token must not be in"),
        ("block", ["--retry-timeout", "-1"], "--retry-timeout must be at least 0"),
    ],
)
def test_bad_input_is_one_line_exit_2_before_anything_is_written(tmp_path, setup, args, message):
    out = tmp_path / ".mlops-ci"
    if setup == "empty":
        out.mkdir()
    elif setup in ("invalid", "newer", "block", "token-in-config"):
        copy_case("block", out)
    if setup == "invalid":
        data = json.loads((out / "validate.json").read_text())
        data["checks"][0]["status"] = "maybe"
        (out / "validate.json").write_text(json.dumps(data))
    if setup == "newer":
        data = json.loads((out / "train.json").read_text())
        data["schema"] = "mlops-ci/step-result/v2"
        (out / "train.json").write_text(json.dumps(data))
    if setup == "token-in-config":
        (tmp_path / "mlops-ci.yaml").write_text("gate:\n  github-token: ghp_oops\n")
    ran = run_cli(["gate", *args], cwd=tmp_path, env=cli_env())
    assert ran.returncode == 2, (ran.stdout, ran.stderr)
    assert len(ran.error_lines) == 1 and message in ran.error_lines[0], ran.stderr
    assert "Traceback" not in ran.stderr
    assert not (out / "comment.md").exists() and not (out / "gate.json").exists()


def test_bad_input_on_github_posts_nothing(forge, gate, tmp_path):
    forge.add_pull_request(REPO, 42, head_sha=SHA)
    out = copy_case("block", tmp_path / ".mlops-ci")
    (out / "profile.json").write_text("{not json")
    ran = gate(["gate", "--out-dir", str(out)], github_env(forge, tmp_path))
    assert ran.code == 2 and "cannot read step result" in ran.err
    assert forge.requests == [] and forge.github_comments(REPO, 42) == []


def test_parsing_gate_and_report_imports_no_heavy_library():
    code = (
        "import sys\nfrom mlops_ci.cli import build_parser\np = build_parser()\n"
        "p.parse_args(['gate']); p.parse_args(['report'])\n"
        "print(sorted(m for m in ('github', 'gitlab', 'jinja2', 'jsonschema', 'requests', 'mlflow') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def _everything_written(root: Path) -> str:
    return "\n".join(path.read_text(errors="replace") for path in root.rglob("*") if path.is_file())


@pytest.mark.parametrize(
    "scenario", ["github-ok", "github-read-only", "github-down", "gitlab-ok", "gitlab-read-only"]
)
def test_tokens_never_appear_in_logs_results_or_comments(forge, tmp_path, scenario):
    platform, _, case = scenario.partition("-")
    forge.add_pull_request(REPO, 42, head_sha=SHA)
    forge.add_merge_request("17", 5)
    copy_case("block", tmp_path / ".mlops-ci")
    if platform == "github":
        token = READ_TOKEN if case == "read-only" else WRITE_TOKEN
        env = github_env(forge, tmp_path, token=token)
    else:
        token = GITLAB_READ_TOKEN if case == "read-only" else GITLAB_TOKEN
        env = gitlab_env(forge, token=token)
    if case == "down":
        forge.fail("GET", r"/comments$", 500, body={"message": f"echo of the token: {token}"}, times=100)
    # --debug: the most verbose output there is; the token also passes as a flag.
    args = ["gate", "--debug", "--retry-timeout", "1", f"--{platform}-token", token]
    ran = run_cli(args, cwd=tmp_path, env=cli_env(**env))

    assert ran.returncode == (3 if case == "down" else 1), ran.stderr
    assert forge.calls(), "the scenario must reach the API"
    assert all(r.token == token for r in forge.calls())  # it was used...
    stdout = [line for line in ran.stdout.splitlines() if line != f"::add-mask::{token}"]
    assert token not in "\n".join(stdout) and token not in ran.stderr  # ...and never shown
    if platform == "github":
        assert f"::add-mask::{token}" in ran.stdout.splitlines()  # masked in the runner's log too
    assert token not in _everything_written(tmp_path)
    posted = [c["body"] for pr in forge.github_issues.values() for c in pr.comments]
    posted += [n["body"] for notes in forge.gitlab_mrs.values() for n in notes]
    posted += [json.dumps(c) for c in forge.check_runs + forge.statuses + forge.gitlab_statuses]
    assert all(token not in body for body in posted)
