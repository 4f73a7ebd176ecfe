"""Small utilities shared by the tests: free ports, waiting for HTTP, running the CLI."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "census-income"


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
