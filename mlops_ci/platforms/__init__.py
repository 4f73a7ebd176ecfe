"""The CI platform a step runs on: its context, and where outputs and summaries go."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from mlops_ci.platforms.base import Platform, RunContext

__all__ = ["Platform", "RunContext", "detect_platform", "platform_named"]


def detect_platform(env: Mapping[str, str], *, cwd: Path, out_dir: Path) -> Platform:
    """GitHub Actions when ``GITHUB_ACTIONS=true``, GitLab CI when ``GITLAB_CI=true``, else local."""
    if env.get("GITHUB_ACTIONS") == "true":
        return platform_named("github", env, cwd=cwd, out_dir=out_dir)
    if env.get("GITLAB_CI") == "true":
        return platform_named("gitlab", env, cwd=cwd, out_dir=out_dir)
    return platform_named("local", env, cwd=cwd, out_dir=out_dir)


def platform_named(name: str, env: Mapping[str, str], *, cwd: Path, out_dir: Path) -> Platform:
    """The platform called ``name`` (github, gitlab or local), reading ``env``."""
    if name == "github":
        from mlops_ci.platforms.github import GitHubPlatform

        return GitHubPlatform(env, cwd=cwd, out_dir=out_dir)
    if name == "gitlab":
        from mlops_ci.platforms.gitlab import GitLabPlatform

        return GitLabPlatform(env, cwd=cwd, out_dir=out_dir)
    if name == "local":
        from mlops_ci.platforms.local import LocalPlatform

        return LocalPlatform(env, cwd=cwd, out_dir=out_dir)
    raise ValueError(f"`name` must be github, gitlab or local, got {name!r}")
