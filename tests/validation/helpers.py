"""What the tests of mlops_ci.validation share: parsing checks, stand-in models and a
simulated classification problem."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from mlops_ci.validation import checks as checks_mod
from mlops_ci.validation import policy
from mlops_ci.validation.models import LoadedModel, ModelRef, Predictions
from mlops_ci.validation.problem import build_problem


def parse(raw, task="classification"):
    return checks_mod.parse_checks(raw, primary_metric="accuracy", project_dir=Path("."), task=task)


def fake_model(role, classes=None):
    return LoadedModel(ModelRef(role, f"models:/m/{role}"), Path("."), None, None, None, ())


def make_problem(seed=0, n=3000, worse=0.0, with_baseline=True):
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
        candidate_model=fake_model("candidate"),
        baseline_model=fake_model("baseline") if with_baseline else None,
        positive_label="yes",
    )
    return problem, frame


SETTINGS = policy.Settings(alpha=0.05, n_resamples=1000, seed=1, min_slice_rows=200)
