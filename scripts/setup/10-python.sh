# Sourced by scripts/test and scripts/demo: a virtualenv in .venv with mlops-ci (editable)
# and the development tools. Re-installs only when pyproject.toml changed.
python_bin="${PYTHON:-python3}"
if ! "$python_bin" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
  echo "mlops-ci needs Python 3.10 or newer as '$python_bin' (set PYTHON=...)" >&2
  return 2
fi
if [ ! -x .venv/bin/python ]; then
  echo "::group::creating .venv" 2>/dev/null
  "$python_bin" -m venv .venv
fi
stamp=.venv/.mlops-ci-installed
wanted=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
  echo "installing mlops-ci and its dependencies into .venv (a few minutes the first time)"
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -e ".[dev]"
  echo "$wanted" > "$stamp"
fi
