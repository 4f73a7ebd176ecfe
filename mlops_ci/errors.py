"""One exception hierarchy; each class carries the process exit code it maps to.

Exit codes (see DESIGN.md): 0 passed, 1 a blocking check failed, 2 usage or configuration
error, 3 an external service failed after retries, 4 internal error.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    PASSED = 0
    CHECK_FAILED = 1
    USAGE = 2
    EXTERNAL = 3
    INTERNAL = 4


class MlopsCiError(Exception):
    """Base of every error mlops-ci reports to the user; the message says what to do."""

    exit_code: ExitCode = ExitCode.INTERNAL


class UsageError(MlopsCiError):
    """Bad flag, bad config, unreadable or invalid input file: the user can fix it."""

    exit_code = ExitCode.USAGE


class ExternalServiceError(MlopsCiError):
    """A service (MLflow, registry, GitHub/GitLab, Docker) failed after retries."""

    exit_code = ExitCode.EXTERNAL


class AccessDeniedError(UsageError):
    """A service refused the job's credentials (HTTP 403): the job holds the wrong identity,
    which its configuration must fix; retrying cannot help."""


class SettingError(UsageError):
    """A usage error about one setting, in the domain's words: ``setting`` is its name
    (``holdout``, ``checks[0].metric``). The domain never says how the user gives it; the
    step that owns the setting knows the flag and the config key and adds them."""

    def __init__(self, message: str, *, setting: str) -> None:
        super().__init__(message)
        self.setting = setting
