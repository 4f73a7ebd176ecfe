"""Small utilities shared by the tests: free ports, waiting for HTTP, running the CLI,
and the one way a test asks for a tool or an optional package (a skip on a laptop, a
failure under CI=true)."""

from __future__ import annotations

import importlib
import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import NoReturn

import pytest
import requests

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "census-income"


def in_ci() -> bool:
    """CI=true (GitHub, GitLab and .ci/run set it): nothing the suite needs may be missing."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def missing(what: str, *, install: str) -> NoReturn:
    """A test cannot run because ``what`` is missing: under CI a failure (a test that
    silently disappears proves nothing), elsewhere a skip that says how to install it."""
    if in_ci():
        pytest.fail(f"CI needs {what}: {install}", pytrace=False)
    pytest.skip(f"{what} is missing ({install})")


def require_tool(name: str, *, install: str, path: str | None = None) -> str:
    """The full path of executable ``name`` (on ``path``, default $PATH), or fail/skip."""
    found = shutil.which(name, path=path)
    if found is None:
        missing(f"the `{name}` executable", install=install)
    return found


def require_module(name: str, *, install: str) -> ModuleType:
    """Import optional package ``name`` (the CI-aware pytest.importorskip)."""
    try:
        return importlib.import_module(name)
    except ImportError as error:
        missing(f"the Python package {name} ({error})", install=install)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_http(url: str, *, timeout_s: float, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process serving {url} exited with {process.returncode}")
        try:
            if requests.get(url, timeout=2).status_code < 500:
                return
        except requests.RequestException:
            pass
        time.sleep(0.25)
    raise TimeoutError(f"{url} did not answer within {timeout_s} s")


def cli_env(**extra: str) -> dict[str, str]:
    """The environment for a CLI subprocess: CI variables of the machine running the tests
    removed, this interpreter's folder first on PATH (so `python` in a training command has
    mlflow and scikit-learn)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("MLOPS_CI_", "GITHUB_", "GITLAB_", "CI_", "MLFLOW_", "RUNNER_"))
    }
    env.pop("CI", None)
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    env.update(extra)
    return env


@dataclass
class CliRun:
    returncode: int
    stdout: str
    stderr: str
    elapsed_s: float

    @property
    def error_lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.startswith("mlops-ci")]


def run_cli(args: list[str], *, cwd: Path, env: dict[str, str], timeout: float = 600) -> CliRun:
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "mlops_ci", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return CliRun(done.returncode, done.stdout, done.stderr, time.monotonic() - started)


# The offline base image of the serving images the tests build (scripts/setup/20-docker.sh).
BASE_IMAGE = os.environ.get("MLOPS_CI_TEST_BASE_IMAGE", "localhost/mlops-ci-test-base:bookworm")
