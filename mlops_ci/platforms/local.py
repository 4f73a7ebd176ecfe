"""Running on a laptop or an unknown CI: context from git, outputs only in the result file,
and the PR comment written to a markdown file in the out-dir."""

from __future__ import annotations

import getpass
from collections.abc import Mapping
from pathlib import Path

from mlops_ci.gitinfo import read_git_info
from mlops_ci.platforms.base import Platform, Published, RunContext
from mlops_ci.result import write_text_atomic


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

    def resolve_pr(self, claimed: str | None) -> tuple[str | None, str | None]:
        # There is no pull request on a laptop, but the comment is still written (to a file).
        return "local", None

    def upsert_comment(
        self, key: str, body: str, *, pr: str, artifact: Path, author: str | None = None
    ) -> Published:
        """The comment is the markdown file ``artifact`` (``<out-dir>/comment.md``)."""
        write_text_atomic(artifact, body)
        return Published("saved", done=True, url=str(artifact), kind="file")
