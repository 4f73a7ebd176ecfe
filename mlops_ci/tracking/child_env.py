"""The environment the user's training command gets: the job's, minus every CI and code-host
credential.

The training command is the pull request's code. On GitHub Actions and GitLab CI it runs in
a job that may hold write tokens (``GITHUB_TOKEN`` when a workflow exports it, GitLab's
``CI_JOB_TOKEN``, registry passwords, the runner's own ``ACTIONS_RUNTIME_TOKEN`` and OIDC
request token, ...). None of them is needed to train a model, so none reaches the command:

- exact names (``DENIED_NAMES``): the tokens, passwords and token-bearing URLs GitHub
  Actions and GitLab CI set or users commonly export;
- patterns (``DENIED_PATTERNS``): every ``*_TOKEN``, ``*_JWT*`` and the runner's internal
  ``ACTIONS_*`` / ``RUNNER_TOKEN*`` variables, and GitLab's ``CI_*PASSWORD*``;
- never dropped (``KEPT_PATTERNS``): ``MLFLOW_*`` (the command logs to MLflow with the
  credentials the job was given for that: ``MLFLOW_TRACKING_URI``, ``_USERNAME``,
  ``_PASSWORD``, ``_TOKEN``) and ``AWS_SESSION_TOKEN`` (temporary credentials of the S3
  artifact store MLflow writes models to);
- ``pass_env`` (``--pass-env NAME``): exact names the user passes on purpose, e.g. a token
  for a private data source. Only those names, never a pattern.

This is a deny-list: a secret under a name it does not know (``MY_DB_PASS``) still reaches
the command. The job that runs training should hold no secret the pull request's author may
not read: code in the same job can always read its parent's environment and files.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase

from mlops_ci.errors import UsageError

DENIED_NAMES = frozenset(
    {
        # GitHub: the workflow token and the usual names of personal / app tokens.
        "GITHUB_TOKEN",
        "GH_TOKEN",
        "GH_ENTERPRISE_TOKEN",
        "GITHUB_ENTERPRISE_TOKEN",
        # The GitHub Actions runner: artifact, cache and results services, OIDC tokens.
        "ACTIONS_RUNTIME_TOKEN",
        "ACTIONS_RUNTIME_URL",
        "ACTIONS_ID_TOKEN_REQUEST_TOKEN",
        "ACTIONS_ID_TOKEN_REQUEST_URL",
        "ACTIONS_CACHE_URL",
        "ACTIONS_RESULTS_URL",
        # GitLab: the job token, its JWTs, registry and deploy credentials, API tokens.
        "CI_JOB_TOKEN",
        "CI_JOB_JWT",
        "CI_JOB_JWT_V1",
        "CI_JOB_JWT_V2",
        "CI_REGISTRY_PASSWORD",
        "CI_REGISTRY_USER",
        "CI_DEPLOY_PASSWORD",
        "CI_DEPLOY_USER",
        "CI_DEPENDENCY_PROXY_PASSWORD",
        "CI_DEPENDENCY_PROXY_USER",
        # https://gitlab-ci-token:<CI_JOB_TOKEN>@host/group/project.git
        "CI_REPOSITORY_URL",
        "GITLAB_TOKEN",
        "GITLAB_API_TOKEN",
        "GITLAB_PRIVATE_TOKEN",
        "GL_TOKEN",
        "GITLAB_TRIGGER_TOKEN",
        # Registry logins a CI job may carry for the package step.
        "DOCKER_AUTH_CONFIG",
        "DOCKER_PASSWORD",
        "REGISTRY_PASSWORD",
    }
)

DENIED_PATTERNS = (
    "*_TOKEN",
    "*_TOKEN_*",
    "*_JWT",
    "*_JWT_*",
    "ACTIONS_*",
    "RUNNER_TOKEN*",
    "CI_*PASSWORD*",
)

KEPT_PATTERNS = ("MLFLOW_*", "AWS_SESSION_TOKEN")

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class ChildEnvironment:
    """The environment for the command, and the credentials' names left out of it (never
    their values; mlops-ci's own ``MLOPS_CI_*`` inputs are left out without a mention)."""

    env: Mapping[str, str]
    dropped: tuple[str, ...]


def is_denied(name: str) -> bool:
    """Whether ``name`` is a CI / code-host credential the training command must not get."""
    upper = name.upper()
    if any(fnmatchcase(upper, pattern) for pattern in KEPT_PATTERNS):
        return False
    return upper in DENIED_NAMES or any(fnmatchcase(upper, pattern) for pattern in DENIED_PATTERNS)


def check_pass_env(names: Iterable[str]) -> tuple[str, ...]:
    """Exact variable names only: a pattern would pass more than the user looked at."""
    checked = []
    for name in names:
        if not _NAME.match(name or ""):
            raise UsageError(
                f"pass-env takes exact environment variable names (letters, digits, '_'), got {name!r}"
            )
        checked.append(name)
    return tuple(checked)


def child_environment(env: Mapping[str, str], *, pass_env: Iterable[str] = ()) -> ChildEnvironment:
    """``env`` without mlops-ci's own ``MLOPS_CI_*`` inputs (which may hold tokens for other
    steps) and without CI / code-host credentials, except the names in ``pass_env``."""
    passed = set(check_pass_env(pass_env))
    kept: dict[str, str] = {}
    dropped: list[str] = []
    for name, value in env.items():
        if name in passed:
            kept[name] = value
        elif name.startswith("MLOPS_CI_"):
            continue
        elif is_denied(name):
            dropped.append(name)
        else:
            kept[name] = value
    return ChildEnvironment(kept, tuple(sorted(dropped)))
