"""Fixtures of the step tests, shared with the platform tests rather than copied: the fake
GitHub/GitLab server, the in-process runner of `mlops-ci`, and forgetting the secrets a
test masked (every step test, the drift step's included)."""

from tests.platforms.conftest import _forget_secrets, forge, gate

__all__ = ["_forget_secrets", "forge", "gate"]
