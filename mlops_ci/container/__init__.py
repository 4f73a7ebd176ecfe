"""Serving images: the hermetic build context, container engines (Docker through the
docker SDK, or daemonless buildah/podman), push, and running a container for a smoke
test. Other steps reuse ``engine`` to run an image with CPU/memory limits, wait for it to
be ready, read its stats and stop it (profile, deploy).

- ``engine``: choosing an engine, and the API callers import (``find_engine``, ``Engine``);
- ``base``: the engine protocol and its records; ``docker_engine``, ``buildah_engine``:
  the engines; ``credentials``: which registry a reference names and how to log in;
- ``context`` / ``wheels``: the build context; ``smoke``: the smoke test of a built image;
- ``packaging``: the package step's domain call (convert, parity, build, smoke, push).
"""
