"""Registry credentials from the environment (container.credentials), in their order of
precedence, never shown in a repr."""

from __future__ import annotations

import base64

from mlops_ci.container.credentials import RegistryCredentials, basic_auth, credentials_from_env

GITLAB = {
    "CI_REGISTRY": "registry.gitlab.com",
    "CI_REGISTRY_USER": "gl-user",
    "CI_REGISTRY_PASSWORD": "gl-pass",
}
GITHUB = {"GITHUB_ACTOR": "octocat", "GITHUB_TOKEN": "gh-token"}
OWN = {"MLOPS_CI_REGISTRY_USERNAME": "me", "MLOPS_CI_REGISTRY_PASSWORD": "secret"}


def test_our_own_variables_win_for_any_registry():
    env = {**GITLAB, **GITHUB, **OWN}
    assert credentials_from_env("ghcr.io/a/m:1", env) == RegistryCredentials("ghcr.io", "me", "secret")
    assert credentials_from_env("m:1", OWN) == RegistryCredentials("docker.io", "me", "secret")


def test_platform_tokens_only_for_their_own_registry():
    env = {**GITLAB, **GITHUB}
    assert credentials_from_env("registry.gitlab.com/g/m:1", env) == RegistryCredentials(
        "registry.gitlab.com", "gl-user", "gl-pass"
    )
    assert credentials_from_env("ghcr.io/a/m:1", env) == RegistryCredentials("ghcr.io", "octocat", "gh-token")
    assert credentials_from_env("quay.io/a/m:1", env) is None
    assert credentials_from_env("ghcr.io/a/m:1", {"GITHUB_TOKEN": "gh-token"}) is None


def test_the_password_stays_out_of_the_repr_and_encodes_as_basic_auth():
    credentials = RegistryCredentials("r.io", "me", "secret")
    assert "secret" not in repr(credentials)
    assert base64.b64decode(basic_auth(credentials)) == b"me:secret"
