"""The interface every CI platform implements.

A platform reads where a step runs (``context``), publishes a step's outputs and summary,
and — for the gate — talks to the code host: it upserts one pull/merge-request comment
found by a hidden marker, sets a commit status, annotates the run and masks secrets. Steps
only ever talk to GitHub or GitLab through these methods.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mlops_ci.platforms.masking import register_secret
from mlops_ci.retry import RetryPolicy

log = logging.getLogger(__name__)

# State of a commit status / check run, platform-neutral. "pending" never satisfies a
# required status (GitHub counts a neutral check run as passing; pending does not pass).
STATUS_STATES = ("success", "failure", "neutral", "pending")


@dataclass(frozen=True)
class RunContext:
    """Where a step runs: recorded in every step result and as lineage on runs and versions."""

    platform: str
    commit: str | None = None
    branch: str | None = None
    pr: str | None = None
    pipeline_url: str | None = None
    actor: str | None = None
    repository: str | None = None
    event: str | None = None
    # True only where the code under test was reviewed: a push to a protected or the default
    # branch, a tag, a schedule or dispatch on one (SECURITY.md). Pull/merge requests (fork or
    # not), unprotected branches and laptops are not trusted contexts.
    trusted: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ApiSettings:
    """How to reach the code host's API. ``retry`` bounds the total time spent waiting on
    retries across every call of one publication (not per call)."""

    token: str | None = None
    url: str | None = None
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    # Per request; a hung connection costs at most this on top of the retry budget.
    timeout_s: float = 30.0


@dataclass(frozen=True)
class Status:
    """A commit status / check run: ``state`` is one of STATUS_STATES."""

    name: str
    state: str
    title: str
    summary: str = ""
    url: str | None = None

    def __post_init__(self) -> None:
        if self.state not in STATUS_STATES:
            raise ValueError(f"`state` must be one of {STATUS_STATES}, got {self.state!r}")


@dataclass(frozen=True)
class Published:
    """What became of a comment or status.

    ``action``: created, updated, unchanged, deleted-duplicates, kept-newer (a later pipeline
    already wrote the comment), saved (written to a file only), skipped (nothing to do, e.g.
    no pull request) or degraded (the platform refused, e.g. a read-only token on a fork).
    """

    action: str
    done: bool
    url: str | None = None
    id: str | None = None
    kind: str | None = None  # check-run, commit-status, comment, note, file
    reason: str | None = None


@dataclass(frozen=True)
class RetrainRequest:
    """Start the training pipeline again, saying why and on which data.

    ``mechanism``: ``workflow_dispatch`` or ``repository_dispatch`` (GitHub),
    ``pipeline`` (GitLab: the pipeline trigger API with ``trigger_token``, else the create-
    pipeline API with the API token). ``repository`` is ``owner/repo`` on GitHub, the
    project id or path on GitLab (default: the current one); ``ref`` the branch (default:
    the repository's default branch).
    """

    mechanism: str
    reason: str
    window_start: str | None = None
    window_end: str | None = None
    model: str | None = None
    drifted_features: tuple[str, ...] = ()
    repository: str | None = None
    ref: str | None = None
    workflow: str | None = None
    event_type: str = "mlops-ci-retrain"
    trigger_token: str | None = field(default=None, repr=False)
    extra: Mapping[str, str] = field(default_factory=dict)

    def inputs(self) -> dict[str, str]:
        """workflow_dispatch inputs: the workflow must declare each of them."""
        values = {
            "reason": self.reason[:1000],
            "window-start": self.window_start or "",
            "window-end": self.window_end or "",
        }
        values = {key: value for key, value in values.items() if value}
        values.update({key: str(value) for key, value in self.extra.items()})
        return values

    def payload(self) -> dict[str, Any]:
        """repository_dispatch client_payload (GitHub allows 10 top-level keys)."""
        payload: dict[str, Any] = {
            "reason": self.reason[:1000],
            "window_start": self.window_start,
            "window_end": self.window_end,
            "model": self.model,
            "drifted_features": list(self.drifted_features),
        }
        if self.extra:
            payload["inputs"] = dict(self.extra)
        return payload

    def variables(self) -> dict[str, str]:
        """GitLab pipeline variables (not MLOPS_CI_*: those would be read as mlops-ci options)."""
        values = {
            "RETRAIN_REASON": self.reason[:1000],
            "RETRAIN_WINDOW_START": self.window_start or "",
            "RETRAIN_WINDOW_END": self.window_end or "",
            "RETRAIN_MODEL": self.model or "",
            "RETRAIN_DRIFTED_FEATURES": ",".join(self.drifted_features),
        }
        values = {key: value for key, value in values.items() if value}
        values.update({key: str(value) for key, value in self.extra.items()})
        return values


class Platform(ABC):
    """Base class: context, outputs and summary are abstract; the code-host methods have
    safe defaults for platforms without a code host (a laptop)."""

    name = "local"
    # Longest comment body the platform accepts, in characters.
    max_comment_chars = 1_000_000
    # What the platform calls a pull request, for messages.
    pr_noun = "pull request"

    def __init__(self, env: Mapping[str, str], *, cwd: Path, out_dir: Path) -> None:
        self.env = env
        self.cwd = cwd
        self.out_dir = out_dir
        self.api = ApiSettings()

    @abstractmethod
    def context(self) -> RunContext:
        """Commit, branch, PR/MR, pipeline URL and actor of the current run."""

    @abstractmethod
    def write_outputs(self, step: str, outputs: Mapping[str, str]) -> None:
        """Publish a step's outputs where the next job or step can read them."""

    @abstractmethod
    def write_summary(self, markdown: str) -> None:
        """Show a step's markdown summary where the platform shows such things."""

    def repository_url(self) -> str | None:
        """The web address of the repository being built (for image labels), or None
        when the platform does not know one."""
        return None

    # --- talking to the code host -------------------------------------------------------

    def connect(self, settings: ApiSettings) -> None:
        """Use ``settings`` for later API calls. The token is masked from here on."""
        if settings.token:
            self.mask(settings.token)
        self.api = settings

    def pipeline_ordinal(self) -> int | None:
        """A number that grows with every pipeline of the repository (GitHub run id,
        GitLab pipeline id): a comment written by a later pipeline is never overwritten
        by an earlier one that finishes late."""
        return None

    def results_untrusted(self) -> bool:
        """Whether this run is known to read results that untrusted code produced (GitHub:
        a ``workflow_run`` triggered by a pull request from a fork)."""
        return False

    def resolve_pr(self, claimed: str | None) -> tuple[str | None, str | None]:
        """The PR/MR to comment on, and why there is none. ``claimed`` is the number the
        step results recorded; platforms that run a separate trusted job (GitHub's
        ``workflow_run``) verify it before use."""
        pr = self.context().pr
        return (pr, None) if pr else (None, f"not a {self.pr_noun} pipeline")

    def upsert_comment(
        self, key: str, body: str, *, pr: str, artifact: Path, author: str | None = None
    ) -> Published:
        """Create or edit in place the one comment on ``pr`` that starts with
        ``comments.marker(key)`` and was written by the token's own identity (``author``
        when given, else asked of the platform); others' comments are never touched.
        ``artifact`` holds the same body on disk."""
        return Published("saved", done=True, url=str(artifact), kind="file")

    def set_status(self, status: Status, *, commit: str) -> Published:
        """Set a commit status (or check run) that branch protection can require."""
        return Published("skipped", done=False, reason=f"{self.name} runs have no commit statuses")

    def request_retraining(self, request: RetrainRequest) -> Published:
        """Start the training workflow/pipeline with ``request``'s reason and data window."""
        return Published(
            "skipped",
            done=False,
            kind="dispatch",
            reason=f"{self.name} runs cannot start a pipeline: the retrain platform must be github or gitlab",
        )

    def annotate(self, level: str, message: str, *, title: str | None = None) -> None:
        """Attach a note to the run (``level``: error, warning or notice). Platforms without
        annotations have the same text in the step's printed result already."""
        log.debug("%s: %s%s", level, f"{title}: " if title else "", message)

    def mask(self, secret: str) -> None:
        """Keep ``secret`` out of every log line this process writes."""
        register_secret(secret)
