"""The one deployment error that points at a setting, in domain terms."""

from __future__ import annotations

from mlops_ci.errors import SettingError as _SettingError


class SettingError(_SettingError):
    """A deployment setting has a value that cannot be used (exit 2).

    ``setting`` is the domain name of the setting (kebab-case: ``name``, ``namespace``,
    ``kubernetes-version``, ...) and ``problem`` the rest of the sentence, so a caller can
    say it in its own terms (``--kubernetes-version must look like 1.30, got 'x'``)."""

    def __init__(self, setting: str, problem: str) -> None:
        self.problem = problem
        super().__init__(f"{setting} {problem}", setting=setting)
