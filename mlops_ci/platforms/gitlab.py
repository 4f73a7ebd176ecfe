"""GitLab CI: context from ``CI_*``, outputs as a dotenv report (``<out-dir>/<step>.env``)."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping

from mlops_ci.platforms.base import Platform, RunContext
from mlops_ci.result import write_text_atomic

log = logging.getLogger(__name__)


class GitLabPlatform(Platform):
    name = "gitlab"

    def context(self) -> RunContext:
        env = self.env
        return RunContext(
            platform="gitlab",
            commit=env.get("CI_COMMIT_SHA"),
            branch=env.get("CI_MERGE_REQUEST_SOURCE_BRANCH_NAME") or env.get("CI_COMMIT_REF_NAME"),
            pr=env.get("CI_MERGE_REQUEST_IID"),
            pipeline_url=env.get("CI_PIPELINE_URL"),
            actor=env.get("GITLAB_USER_LOGIN"),
            repository=env.get("CI_PROJECT_PATH"),
            event=env.get("CI_PIPELINE_SOURCE"),
        )

    def write_outputs(self, step: str, outputs: Mapping[str, str]) -> None:
        """Write ``MLOPS_CI_<STEP>_<OUTPUT>=value`` lines; a job lists the file under
        ``artifacts:reports:dotenv`` and later jobs get the variables."""
        lines = []
        for key, value in outputs.items():
            value = str(value)
            if "\n" in value or "\r" in value:
                # GitLab's dotenv reports cannot carry multi-line values; the JSON result has it.
                log.warning("output %s of %s is multi-line and is left out of the dotenv report", key, step)
                continue
            lines.append(f"{dotenv_name(step, key)}={value}\n")
        write_text_atomic(self.out_dir / f"{step}.env", "".join(lines))

    def write_summary(self, markdown: str) -> None:
        """GitLab has no step summary page; the MR widget reads the JUnit and metrics reports."""


def dotenv_name(step: str, key: str) -> str:
    return re.sub(r"[^A-Z0-9_]", "_", f"MLOPS_CI_{step}_{key}".upper())
