# Sourced by scripts/test: wrk, the native load generator `mlops-ci profile` prefers when it
# is on PATH (the asyncio generator is the fallback; the tests run both). Idempotent.
# Under CI=true a wrk that cannot be installed stops the run (its tests would fail anyway,
# later and less clearly); elsewhere a warning, and the wrk tests skip.
if ! command -v wrk >/dev/null 2>&1; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing wrk (apt)"
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends wrk >/dev/null 2>&1; then
      apt-get update -qq >/dev/null 2>&1 || true
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends wrk >/dev/null 2>&1 || true
    fi
  fi
  if ! command -v wrk >/dev/null 2>&1; then
    case "${CI:-}" in
      "" | 0 | false | no)
        echo "warning: wrk is missing and could not be installed (needs root apt-get); the wrk tests skip" >&2
        ;;
      *)
        echo "error: CI needs wrk (apt-get install wrk); it is missing and could not be installed" >&2
        # Sourced (scripts/test): return fails the sourcing script under set -e; run alone: exit.
        return 1 2>/dev/null || exit 1
        ;;
    esac
  fi
fi
