"""The validation domain without MLflow: check and slice configuration, the holdout, the
policy (Holm across blocking no-regression checks, slices, first model), reports."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlops_ci import stats
from mlops_ci.config import load_config
from mlops_ci.errors import UsageError
from mlops_ci.report.junit import junit_xml
from mlops_ci.result import StepResult
from mlops_ci.runner import full_config_schema
from mlops_ci.validation import checks as checks_mod
from mlops_ci.validation import data, policy
from mlops_ci.validation.models import LoadedModel, ModelRef, Predictions
from mlops_ci.validation.problem import build_problem
from mlops_ci.validation.report import markdown_report
from mlops_ci.validation.slices import segments


def test_builtin_metric_names_match_the_stats_library():
    assert stats.metric_names() == checks_mod.BUILTIN_METRICS


def parse(raw, task="classification"):
    return checks_mod.parse_checks(raw, primary_metric="accuracy", project_dir=Path("."), task=task)


def test_default_policy_is_no_regression_on_the_primary_metric():
    (spec,) = parse([])
    assert (spec.metric, spec.rule, spec.margin, spec.blocking) == ("accuracy", "no-regression", 0.0, True)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (
            [{"metric": "acuracy"}],
            r"validate.checks\[0\].metric 'acuracy' is not a built-in metric; did you mean 'accuracy'\?",
        ),
        ([{"metric": "roc-auc", "rule": "non-inferiority"}], r"non-inferiority needs a positive `margin`"),
        ([{"metric": "accuracy", "rule": "floor"}], r"rule floor needs `threshold`"),
        (
            [{"metric": "accuracy", "rule": "floor", "margin": 0.1, "threshold": 0.8}],
            r"takes `threshold`, not `margin`",
        ),
        ([{"metric": "accuracy", "threshold": 0.8}], r"rule no-regression takes `margin`, not `threshold`"),
        ([{"metric": "accuracy"}, {"metric": "accuracy"}], r"two checks are named 'accuracy no-regression'"),
        (
            [{"metric": "accuracy", "alpha": 0.01}],
            r"blocking no-regression checks share the family-wise validate.alpha",
        ),
        (["accuracy"], r"validate.checks\[0\] must be a mapping"),
        ([{"metric": "nosuchmodule:f", "higher-is-better": True}], r"cannot import nosuchmodule"),
        ([{"metric": "m:f"}], r"custom metric m:f needs `higher-is-better"),
    ],
)
def test_check_configuration_errors_name_the_key(raw, message):
    with pytest.raises(UsageError, match=message):
        parse(raw)


def test_schema_rejects_unknown_keys_in_checks(tmp_path):
    path = tmp_path / "mlops-ci.yaml"
    path.write_text("validate:\n  checks:\n    - metric: accuracy\n      margn: 0.01\n")
    with pytest.raises(
        UsageError, match=r"unknown key 'validate.checks.0.margn' in .*; did you mean 'margin'\?"
    ):
        load_config(None, cwd=tmp_path, schema=full_config_schema())
    path.write_text("validate:\n  checks:\n    - metric: accuracy\n      rule: worse\n")
    with pytest.raises(UsageError, match=r"'validate.checks.0.rule' in .* must be one of no-regression"):
        load_config(None, cwd=tmp_path, schema=full_config_schema())
    path.write_text("validate:\n  slices:\n    - column: age\n      bins: 1\n")
    with pytest.raises(UsageError, match=r"validate.slices.0.bins"):
        load_config(None, cwd=tmp_path, schema=full_config_schema())


def test_the_example_config_is_valid():
    from tests.helpers import EXAMPLE

    config = load_config(None, cwd=EXAMPLE, schema=full_config_schema())
    specs = parse(config.section("validate")["checks"])
    assert [s.rule for s in specs] == [
        "no-regression",
        "no-regression",
        "non-inferiority",
        "floor",
        "no-regression",
    ]
    slices = checks_mod.parse_slices(config.section("validate")["slices"], specs)
    assert slices[1].bins == (17.0, 30.0, 45.0, 60.0, 91.0)


def test_custom_metric_from_the_project(tmp_path):
    (tmp_path / "business.py").write_text(
        "import numpy as np\n"
        "def cost(y_true, y_pred):\n"
        "    return np.where((y_pred == 'no') & (y_true == 'yes'), 5.0, (y_pred != y_true) * 1.0)\n"
    )
    (spec,) = checks_mod.parse_checks(
        [{"metric": "business:cost", "higher-is-better": False, "per-row": True}],
        primary_metric="accuracy",
        project_dir=tmp_path,
        task="classification",
    )
    y = np.array(["yes", "no", "yes", "no"])
    assert spec.custom(y, np.array(["no", "no", "yes", "yes"])) == pytest.approx((5 + 0 + 0 + 1) / 4)
    assert spec.custom.higher_is_better is False


def test_slice_errors_and_segments():
    frame = pd.DataFrame({"sex": ["F", "M", None, "M"], "age": [20.0, 35.0, 50.0, np.nan]})
    specs = parse([])
    with pytest.raises(
        UsageError,
        match=r"validate.slices\[0\].checks names no check 'acc'; checks are: accuracy no-regression",
    ):
        checks_mod.parse_slices([{"column": "sex", "checks": ["acc"]}], specs)
    with pytest.raises(UsageError, match="strictly increasing"):
        checks_mod.parse_slices([{"column": "age", "bins": [30, 10]}], specs)
    (by_value, by_bins) = checks_mod.parse_slices(
        [{"column": "sex"}, {"column": "age", "bins": [0, 30, 60]}], specs
    )
    assert [s.label for s in segments(frame, by_value, where="w")] == ["F", "M", "(missing)"]
    binned = segments(frame, by_bins, where="w")
    assert [(s.label, s.rows) for s in binned] == [("[0, 30)", 1), ("[30, 60]", 2), ("(missing)", 1)]
    with pytest.raises(UsageError, match=r"w.column 'sx' is not in the holdout; did you mean 'sex'\?"):
        segments(frame, checks_mod.SliceSpec("sx", None, (), False, None), where="w")


def test_holdout_reading_errors(tmp_path):
    with pytest.raises(UsageError, match="no holdout data"):
        data.load_holdout(None, "y")
    csv = tmp_path / "h.csv"
    csv.write_text("a,y\n1,\n2,x\n")
    holdout = data.load_holdout(csv, "y")
    assert holdout.rows == 1 and holdout.dropped == 1
    csv.write_text("a,y\n1,\n")
    with pytest.raises(UsageError, match="target column 'y' of holdout .* has no values"):
        data.load_holdout(csv, "y")
    odd = tmp_path / "h.json"
    odd.write_text("{}")
    with pytest.raises(UsageError, match="neither CSV .* nor Parquet"):
        data.load_holdout(odd, "y")
    frame = pd.DataFrame({"a": [1, 2], "y": ["x", "z"]})
    frame.to_parquet(tmp_path / "h.parquet")
    assert data.load_holdout(tmp_path / "h.parquet", "y").rows == 2


# --- policy ------------------------------------------------------------------------------


def _model(role, classes=None):
    return LoadedModel(ModelRef(role, f"models:/m/{role}"), Path("."), None, None, None, ())


def _problem(seed=0, n=3000, worse=0.0, with_baseline=True):
    rng = np.random.default_rng(seed)
    y = np.where(rng.random(n) < 0.3, "yes", "no").astype(object)
    signal = rng.normal(0, 1, n) + 1.2 * (y == "yes")
    p_b = 1 / (1 + np.exp(-(signal + rng.normal(0, 0.5, n) - 0.8)))
    p_c = 1 / (1 + np.exp(-(signal * (1 - worse) + rng.normal(0, 0.5 + worse, n) - 0.8)))
    classes = np.array(["no", "yes"], dtype=object)

    def pred(p):
        return Predictions(
            labels=np.where(p > 0.5, "yes", "no").astype(object), scores=np.c_[1 - p, p], classes=classes
        )

    frame = pd.DataFrame({"group": rng.choice(["a", "b", "c"], n, p=[0.6, 0.38, 0.02])})
    problem = build_problem(
        task="classification",
        y=y,
        candidate=pred(p_c),
        baseline=pred(p_b) if with_baseline else None,
        candidate_model=_model("candidate"),
        baseline_model=_model("baseline") if with_baseline else None,
        positive_label="yes",
    )
    return problem, frame


SETTINGS = policy.Settings(alpha=0.05, n_resamples=1000, seed=1, min_slice_rows=200)


def test_holm_family_is_the_blocking_no_regression_checks():
    problem, frame = _problem()
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
    by = {o.name: o.check for o in outcomes}
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
    problem, frame = _problem(worse=0.5)
    specs = parse([{"metric": "roc-auc"}, {"metric": "f1", "blocking": False}])
    outcomes = policy.evaluate(problem, specs, [], frame, SETTINGS, first_model=False)
    statuses = {o.name: o.check.status for o in outcomes}
    assert statuses == {"roc-auc no-regression": "failed", "f1 no-regression": "warning"}
    check = outcomes[0].check
    assert check.interval[1] < 0 and check.value < check.baseline
    assert check.details["difference"] == pytest.approx(check.value - check.baseline)


def test_slices_run_the_checks_per_segment_and_small_segments_are_not_judged():
    problem, frame = _problem()
    specs = parse([{"metric": "accuracy"}])
    slices = checks_mod.parse_slices([{"column": "group", "blocking": True}], specs)
    outcomes = policy.evaluate(problem, specs, slices, frame, SETTINGS, first_model=False)
    by = {o.name: o.check for o in outcomes}
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
    problem, frame = _problem(with_baseline=False)
    specs = parse([{"metric": "accuracy"}, {"metric": "accuracy", "rule": "floor", "threshold": 0.7}])
    outcomes = policy.evaluate(problem, specs, [], frame, SETTINGS, first_model=True)
    comparison, floor = (o.check for o in outcomes)
    assert comparison.status == "skipped" and comparison.message.startswith("first model")
    assert floor.status == "passed" and floor.interval[0] >= 0.7 and floor.details["kind"] == "absolute"


def test_labels_only_models_skip_probability_metrics_with_a_reason():
    problem, frame = _problem()
    problem.baseline.scores = None
    specs = parse([{"metric": "roc-auc"}])
    (outcome,) = policy.evaluate(problem, specs, [], frame, SETTINGS, first_model=False)
    assert outcome.check.status == "skipped"
    assert "the baseline gives no probabilities" in outcome.check.message


def test_different_label_sets_are_a_usage_error():
    candidate = _model("candidate")
    baseline = _model("baseline")
    candidate.sklearn = type("M", (), {"classes_": np.array(["no", "yes"])})()
    baseline.sklearn = type("M", (), {"classes_": np.array(["maybe", "no", "yes"])})()
    y = np.array(["no", "yes"], dtype=object)
    pred = Predictions(labels=y.copy())
    with pytest.raises(
        UsageError, match=r"the candidate predicts the labels \{no, yes\} but the baseline \{maybe, no, yes\}"
    ):
        build_problem(
            task="classification",
            y=y,
            candidate=pred,
            baseline=Predictions(labels=y.copy()),
            candidate_model=candidate,
            baseline_model=baseline,
            positive_label=None,
        )


def test_labels_of_different_types_are_compared_as_text():
    y = np.array([0, 1, 1, 0])
    problem = build_problem(
        task="classification",
        y=y,
        candidate=Predictions(labels=np.array(["0", "1", "0", "0"], dtype=object)),
        baseline=None,
        candidate_model=_model("candidate"),
        baseline_model=None,
        positive_label="1",
    )
    assert list(problem.y) == ["0", "1", "1", "0"] and problem.pos_label == "1"


def test_junit_and_markdown_reports():
    problem, frame = _problem(worse=0.5)
    specs = parse([{"metric": "roc-auc"}, {"metric": "accuracy", "rule": "floor", "threshold": 0.99}])
    outcomes = policy.evaluate(problem, specs, [], frame, SETTINGS, first_model=False)
    checks = [o.check for o in outcomes]
    result = StepResult(step="validate", status="failed", summary="blocked", checks=checks)
    root = ET.fromstring(junit_xml(result))
    cases = root.findall("./testsuite/testcase")
    assert [c.get("name") for c in cases] == ["roc-auc no-regression", "accuracy floor"]
    assert all(c.find("failure") is not None for c in cases)
    assert root.find("testsuite").get("failures") == "2"
    text = markdown_report(
        verdict="BLOCKED", headline="h", summary="blocked", checks=checks, notes=["first"], plots=[]
    )
    assert text.startswith("# mlops-ci validate: BLOCKED")
    assert "| roc-auc no-regression | ❌ failed |" in text and "> first" in text


def test_a_failing_custom_metric_is_a_usage_error_naming_it(tmp_path):
    (tmp_path / "broken.py").write_text("def score(y_true, y_pred):\n    return [1.0]\n")
    specs = checks_mod.parse_checks(
        [{"metric": "broken:score", "higher-is-better": True, "per-row": True}],
        primary_metric="accuracy",
        project_dir=tmp_path,
        task="classification",
    )
    problem, frame = _problem(n=300)
    with pytest.raises(
        UsageError, match=r"validate.checks: custom metric 'broken:score' returned shape \(1,\)"
    ):
        policy.evaluate(problem, specs, [], frame, SETTINGS, first_model=False)
