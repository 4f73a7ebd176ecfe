# Sourced by scripts/test: a real Docker engine for the image tests, and an offline base
# image. Idempotent: installs docker.io/debootstrap only when missing, starts dockerd only
# when nothing answers on its socket, builds the base image only when it is missing.
# Set MLOPS_CI_SKIP_DOCKER=1 to skip (the image tests then skip, or fail under CI=true).
if [ "${MLOPS_CI_SKIP_DOCKER:-}" = "1" ]; then
  return 0
fi
MLOPS_CI_DOCKER_SOCK="${MLOPS_CI_DOCKER_SOCK:-/run/mlops-ci-docker.sock}"
MLOPS_CI_TEST_BASE_IMAGE="${MLOPS_CI_TEST_BASE_IMAGE:-localhost/mlops-ci-test-base:bookworm}"
export MLOPS_CI_TEST_BASE_IMAGE

_mlops_ci_docker_ok() { DOCKER_HOST="unix://$MLOPS_CI_DOCKER_SOCK" docker version >/dev/null 2>&1; }

# docker-registry and htpasswd (apache2-utils): a local registry with basic auth for the push test.
if ! command -v dockerd >/dev/null 2>&1 || ! command -v debootstrap >/dev/null 2>&1 || ! command -v docker >/dev/null 2>&1 \
  || ! command -v docker-registry >/dev/null 2>&1 || ! command -v htpasswd >/dev/null 2>&1; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing docker.io, debootstrap, docker-registry and apache2-utils (apt)"
    apt-get update -qq >/dev/null 2>&1 || true
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io debootstrap docker-registry apache2-utils >/dev/null \
      || echo "warning: apt-get could not install docker.io/debootstrap/docker-registry; image tests will not run" >&2
  else
    echo "warning: no dockerd and no root apt-get to install it; image tests will not run" >&2
  fi
fi

if command -v dockerd >/dev/null 2>&1 && ! _mlops_ci_docker_ok; then
  echo "starting dockerd on unix://$MLOPS_CI_DOCKER_SOCK"
  mkdir -p /var/lib/mlops-ci-docker
  setsid dockerd --data-root /var/lib/mlops-ci-docker --host "unix://$MLOPS_CI_DOCKER_SOCK" \
    --pidfile /run/mlops-ci-docker.pid >/var/log/mlops-ci-dockerd.log 2>&1 < /dev/null &
  for _ in $(seq 1 60); do
    _mlops_ci_docker_ok && break
    sleep 0.5
  done
  _mlops_ci_docker_ok || echo "warning: dockerd did not start; see /var/log/mlops-ci-dockerd.log" >&2
fi

if _mlops_ci_docker_ok; then
  export DOCKER_HOST="unix://$MLOPS_CI_DOCKER_SOCK"
  if ! docker image inspect "$MLOPS_CI_TEST_BASE_IMAGE" >/dev/null 2>&1; then
    # Docker Hub is unreachable here: a Debian bookworm base with python3, made from the
    # mirror apt already uses (about a minute).
    _mirror=$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | grep -v security | head -n1 || true)
    [ -n "$_mirror" ] || _mirror=$(awk '$1 == "deb" && $2 !~ /security/ {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
    _mirror=${_mirror:-http://deb.debian.org/debian}
    _rootfs=$(mktemp -d /tmp/mlops-ci-rootfs.XXXXXX)
    echo "creating $MLOPS_CI_TEST_BASE_IMAGE with debootstrap from $_mirror"
    if debootstrap --variant=minbase --include=python3 bookworm "$_rootfs" "$_mirror" >/tmp/mlops-ci-debootstrap.log 2>&1; then
      rm -rf "$_rootfs"/var/cache/apt/archives/*.deb "$_rootfs"/var/lib/apt/lists/* \
        "$_rootfs"/usr/share/doc "$_rootfs"/usr/share/man "$_rootfs"/usr/share/locale
      tar -C "$_rootfs" -c . | docker import - "$MLOPS_CI_TEST_BASE_IMAGE" >/dev/null \
        || echo "warning: docker import of the base image failed" >&2
    else
      echo "warning: debootstrap failed; see /tmp/mlops-ci-debootstrap.log" >&2
    fi
    rm -rf "$_rootfs"
  fi
fi
unset -f _mlops_ci_docker_ok
