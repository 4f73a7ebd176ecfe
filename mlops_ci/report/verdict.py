"""The verdict over an out-dir: every step result read, the policy applied, the comment
rendered. The one path the gate step and the ``report`` command share, so what a preview
shows is what the gate posts."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from mlops_ci.report.comment import CommentOptions, RenderedComment, render_comment
from mlops_ci.report.policy import Decision, Policy, decide
from mlops_ci.report.results import NoStepResults, first_recorded, load_results
from mlops_ci.result import StepResult


@dataclass(frozen=True)
class VerdictRequest:
    """Where the results are, the policy, and how to render the comment. ``comment.commit``
    is the commit being gated (results of another commit are stale); a missing
    ``comment.pipeline_url`` is taken from the results. ``need_results``: an out-dir with
    no results (and no required step) is an error rather than an empty pass."""

    out_dir: Path
    policy: Policy
    comment: CommentOptions
    need_results: bool = False


@dataclass(frozen=True)
class Verdict:
    results: tuple[StepResult, ...]
    decision: Decision
    rendered: RenderedComment
    # The options the comment was rendered with (the pipeline URL filled in).
    comment: CommentOptions

    @property
    def summary(self) -> str:
        return self.decision.summary()

    def recorded(self, field: str) -> str | None:
        """The first value of a run-context ``field`` the results recorded (pr, repository...)."""
        return first_recorded(self.results, field)


def judge(request: VerdictRequest) -> Verdict:
    """Read the step results in ``request.out_dir``, decide and render. Raises
    NoStepResults when there is nothing to decide on."""
    results = tuple(load_results(request.out_dir))
    if request.need_results and not results and not request.policy.require:
        raise NoStepResults(f"no step results in {request.out_dir}: run the pipeline's steps first")
    decision = decide(results, request.policy, commit=request.comment.commit)
    comment = replace(
        request.comment, pipeline_url=request.comment.pipeline_url or first_recorded(results, "pipeline_url")
    )
    return Verdict(results, decision, render_comment(decision, comment), comment)
