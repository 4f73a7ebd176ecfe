"""Fixtures of the pipeline tests: this repository as a release tag holds it, act's cache,
the GitLab jobs' TMPDIR, and printing each run's step lines."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.fake_forge import FakeForge, Token
from tests.pipelines.loop import GITHUB_TOKEN as LOOP_GITHUB_TOKEN
from tests.pipelines.runs import export_repository


@pytest.fixture(scope="session")
def release(tmp_path_factory) -> Path:
    """This repository as a release tag holds it: what `@v1` / `ref: v1` resolve to."""
    return export_repository(tmp_path_factory.mktemp("release") / "mlops-ci")


@pytest.fixture(scope="session")
def act_cache(tmp_path_factory) -> Path:
    """act's cache, holding the runner's tool cache: one self-hosted runner for all tests."""
    return tmp_path_factory.mktemp("act-cache")


@pytest.fixture(scope="session")
def job_tmp(tmp_path_factory) -> Path:
    """TMPDIR of the GitLab jobs, shared like a shell runner's /tmp."""
    return tmp_path_factory.mktemp("gitlab-job-tmp")


# Log lines that show each step of a pipeline run: act's step results, gitlab-ci-local's job
# starts and results, and mlops-ci's one-line result of each step.
STEP_LINE = re.compile(
    r"(Success|Failure) - Main|Job (succeeded|failed)|starting shell|^ (PASS|FAIL) |\w+: (passed|failed|skipped|error) - "
)


@pytest.fixture
def show(request, capsys):
    """Print a run's step lines in the test output even when it passes (the whole log when
    it fails, through the assertion)."""
    # (under pytest-xdist a worker has no terminal: the lines go to the test's report, which
    # tests/conftest.py prints)
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")

    def show_run(run) -> None:
        lines = [line for line in run.log.splitlines() if STEP_LINE.search(line)]
        summary = [
            f"--- {request.node.name} ({run.elapsed_s:.0f} s)",
            *("    " + line.strip()[:200] for line in lines),
        ]
        if not hasattr(request.config, "workerinput"):  # not a pytest-xdist worker
            with capsys.disabled():
                reporter.write_line("")
                for line in summary:
                    reporter.write_line(line)
        else:
            request.node.user_properties.append(("pipeline steps", "\n".join(summary)))
        print(run.log)

    return show_run


@pytest.fixture
def forge():
    """The code host the loop's drift check dispatches the retraining to."""
    with FakeForge({LOOP_GITHUB_TOKEN: Token()}) as server:
        yield server
