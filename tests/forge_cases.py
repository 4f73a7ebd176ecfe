"""The cases the forge stand-in (tests/fake_forge.py) is used with: fixture step results,
tokens, the CI environment variables each platform sets, and the in-process gate runner.
The fixtures themselves (``forge``, ``gate``) are in tests/conftest.py."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from mlops_ci.platforms.masking import clear_secrets
from tests.fake_forge import FakeForge

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "gate"
GOLDEN = Path(__file__).resolve().parent / "golden"
REPO = "acme/census-income"
SHA = "9f2c1ab5e0d14c3b8a7f6e5d4c3b2a1908f7e6d5"
PIPELINE_URL = "https://github.com/acme/census-income/actions/runs/7712345678"
# Distinctive, so that a leak anywhere is found by a plain substring search.
WRITE_TOKEN = "ghs_W1iteT0kenZZ9q8r7s6t5u4v3w2x1y0"
READ_TOKEN = "ghs_ReadOnlyT0kenQQ1w2e3r4t5y6u7i8o9"
PAT_TOKEN = "ghp_PersonalT0kenKK5j4h3g2f1d0s9a8"
GITLAB_TOKEN = "glpat-GitLabT0kenMM7n6b5v4c3x2z1"
GITLAB_READ_TOKEN = "glpat-GitLabReadT0kenPP0o9i8u7y6"


def copy_case(case: str, out_dir: Path) -> Path:
    """The step results of a fixture case (pass, block, first-model) in a fresh out-dir."""
    shutil.copytree(FIXTURES / case, out_dir, dirs_exist_ok=True)
    return out_dir


def set_commit(out_dir: Path, commit: str) -> None:
    """Rewrite the results' commit, as a new push would."""
    for path in out_dir.glob("*.json"):
        data = json.loads(path.read_text())
        if data.get("schema") == "mlops-ci/step-result/v1" and data["step"] != "gate":
            data["context"]["commit"] = commit
            path.write_text(json.dumps(data, indent=2))


def github_env(
    forge: FakeForge,
    tmp_path: Path,
    *,
    token: str | None = WRITE_TOKEN,
    pr: int | None = 42,
    sha: str = SHA,
    run_id: str = "7712345678",
    fork: bool = False,
) -> dict[str, str]:
    """What GitHub Actions sets for a pull_request workflow (the event payload included)."""
    event = tmp_path / "event.json"
    payload: dict = {}
    if pr is not None:
        head_repo = {"full_name": ("someone/" if fork else "acme/") + "census-income", "fork": fork}
        payload["pull_request"] = {
            "number": pr,
            "head": {"sha": sha, "repo": head_repo},
            "base": {"repo": {"full_name": REPO}},
        }
    event.write_text(json.dumps(payload))
    env = {
        "GITHUB_ACTIONS": "true",
        "GITHUB_API_URL": forge.url,
        "GITHUB_SERVER_URL": "https://github.com",
        "GITHUB_REPOSITORY": REPO,
        "GITHUB_EVENT_PATH": str(event),
        "GITHUB_EVENT_NAME": "pull_request" if pr is not None else "push",
        "GITHUB_SHA": "1" * 40 if pr is not None else sha,
        "GITHUB_REF_NAME": "42/merge" if pr is not None else "main",
        "GITHUB_RUN_ID": run_id,
        "GITHUB_STEP_SUMMARY": str(tmp_path / "step-summary.md"),
        "GITHUB_OUTPUT": str(tmp_path / "github-output"),
    }
    if token:
        env["GITHUB_TOKEN"] = token
    return env


def gitlab_env(
    forge: FakeForge,
    *,
    token: str | None = GITLAB_TOKEN,
    iid: int | None = 5,
    sha: str = SHA,
    pipeline: str = "555",
) -> dict[str, str]:
    """What GitLab CI sets for a merge-request pipeline."""
    env = {
        "GITLAB_CI": "true",
        "CI_SERVER_URL": forge.url,
        "CI_API_V4_URL": forge.url + "/api/v4",
        "CI_PROJECT_ID": "17",
        "CI_PROJECT_PATH": REPO,
        "CI_PROJECT_URL": "https://gitlab.example/acme/census-income",
        "CI_COMMIT_SHA": sha,
        "CI_COMMIT_REF_NAME": "wider-features",
        "CI_PIPELINE_ID": pipeline,
        "CI_PIPELINE_URL": f"https://gitlab.example/acme/census-income/-/pipelines/{pipeline}",
        "CI_PIPELINE_SOURCE": "merge_request_event" if iid else "push",
        # Always present in a GitLab job, and never usable for notes.
        "CI_JOB_TOKEN": "jobtoken-SHOULD-NOT-BE-USED-123",
    }
    if iid is not None:
        env["CI_MERGE_REQUEST_IID"] = str(iid)
        env["CI_MERGE_REQUEST_PROJECT_ID"] = "17"
    if token:
        env["GITLAB_TOKEN"] = token
    return env


class Gate:
    """Runs `mlops-ci <args>` in this process (fast: no interpreter start per run) with
    exactly the given environment, and returns the exit code and what it printed."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, cwd: Path) -> None:
        self.monkeypatch = monkeypatch
        self.capsys = capsys
        self.cwd = cwd

    def __call__(self, args: list[str], env: dict[str, str]):
        import os

        from mlops_ci.cli import main
        from tests.helpers import cli_env

        for name in list(os.environ):
            self.monkeypatch.delenv(name)
        for name, value in {**cli_env(), **env}.items():
            self.monkeypatch.setenv(name, value)
        self.monkeypatch.chdir(self.cwd)
        self.capsys.readouterr()
        code = main(args)
        out, err = self.capsys.readouterr()
        clear_secrets()
        return Ran(code, out, err)


class Ran:
    def __init__(self, code: int, out: str, err: str) -> None:
        self.code, self.out, self.err = code, out, err

    def __repr__(self) -> str:
        return f"Ran(code={self.code}, out={self.out[-2000:]!r}, err={self.err[-2000:]!r})"
