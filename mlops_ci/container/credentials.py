"""The credentials to push an image to its registry, from the environment."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass, field

from mlops_ci.container.reference import registry_of


@dataclass(frozen=True)
class RegistryCredentials:
    registry: str
    username: str
    password: str = field(repr=False)


def credentials_from_env(ref: str, env: Mapping[str, str]) -> RegistryCredentials | None:
    """MLOPS_CI_REGISTRY_USERNAME/PASSWORD; else GitLab's CI_REGISTRY_USER/PASSWORD for
    its own registry; else GITHUB_ACTOR/GITHUB_TOKEN for ghcr.io. None: the engine's own
    login (docker login) applies."""
    registry = registry_of(ref)
    user, password = env.get("MLOPS_CI_REGISTRY_USERNAME"), env.get("MLOPS_CI_REGISTRY_PASSWORD")
    if user and password:
        return RegistryCredentials(registry, user, password)
    if env.get("CI_REGISTRY") == registry and env.get("CI_REGISTRY_USER") and env.get("CI_REGISTRY_PASSWORD"):
        return RegistryCredentials(registry, env["CI_REGISTRY_USER"], env["CI_REGISTRY_PASSWORD"])
    if registry == "ghcr.io" and env.get("GITHUB_TOKEN") and env.get("GITHUB_ACTOR"):
        return RegistryCredentials(registry, env["GITHUB_ACTOR"], env["GITHUB_TOKEN"])
    return None


def basic_auth(credentials: RegistryCredentials) -> str:
    return base64.b64encode(f"{credentials.username}:{credentials.password}".encode()).decode()
