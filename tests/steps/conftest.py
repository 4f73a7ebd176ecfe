"""Fixtures of the step tests. The gate's CLI tests use the fake GitHub/GitLab server and
the in-process runner of the platform tests: the same fixtures, not a copy."""

from tests.platforms.conftest import _forget_secrets, forge, gate

__all__ = ["_forget_secrets", "forge", "gate"]
