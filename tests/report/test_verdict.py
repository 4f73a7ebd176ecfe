"""judge(): the one decide-and-render path of the gate and the report command."""

from __future__ import annotations

import json

import pytest

from mlops_ci.report.comment import CommentOptions
from mlops_ci.report.policy import Policy
from mlops_ci.report.results import NoStepResults
from mlops_ci.report.verdict import VerdictRequest, judge
from tests.forge_cases import PIPELINE_URL, SHA, copy_case


def test_judge_decides_and_renders_with_the_pipeline_the_results_recorded(tmp_path):
    out = copy_case("block", tmp_path / "out")
    recorded = json.loads((out / "validate.json").read_text())["context"]["pipeline_url"]
    verdict = judge(VerdictRequest(out, Policy(require=("validate",)), CommentOptions(title="census")))
    assert [r.step for r in verdict.results][:3] == ["train", "register", "validate"]
    assert verdict.decision.verdict == "block" and verdict.summary.startswith("blocked: ")
    assert verdict.comment.pipeline_url == recorded and recorded in verdict.rendered.body
    assert verdict.recorded("commit") == SHA and verdict.recorded("no-such-field") is None
    # The run's own pipeline wins over the recorded one.
    mine = judge(VerdictRequest(out, Policy(), CommentOptions(pipeline_url=PIPELINE_URL + "9")))
    assert mine.comment.pipeline_url == PIPELINE_URL + "9"


def test_a_shortened_comment_keeps_the_full_one(tmp_path):
    out = copy_case("block", tmp_path / "out")
    verdict = judge(VerdictRequest(out, Policy(), CommentOptions(max_chars=3000)))
    assert verdict.rendered.shortened and len(verdict.rendered.body) <= 3000 < len(verdict.rendered.full)


def test_no_results_is_an_error_only_when_results_are_needed(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert judge(VerdictRequest(empty, Policy(), CommentOptions())).decision.verdict == "pass"
    with pytest.raises(NoStepResults, match=r"^no step results in .*empty: run the pipeline's steps first$"):
        judge(VerdictRequest(empty, Policy(), CommentOptions(), need_results=True))
    # A required step that did not run is a verdict (block), not an error.
    required = judge(VerdictRequest(empty, Policy(require=("train",)), CommentOptions(), need_results=True))
    assert required.decision.verdict == "block"
    with pytest.raises(NoStepResults, match=r"does not exist; run the steps first$"):
        judge(VerdictRequest(tmp_path / "missing", Policy(), CommentOptions()))
