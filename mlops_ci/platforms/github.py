"""GitHub Actions: context from ``GITHUB_*`` and the event payload, outputs to
``$GITHUB_OUTPUT``, summaries appended to ``$GITHUB_STEP_SUMMARY``."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mlops_ci.platforms.base import Platform, RunContext


class GitHubPlatform(Platform):
    name = "github"

    def event(self) -> Mapping[str, Any]:
        path = self.env.get("GITHUB_EVENT_PATH")
        if not path:
            return {}
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def context(self) -> RunContext:
        env = self.env
        pull_request = self.event().get("pull_request") or {}
        # On pull_request events GITHUB_SHA is a merge commit; the head is what was pushed.
        commit = (pull_request.get("head") or {}).get("sha") or env.get("GITHUB_SHA")
        server = env.get("GITHUB_SERVER_URL", "https://github.com")
        repository = env.get("GITHUB_REPOSITORY")
        run_id = env.get("GITHUB_RUN_ID")
        pipeline_url = f"{server}/{repository}/actions/runs/{run_id}" if repository and run_id else None
        number = pull_request.get("number")
        return RunContext(
            platform="github",
            commit=commit,
            branch=env.get("GITHUB_HEAD_REF") or env.get("GITHUB_REF_NAME"),
            pr=str(number) if number is not None else None,
            pipeline_url=pipeline_url,
            actor=env.get("GITHUB_TRIGGERING_ACTOR") or env.get("GITHUB_ACTOR"),
            repository=repository,
            event=env.get("GITHUB_EVENT_NAME"),
        )

    def write_outputs(self, step: str, outputs: Mapping[str, str]) -> None:
        path = self.env.get("GITHUB_OUTPUT")
        if not path or not outputs:
            return
        with open(path, "a", encoding="utf-8") as handle:
            for key, value in outputs.items():
                handle.write(format_output(key, str(value)))

    def write_summary(self, markdown: str) -> None:
        path = self.env.get("GITHUB_STEP_SUMMARY")
        if not path:
            return
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(markdown.rstrip("\n") + "\n\n")


def format_output(key: str, value: str) -> str:
    """One ``$GITHUB_OUTPUT`` entry; multi-line values use the heredoc form with a
    delimiter that cannot occur in the value."""
    if "\n" not in value and "\r" not in value:
        return f"{key}={value}\n"
    delimiter = f"ghadelimiter_{uuid.uuid4().hex}"
    while delimiter in value:
        delimiter = f"ghadelimiter_{uuid.uuid4().hex}"
    return f"{key}<<{delimiter}\n{value}\n{delimiter}\n"
