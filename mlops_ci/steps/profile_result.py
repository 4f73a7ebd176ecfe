"""The profile step's result from a ``ProfileOutcome``: outputs (the recommendation deploy
reads), one check per decision, the summary, the report files."""

from __future__ import annotations

from mlops_ci.profiling.run import ProfileOutcome
from mlops_ci.result import Check, StepResult


def build_result(outcome: ProfileOutcome) -> StepResult:
    outputs: dict[str, str] = {}
    for name, value in outcome.figures.items():
        outputs[name.replace("_", "-")] = value
        if name == "server":
            outputs["report"] = str(outcome.paths["markdown"])
    if outcome.profile_uri:
        outputs["profile-uri"] = outcome.profile_uri
    artifacts = [str(path) for _, path in sorted(outcome.paths.items())]
    checks = [Check.from_finding(decision) for decision in outcome.decisions]
    result = StepResult("profile", outcome.status, outcome.summary, outputs, checks, artifacts)
    result.summary_markdown = outcome.markdown
    return result
