"""The code hosts' API as options: the token and URL settings of every step that talks to
GitHub or GitLab (one definition, so their names and environment variables never differ
between steps), the rule that keeps tokens out of the committed config file, and the
``ApiSettings`` and ``Platform`` made from their values."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from mlops_ci.config import Config
from mlops_ci.errors import UsageError
from mlops_ci.options import Option
from mlops_ci.platforms.base import ApiSettings, Platform
from mlops_ci.retry import RetryPolicy

CODE_HOSTS = ("github", "gitlab")


def api_options(*, github_token: str, gitlab_token: str) -> tuple[Option, ...]:
    """The token and API URL options. ``github_token`` and ``gitlab_token`` are the tokens'
    help: what the step needs each token to be allowed to do."""
    return (
        Option("github-token", github_token, env_aliases=("GITHUB_TOKEN", "GH_TOKEN"), metavar="TOKEN"),
        Option(
            "github-api-url",
            "GitHub REST API URL (GitHub Enterprise: https://HOST/api/v3)",
            env_aliases=("GITHUB_API_URL",),
            default="https://api.github.com",
            metavar="URL",
        ),
        Option("gitlab-token", gitlab_token, env_aliases=("GITLAB_TOKEN",), metavar="TOKEN"),
        Option(
            "gitlab-url",
            "GitLab server URL (default: CI_SERVER_URL, else CI_API_V4_URL without /api/v4)",
            env_aliases=("CI_SERVER_URL",),
            metavar="URL",
        ),
    )


def secret_options(options: Iterable[Option]) -> tuple[Option, ...]:
    """The options among ``options`` that hold a secret (a token)."""
    return tuple(option for option in options if option.name.endswith("-token"))


def refuse_secrets_in_config(config: Config, section: str, secrets: Iterable[Option]) -> None:
    """A usage error when the config file's ``section`` sets one of ``secrets``: the file
    gets committed, so a token there is a leaked token. Says which environment variable
    to use instead."""
    present = config.section(section)
    for option in secrets:
        if option.name in present:
            variable = option.env_aliases[0] if option.env_aliases else option.env_var
            raise UsageError(
                f"{option.name} must not be in {config.origin} (a file that gets committed); pass it "
                f"in the environment: {variable}"
            )


def api_settings(platform: str, values: Mapping[str, Any]) -> ApiSettings:
    """How ``platform`` (github, gitlab or another) reaches its API, from the values of
    ``api_options`` and the global ``retry-timeout``."""
    retry = RetryPolicy(budget_s=values["retry_timeout"])
    if platform == "github":
        return ApiSettings(token=values["github_token"], url=values["github_api_url"], retry=retry)
    if platform == "gitlab":
        return ApiSettings(token=values["gitlab_token"], url=values["gitlab_url"], retry=retry)
    return ApiSettings(retry=retry)


def code_host(
    name: str,
    values: Mapping[str, Any],
    *,
    current: Platform,
    env: Mapping[str, str],
    cwd: Path,
    out_dir: Path,
) -> Platform:
    """The platform ``name`` (github or gitlab), connected with its API settings: the
    current one when the job runs there, else one made for the API calls alone (a
    scheduled GitLab job that starts a GitHub workflow)."""
    from mlops_ci.platforms import platform_named

    platform = current if current.name == name else platform_named(name, env, cwd=cwd, out_dir=out_dir)
    platform.connect(api_settings(name, values))
    return platform
