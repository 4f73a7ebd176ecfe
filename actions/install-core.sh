#!/usr/bin/env bash
# Install mlops-ci from this checkout of the actions (so the action's tag is the version that
# runs) into a virtualenv of its own under $RUNNER_TEMP, and print its path as the step
# output `mlops-ci`. The job's Python, which runs the user's training command, is not touched.
#
# The virtualenv is keyed by the Python version and a hash of the package source: every
# mlops-ci action in a job reuses it, and a changed checkout gets a fresh one.
#
# Environment: MLOPS_CI_PYTHON (interpreter for the virtualenv), MLOPS_CI_UV (uv requirement),
# RUNNER_TEMP, GITHUB_OUTPUT.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
python=${MLOPS_CI_PYTHON:-python3}
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
  echo "::error title=mlops-ci::mlops-ci needs Python 3.10 or newer; the 'python' input names '$python'"
  exit 2
fi

version=$("$python" -c 'import platform; print(platform.python_version())')
source_hash=$(
  cd "$root" &&
    find pyproject.toml mlops_ci -type f ! -path '*/__pycache__/*' ! -name '*.pyc' -print0 |
    LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum | cut -c1-16
)
venv="${RUNNER_TEMP:-${TMPDIR:-/tmp}}/mlops-ci/py${version}-${source_hash}"

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
"$venv/bin/python" -c 'import mlops_ci, sys; print(f"mlops-ci {mlops_ci.__version__} (Python {sys.version.split()[0]})")'
echo "mlops-ci=$venv/bin/mlops-ci" >> "${GITHUB_OUTPUT:-/dev/stdout}"
