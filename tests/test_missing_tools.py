"""Nothing disappears silently: under CI=true a missing tool or optional package is a
failure (tests/helpers.py's require_tool / require_module), scripts/setup/40-wrk.sh stops
the run when wrk cannot be installed, and Hypothesis runs its derandomised "ci" profile."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO, require_module, require_tool

SETUP_WRK = REPO / "scripts" / "setup" / "40-wrk.sh"


@pytest.mark.parametrize(("ci", "outcome"), [("true", pytest.fail.Exception), ("", pytest.skip.Exception)])
def test_a_missing_tool_fails_under_ci_and_skips_elsewhere(monkeypatch, tmp_path, ci, outcome):
    monkeypatch.setenv("CI", ci)
    with pytest.raises(outcome, match="`wrk` executable") as raised:
        require_tool("wrk", install="apt-get install wrk", path=str(tmp_path))
    assert "apt-get install wrk" in str(raised.value)


@pytest.mark.parametrize(
    ("ci", "outcome"), [("true", pytest.fail.Exception), ("false", pytest.skip.Exception)]
)
def test_a_missing_package_fails_under_ci_and_skips_elsewhere(monkeypatch, ci, outcome):
    monkeypatch.setenv("CI", ci)
    with pytest.raises(outcome, match="no_such_package_18"):
        require_module("no_such_package_18", install="pip install it")


def test_a_present_tool_and_package_are_returned(monkeypatch, tmp_path):
    monkeypatch.setenv("CI", "true")
    tool = tmp_path / "wrk"
    tool.write_text("#!/bin/sh\n")
    tool.chmod(0o755)
    assert require_tool("wrk", install="-", path=str(tmp_path)) == str(tool)
    assert require_module("json", install="-").dumps([]) == "[]"


def bin_without_wrk(tmp_path: Path) -> str:
    """A PATH with what the script calls (id) and neither wrk nor apt-get."""
    folder = tmp_path / "bin"
    folder.mkdir()
    for tool in ("id",):
        (folder / tool).symlink_to(
            subprocess.run(["which", tool], capture_output=True, text=True).stdout.strip()
        )
    return str(folder)


@pytest.mark.parametrize("how", ["run", "sourced by a set -e script (scripts/test)"])
def test_ci_stops_when_wrk_cannot_be_installed(tmp_path, how):
    env = {"PATH": bin_without_wrk(tmp_path), "CI": "true"}
    if how == "run":
        command = ["/bin/bash", str(SETUP_WRK)]
    else:
        command = ["/bin/bash", "-c", f"set -euo pipefail; source {SETUP_WRK}; echo the tests would run"]
    ran = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert ran.returncode != 0
    assert "error: CI needs wrk" in ran.stderr and "the tests would run" not in ran.stdout


def test_outside_ci_a_missing_wrk_is_a_warning(tmp_path):
    env = {"PATH": bin_without_wrk(tmp_path)}
    command = ["/bin/bash", "-c", f"set -euo pipefail; source {SETUP_WRK}; echo the tests would run"]
    ran = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert ran.returncode == 0 and "the tests would run" in ran.stdout
    assert "warning: wrk is missing" in ran.stderr


def test_with_wrk_on_path_the_script_does_nothing(tmp_path):
    folder = Path(bin_without_wrk(tmp_path))
    (folder / "wrk").write_text("#!/bin/sh\n")
    (folder / "wrk").chmod(0o755)
    ran = subprocess.run(
        ["/bin/bash", str(SETUP_WRK)], env={"PATH": str(folder), "CI": "true"}, capture_output=True, text=True
    )
    assert (ran.returncode, ran.stdout, ran.stderr) == (0, "", "")


PROFILE = "from hypothesis import settings; import tests.conftest; d = settings.default; print(d.derandomize, d.max_examples)"


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"CI": "true"}, "True 250"),
        ({"CI": "true", "HYPOTHESIS_PROFILE": "thorough"}, "False 5000"),
        ({}, "False 250"),
    ],
)
def test_hypothesis_profile_follows_ci(env, expected):
    clean = {k: v for k, v in os.environ.items() if k not in ("CI", "HYPOTHESIS_PROFILE")}
    ran = subprocess.run(
        [sys.executable, "-c", PROFILE],
        env={**clean, **env},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert ran.stdout.strip() == expected, ran.stderr[-2000:]
