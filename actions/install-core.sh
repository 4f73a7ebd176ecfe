#!/usr/bin/env bash
# Install mlops-ci from this checkout of the actions (so the action's tag is the version that
# runs) into a virtualenv of its own, and print its path as the step output `mlops-ci`. The
# job's Python, which runs the user's training command, is not touched.
#
# The virtualenv lives in the runner's tool cache, keyed by the Python version and a hash of
# the package source: every mlops-ci action of a job reuses it, later jobs on a self-hosted
# runner too, and a changed checkout gets a fresh one.
#
# Environment: MLOPS_CI_PYTHON (interpreter for the virtualenv), MLOPS_CI_UV (uv requirement),
# RUNNER_TOOL_CACHE (else RUNNER_TEMP), GITHUB_OUTPUT.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
python=${MLOPS_CI_PYTHON:-python3}
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
  # (the value is not echoed: a workflow command must not carry input text)
  echo "::error title=mlops-ci::mlops-ci needs Python 3.10 or newer; the interpreter of the 'python' input is missing or older"
  exit 2
fi

# Python version + the package source, hashed with Python itself (portable to macOS runners).
key=$("$python" - "$root" <<'PY'
import hashlib, pathlib, platform, sys

root = pathlib.Path(sys.argv[1])
files = [root / "pyproject.toml"]
files += [p for p in (root / "mlops_ci").rglob("*") if p.is_file() and "__pycache__" not in p.parts]
digest = hashlib.sha256()
for path in sorted(files):
    digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
print(f"py{platform.python_version()}-{digest.hexdigest()[:16]}")
PY
)
venv="${RUNNER_TOOL_CACHE:-${RUNNER_TEMP:-${TMPDIR:-/tmp}}}/mlops-ci/$key"
mkdir -p "$(dirname "$venv")"
# Two jobs of one self-hosted runner machine may install the same key at once.
exec 9>"$venv.lock"
if command -v flock >/dev/null; then flock 9; fi
if [ -f "$venv/.installed" ] && [ -x "$venv/bin/mlops-ci" ]; then
  echo "mlops-ci is already installed in $venv (reused)"
else
  echo "::group::Installing mlops-ci from $root into $venv"
  rm -rf "$venv"
  "$python" -m venv "$venv"
  # uv installs the core's dependencies (MLflow, scikit-learn, ONNX, ...) in seconds, not minutes.
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "${MLOPS_CI_UV:-uv>=0.4,<1}"
  "$venv/bin/uv" pip install --quiet --python "$venv/bin/python" "$root"
  touch "$venv/.installed"
  echo "::endgroup::"
fi
exec 9>&-
"$venv/bin/python" -c 'import mlops_ci, sys; print(f"mlops-ci {mlops_ci.__version__} (Python {sys.version.split()[0]})")'
echo "mlops-ci=$venv/bin/mlops-ci" >> "${GITHUB_OUTPUT:-/dev/stdout}"
