"""Running on a laptop or an unknown CI: context from git, outputs only in the result file."""

from __future__ import annotations

import getpass
from collections.abc import Mapping

from mlops_ci.gitinfo import read_git_info
from mlops_ci.platforms.base import Platform, RunContext


class LocalPlatform(Platform):
    name = "local"

    def context(self) -> RunContext:
        info = read_git_info(self.cwd)
        try:
            actor = getpass.getuser()
        except (KeyError, OSError):
            actor = None
        return RunContext(platform="local", commit=info.commit, branch=info.branch, actor=actor)

    def write_outputs(self, step: str, outputs: Mapping[str, str]) -> None:
        """Locally the outputs live in the step-result file and are printed; nothing more."""

    def write_summary(self, markdown: str) -> None:
        """The terminal gets the one-line summary; the markdown is for CI pages."""
