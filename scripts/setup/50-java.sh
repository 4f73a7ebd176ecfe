# Sourced by scripts/test: Java 17 for pyspark (the Spark engine of `mlops-ci score`,
# tests/scoring/test_spark.py), from Debian's packages. Idempotent: installs only when no
# `java` answers.
if ! java -version >/dev/null 2>&1; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing openjdk-17-jre-headless (apt)"
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends openjdk-17-jre-headless >/dev/null 2>&1; then
      apt-get update -qq >/dev/null 2>&1 || true
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends openjdk-17-jre-headless >/dev/null \
        || echo "warning: apt-get could not install openjdk-17-jre-headless; the Spark tests will fail" >&2
    fi
  else
    echo "warning: java is missing and there is no root apt-get to install it; the Spark tests will fail" >&2
  fi
fi
