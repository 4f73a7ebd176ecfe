"""What git knows about the working tree: commit, branch, dirty flag, remote, message.

Every function degrades to ``None`` outside a repository or without a git binary: lineage
is recorded when it exists, and its absence is never an error.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class GitInfo:
    commit: str | None = None
    branch: str | None = None
    dirty: bool | None = None
    remote: str | None = None
    message: str | None = None
    root: Path | None = None


def git(args: list[str], cwd: Path) -> str | None:
    try:
        completed = subprocess.run(
            ["git", *args], cwd=cwd, capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if completed.returncode != 0:
        return None
    return completed.stdout.rstrip("\n")


def read_git_info(cwd: Path) -> GitInfo:
    root = git(["rev-parse", "--show-toplevel"], cwd)
    if root is None:
        return GitInfo()
    commit = git(["rev-parse", "HEAD"], cwd)
    branch = git(["symbolic-ref", "--short", "-q", "HEAD"], cwd)
    status = git(["status", "--porcelain", "--untracked-files=no"], cwd)
    remote = git(["remote", "get-url", "origin"], cwd)
    message = git(["log", "-1", "--format=%B"], cwd) if commit else None
    return GitInfo(
        commit=commit,
        branch=branch or None,
        dirty=bool(status) if status is not None else None,
        remote=strip_credentials(remote) if remote else None,
        message=message.strip() if message else None,
        root=Path(root),
    )


_CREDENTIALS = re.compile(r"^(?P<scheme>[a-z][a-z0-9+.-]*://)[^/@]*@", re.IGNORECASE)


def strip_credentials(url: str) -> str:
    """``https://x-access-token:SECRET@github.com/o/r`` -> ``https://github.com/o/r``.

    CI checkouts often embed a token in the remote URL; it must never reach a run's tags.
    """
    return _CREDENTIALS.sub(r"\g<scheme>", url)


def list_files(cwd: Path) -> list[Path] | None:
    """Files git would commit below ``cwd``: tracked plus untracked-but-not-ignored.

    None outside a repository.
    """
    out = git(["ls-files", "-z", "--cached", "--others", "--exclude-standard", "--", "."], cwd)
    if out is None:
        return None
    # ls-files lists deleted-but-tracked files too; keep only what exists.
    files = (cwd / name for name in out.split("\0") if name)
    return sorted(path for path in files if path.is_file())
