"""Parity judged against the tolerances (convert.parity_checks): each question passes at
its limit and fails just beyond it; the report lists every judgement and the worst rows."""

from __future__ import annotations

import dataclasses

import pytest

from mlops_ci.convert.parity import MetricParity, ParityReport, Tolerances
from mlops_ci.convert.parity_checks import judge_parity, parity_markdown

WORST = ({"row": 7, "abs_diff": 0.02, "native_label": "a", "onnx_label": "b"},)


def classification(**changes) -> ParityReport:
    report = ParityReport(
        rows=1000,
        source="holdout",
        task="classification",
        label_agreement=0.999,
        disagreeing_rows=1,
        diff_max=0.05,
        diff_p99=0.01,
        diff_p999=0.02,
        diff_mean=0.001,
        diff_kind="probability",
        # Differences of 2**-10 (accuracy) and 2**-10 relative to 2.0 (log loss): within 0.001.
        metrics=(
            MetricParity("accuracy", 0.75, 0.75 + 2**-10, True),
            MetricParity("log_loss", 2.0, 2.0 + 2**-9, False),
        ),
        worst_rows=WORST,
    )
    return dataclasses.replace(report, **changes)


def statuses(report: ParityReport, tolerances: Tolerances | None = None) -> dict[str, str]:
    return {j.name: j.status for j in judge_parity(report, tolerances or Tolerances())}


def test_at_the_limits_every_question_passes():
    judgements = judge_parity(classification(), Tolerances())
    assert {j.name: j.status for j in judgements} == {
        "parity-labels": "passed",
        "parity-probabilities": "passed",
        "parity-accuracy": "passed",
        "parity-log-loss": "passed",
    }
    labels = judgements[0]
    assert labels.value == 0.999 and labels.threshold == 0.999 and labels.details["kind"] == "parity"
    assert "99.90% of 1000 holdout rows (1 differ" in labels.message
    assert not any(j.failed for j in judgements)


@pytest.mark.parametrize(
    ("changes", "failing"),
    [
        ({"label_agreement": 0.998}, "parity-labels"),
        ({"diff_max": 0.051}, "parity-probabilities"),
        ({"diff_p99": 0.0101}, "parity-probabilities"),
        ({"metrics": (MetricParity("accuracy", 0.75, 0.75 - 2**-9, True),)}, "parity-accuracy"),
    ],
)
def test_just_beyond_a_limit_that_question_fails(changes, failing):
    found = statuses(classification(**changes))
    assert found[failing] == "failed"
    assert [name for name, status in found.items() if status == "failed"] == [failing]


def test_unbounded_metrics_are_compared_relative_to_their_size():
    # 2**-9 on a log loss of 2.0 is within a tolerance of 0.001; 0.0021 is not.
    assert statuses(classification())["parity-log-loss"] == "passed"
    wider = classification(metrics=(MetricParity("log_loss", 2.0, 2.0021, False),))
    assert statuses(wider)["parity-log-loss"] == "failed"


def test_regression_values_without_a_target_skip_the_metrics():
    report = classification(
        task="regression", label_agreement=None, diff_kind="value", metrics=(), source="input example"
    )
    judgements = judge_parity(report, Tolerances(p99_abs_diff=0.02))
    assert [(j.name, j.status) for j in judgements] == [
        ("parity-values", "passed"),
        ("parity-metrics", "skipped"),
    ]
    assert "no target on the input example" in judgements[1].message and not judgements[1].failed


def test_the_markdown_report_lists_the_conversion_each_judgement_and_the_worst_rows():
    report = classification(diff_max=0.2)
    text = parity_markdown(report, judge_parity(report, Tolerances()), conversion="skl2onnx 1.20 | opset 21")
    assert text.startswith("# ONNX parity (1000 holdout rows)")
    assert "| onnx-conversion | passed | skl2onnx 1.20 / opset 21 |" in text
    assert "| parity-probabilities | failed |" in text and "| parity-labels | passed |" in text
    assert "| 7 (a / b) | a | b | 0.02 |" in text
