"""Container engines behind one small API, so that package, profile and deploy share it:

    engine, why = find_engine("auto", env)        # None + the reason when none is usable
    image = engine.build(context_dir, "census-income:3", log_path=...)
    digest = engine.push(image.ref, credentials)
    with engine.run(image.ref, cpus=1.0, memory="512m") as container:
        container.wait_ready()                    # seconds until /v2/health/ready said 200
        container.url, container.stats(), container.logs()
                                                  # stopped (SIGTERM) and removed on exit

This module chooses the engine and is what callers import; the protocol lives in
``base``, the engines in ``docker_engine`` (the docker SDK, DOCKER_HOST) and
``buildah_engine`` (daemonless buildah, containers run with podman), registry
credentials in ``credentials``.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping

from mlops_ci.container.base import (
    BuildError,
    ContainerState,
    ContainerStats,
    Engine,
    ImageInfo,
    NotReadyError,
    RunningContainer,
)
from mlops_ci.container.buildah_engine import BuildahEngine
from mlops_ci.container.credentials import RegistryCredentials, credentials_from_env
from mlops_ci.container.docker_engine import DockerEngine
from mlops_ci.errors import UsageError

__all__ = [
    "ENGINES",
    "BuildError",
    "BuildahEngine",
    "ContainerState",
    "ContainerStats",
    "DockerEngine",
    "Engine",
    "ImageInfo",
    "NotReadyError",
    "RegistryCredentials",
    "RunningContainer",
    "credentials_from_env",
    "find_engine",
]

ENGINES = ("auto", "docker", "buildah", "none")


def find_engine(preference: str, env: Mapping[str, str]) -> tuple[Engine | None, str]:
    """The engine to use, or None and why none is usable (for the step's message).
    ``preference``: one of ``ENGINES``; auto tries Docker, then buildah."""
    if preference not in ENGINES:
        raise UsageError(f"the container engine must be one of {', '.join(ENGINES)}, got {preference!r}")
    if preference == "none":
        return None, "image building is switched off"
    reasons = []
    if preference in ("auto", "docker"):
        try:
            return DockerEngine.connect(env), ""
        except Exception as exc:  # noqa: BLE001 - any failure means "not reachable"
            host = env.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
            reasons.append(f"no Docker engine answers at {host} ({type(exc).__name__})")
            if preference == "docker":
                return None, reasons[0]
    if preference in ("auto", "buildah"):
        if shutil.which("buildah", path=env.get("PATH", os.defpath)):
            return BuildahEngine(env), ""
        reasons.append("buildah is not installed")
    return None, "; ".join(reasons)
