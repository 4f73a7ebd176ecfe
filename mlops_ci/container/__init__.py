"""Serving images: the hermetic build context, container engines (Docker through the
docker SDK, or daemonless buildah/podman), push, and running a container for a smoke
test. Other steps reuse ``engine`` to run an image with CPU/memory limits, wait for it to
be ready, read its stats and stop it (profile, deploy)."""
