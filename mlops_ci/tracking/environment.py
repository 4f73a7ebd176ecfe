"""The software environment a model was trained in, recorded for reproducibility.

The training command may run in another Python than mlops-ci's own (the actions install
mlops-ci in a virtualenv of its own and leave the user's Python alone), so the environment
is read from the interpreter the command uses.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

# Runs inside the training interpreter; standard library only.
_PROBE = r"""
import importlib.metadata as m, json, platform, sys
seen = {}
for d in m.distributions():
    n = d.metadata["Name"]
    if n and n.lower() not in seen:
        seen[n.lower()] = n + "==" + d.version
print(json.dumps({"python": platform.python_version(), "executable": sys.executable,
                  "packages": [seen[k] for k in sorted(seen)]}))
"""


@dataclass(frozen=True)
class PythonEnvironment:
    python: str
    executable: str
    packages: tuple[str, ...]

    @property
    def requirements(self) -> str:
        return "\n".join(self.packages) + "\n"


def training_interpreter(argv: Sequence[str], env: Mapping[str, str]) -> str:
    """The Python the training command runs: its first word if that is a Python, else the
    ``python3``/``python`` its PATH finds, else our own."""
    first = os.path.basename(argv[0]) if argv else ""
    path = env.get("PATH")
    if first.startswith("python"):
        found = shutil.which(argv[0], path=path)
        if found:
            return found
    return shutil.which("python3", path=path) or shutil.which("python", path=path) or sys.executable


def describe_environment(interpreter: str) -> PythonEnvironment:
    try:
        completed = subprocess.run(
            [interpreter, "-c", _PROBE], capture_output=True, text=True, timeout=60, check=True
        )
        data = json.loads(completed.stdout)
        return PythonEnvironment(data["python"], data["executable"], tuple(data["packages"]))
    except (OSError, subprocess.SubprocessError, ValueError, KeyError):
        return PythonEnvironment(platform.python_version(), sys.executable, ())
