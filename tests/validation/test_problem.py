"""Building the problem: label sets and label types."""

from __future__ import annotations

import numpy as np
import pytest

from mlops_ci.errors import UsageError
from mlops_ci.validation.models import Predictions
from mlops_ci.validation.problem import build_problem
from tests.validation.helpers import fake_model


def test_different_label_sets_are_a_usage_error():
    candidate = fake_model("candidate")
    baseline = fake_model("baseline")
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
        candidate_model=fake_model("candidate"),
        baseline_model=None,
        positive_label="1",
    )
    assert list(problem.y) == ["0", "1", "1", "0"] and problem.pos_label == "1"
