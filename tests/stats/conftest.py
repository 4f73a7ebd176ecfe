"""Data shared by the tests of mlops_ci.stats."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(scope="module")
def binary():
    """Two correlated probabilistic classifiers with string labels and tied scores."""
    rng = np.random.default_rng(1)
    n = 800
    y = rng.choice(np.array(["no", "yes"]), n, p=[0.7, 0.3])
    signal = rng.normal(0, 1, n) + 1.2 * (y == "yes")
    p_a = np.round(1 / (1 + np.exp(-(signal + rng.normal(0, 0.7, n) - 1))), 2)
    p_b = np.round(1 / (1 + np.exp(-(signal + rng.normal(0, 0.7, n) - 1))), 2)
    return {
        "y": y,
        "p_a": p_a,
        "p_b": p_b,
        "l_a": np.where(p_a > 0.5, "yes", "no"),
        "l_b": np.where(p_b > 0.5, "yes", "no"),
    }
