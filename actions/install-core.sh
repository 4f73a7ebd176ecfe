#!/usr/bin/env bash
# Install mlops-ci from this checkout of the actions (so the action's tag is the version that
# runs) into a virtualenv of its own, and print its path as the step output `mlops-ci`. The
# job's Python, which runs the user's training command, is not touched.
#
# Trust: the virtualenv belongs to ONE job. A job that runs a pull request's code can write
# anything its user can write: the runner's tool cache, /tmp, ~/.cache, and a "per-job"
# folder of the runner too (it can make a leftover undeletable). So nothing that existed
# before this job is reused, and no hash manifest could help: a manifest kept where the job
# user can write is rewritten along with the files it lists. Instead:
#   - the first mlops-ci action of a job creates a new folder with `mktemp -d` (a random
#     name, created exclusively, mode 0700: nothing planted earlier can be it) and installs
#     into it;
#   - its path goes to $GITHUB_ENV under a name keyed by the interpreter and the package
#     source, which only later steps of THIS job see; the next actions of the job reuse it;
#   - uv installs without a shared cache (a cache a PR job can write is not trusted), unless
#     the workflow sets UV_CACHE_DIR itself (a runner whose jobs are all trusted);
#   - Python runs isolated (-I: no current directory or PYTHON* variables on sys.path) and uv
#     ignores configuration files (--no-config): the working directory is the repository
#     checkout, and a pull request could otherwise add `venv.py`, `pip/` or a `uv.toml` that
#     points at another package index.
# Steps later in one job trust what earlier steps of the same job did: a job that runs a
# pull request's training command holds no write token (see the example workflows). A
# self-hosted runner that runs pull requests and trusted jobs under one user cannot be made
# safe from here (the interpreter in its tool cache, ~/.bashrc, the runner itself are all
# writable): give pull requests ephemeral runners.
#
# Environment: MLOPS_CI_PYTHON (interpreter for the virtualenv), MLOPS_CI_UV (uv requirement),
# RUNNER_TEMP (else TMPDIR), GITHUB_ENV, GITHUB_OUTPUT, UV_CACHE_DIR (optional).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
python=${MLOPS_CI_PYTHON:-python3}
if ! "$python" -I -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
  # (the value is not echoed: a workflow command must not carry input text)
  echo "::error title=mlops-ci::mlops-ci needs Python 3.10 or newer; the interpreter of the 'python' input is missing or older"
  exit 2
fi

# The interpreter + the package source, hashed with Python itself (portable to macOS runners):
# the actions of one job that share both share the virtualenv.
key=$("$python" -I - "$root" <<'PY'
import hashlib, pathlib, sys

root = pathlib.Path(sys.argv[1])
files = [root / "pyproject.toml"]
files += [p for p in (root / "mlops_ci").rglob("*") if p.is_file() and "__pycache__" not in p.parts]
digest = hashlib.sha256(f"{sys.executable}\0{sys.version}\0".encode())
for path in sorted(files):
    digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
print(digest.hexdigest()[:16])
PY
)
# MLOPS_CI_VENV_<key>: set through GITHUB_ENV by an earlier step of this job, never inherited
# from another job.
variable="MLOPS_CI_VENV_$key"
venv=${!variable:-}
if [ -n "$venv" ] && [ -f "$venv/.installed" ] && [ -x "$venv/bin/mlops-ci" ]; then
  echo "mlops-ci is already installed in $venv by an earlier step of this job (reused)"
else
  parent="${RUNNER_TEMP:-${TMPDIR:-/tmp}}"
  mkdir -p "$parent"
  work=$(mktemp -d "$parent/mlops-ci-XXXXXXXXXX")
  venv="$work/venv"
  echo "::group::Installing mlops-ci from $root into $venv (this job's own)"
  "$python" -I -m venv "$venv"
  # uv installs the core's dependencies (MLflow, scikit-learn, ONNX, ...) in seconds, not minutes.
  "$venv/bin/python" -I -m pip install --quiet --disable-pip-version-check --no-cache-dir "${MLOPS_CI_UV:-uv>=0.4,<1}"
  "$venv/bin/uv" pip install --quiet --no-config --cache-dir "${UV_CACHE_DIR:-$work/uv-cache}" \
    --python "$venv/bin/python" "$root"
  rm -rf "$work/uv-cache"
  touch "$venv/.installed"
  echo "$variable=$venv" >> "${GITHUB_ENV:-/dev/null}"
  echo "::endgroup::"
fi
"$venv/bin/python" -I -c 'import mlops_ci, sys; print(f"mlops-ci {mlops_ci.__version__} (Python {sys.version.split()[0]})")'
echo "mlops-ci=$venv/bin/mlops-ci" >> "${GITHUB_OUTPUT:-/dev/stdout}"
