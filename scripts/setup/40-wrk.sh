# Sourced by scripts/test: wrk, the native load generator `mlops-ci profile` prefers when it
# is on PATH (the asyncio generator is the fallback; the tests run both). Idempotent.
if ! command -v wrk >/dev/null 2>&1; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing wrk (apt)"
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends wrk >/dev/null 2>&1; then
      apt-get update -qq >/dev/null 2>&1 || true
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends wrk >/dev/null \
        || echo "warning: apt-get could not install wrk; profile tests use the asyncio generator only" >&2
    fi
  else
    echo "warning: wrk is missing and there is no root apt-get; profile tests use the asyncio generator only" >&2
  fi
fi
