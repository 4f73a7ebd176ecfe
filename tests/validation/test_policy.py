"""The policy: Holm across the blocking no-regression checks, slices, first models, missing
probabilities and failing custom metrics."""

from __future__ import annotations

import pytest

from mlops_ci.errors import UsageError
from mlops_ci.validation import checks as checks_mod
from mlops_ci.validation import policy
from tests.validation.helpers import SETTINGS, make_problem, parse


def test_holm_family_is_the_blocking_no_regression_checks():
    problem, frame = make_problem()
    specs = parse(
        [
            {"metric": "accuracy"},
            {"metric": "roc-auc"},
            {"metric": "log-loss"},
            {"metric": "brier", "rule": "non-inferiority", "margin": 0.01},
            {"metric": "f1", "blocking": False},
        ]
    )
    outcomes = policy.evaluate(problem, specs, [], frame, SETTINGS, first_model=False)
    by = {o.name: o.finding for o in outcomes}
    family = sorted(
        by[n].details["alpha_adjusted"]
        for n in ("accuracy no-regression", "roc-auc no-regression", "log-loss no-regression")
    )
    assert family == pytest.approx([0.05 / 3, 0.05 / 2, 0.05])
    assert all(
        by[n].details["multiple_testing"] == "holm"
        for n in ("accuracy no-regression", "log-loss no-regression")
    )
    # Burden-of-proof and non-blocking checks keep their own alpha.
    assert by["brier non-inferiority"].details["alpha_adjusted"] == 0.05
    assert "multiple_testing" not in by["f1 no-regression"].details
    # The reported interval is at the adjusted level (wider for a smaller alpha).
    acc = by["accuracy no-regression"]
    level = 1 - acc.details["alpha_adjusted"]
    assert f"{100 * level:.2f}".rstrip("0").rstrip(".") + "%" in acc.message
    assert by["accuracy no-regression"].details["tests"]["mcnemar"]["pvalue"] is not None
    assert by["roc-auc no-regression"].details["tests"]["delong"]["pvalue"] is not None
    assert set(by["log-loss no-regression"].details["tests"]) == {"paired_t", "wilcoxon"}


def test_a_worse_candidate_fails_blocking_checks_and_warns_on_non_blocking_ones():
    problem, frame = make_problem(worse=0.5)
    specs = parse([{"metric": "roc-auc"}, {"metric": "f1", "blocking": False}])
    outcomes = policy.evaluate(problem, specs, [], frame, SETTINGS, first_model=False)
    statuses = {o.name: o.finding.status for o in outcomes}
    assert statuses == {"roc-auc no-regression": "failed", "f1 no-regression": "warning"}
    check = outcomes[0].finding
    assert check.interval[1] < 0 and check.value < check.baseline
    assert check.details["difference"] == pytest.approx(check.value - check.baseline)


def test_slices_run_the_checks_per_segment_and_small_segments_are_not_judged():
    problem, frame = make_problem()
    specs = parse([{"metric": "accuracy"}])
    slices = checks_mod.parse_slices([{"column": "group", "blocking": True}], specs)
    outcomes = policy.evaluate(problem, specs, slices, frame, SETTINGS, first_model=False)
    by = {o.name: o.finding for o in outcomes}
    small = by["accuracy no-regression [group=c]"]
    assert small.status == "skipped" and small.message.startswith("not enough data:")
    assert by["accuracy no-regression [group=a]"].details["kind"] == "slice"
    details = by["accuracy no-regression [group=a]"].details
    assert (details["slice"], details["slice_column"], details["slice_segment"]) == ("group=a", "group", "a")
    # blocking slices join the Holm family: three members (overall, a, b)
    assert sorted(by[n].details["alpha_adjusted"] for n in by if "[group=c]" not in n) == pytest.approx(
        [0.05 / 3, 0.05 / 2, 0.05]
    )


def test_first_model_runs_only_absolute_checks():
    problem, frame = make_problem(with_baseline=False)
    specs = parse([{"metric": "accuracy"}, {"metric": "accuracy", "rule": "floor", "threshold": 0.7}])
    outcomes = policy.evaluate(problem, specs, [], frame, SETTINGS, first_model=True)
    comparison, floor = (o.finding for o in outcomes)
    assert comparison.status == "skipped" and comparison.message.startswith("first model")
    assert floor.status == "passed" and floor.interval[0] >= 0.7 and floor.details["kind"] == "absolute"


def test_labels_only_models_skip_probability_metrics_with_a_reason():
    problem, frame = make_problem()
    problem.baseline.scores = None
    specs = parse([{"metric": "roc-auc"}])
    (outcome,) = policy.evaluate(problem, specs, [], frame, SETTINGS, first_model=False)
    assert outcome.finding.status == "skipped"
    assert "the baseline gives no probabilities" in outcome.finding.message


def test_a_failing_custom_metric_is_a_usage_error_naming_it(tmp_path):
    (tmp_path / "broken.py").write_text("def score(y_true, y_pred):\n    return [1.0]\n")
    specs = checks_mod.parse_checks(
        [{"metric": "broken:score", "higher-is-better": True, "per-row": True}],
        primary_metric="accuracy",
        project_dir=tmp_path,
        task="classification",
    )
    problem, frame = make_problem(n=300)
    with pytest.raises(UsageError, match=r"^checks: custom metric 'broken:score' returned shape \(1,\)"):
        policy.evaluate(problem, specs, [], frame, SETTINGS, first_model=False)
