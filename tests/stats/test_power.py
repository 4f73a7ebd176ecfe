"""The minimum detectable difference."""

from __future__ import annotations

import pytest

from mlops_ci import stats


def test_minimum_detectable_difference_formula():
    # z(0.975) + z(0.8) = 1.95996 + 0.84162
    assert stats.minimum_detectable_difference(0.01, alpha=0.05, power=0.8) == pytest.approx(
        0.0280158, rel=1e-5
    )
    # default power 1 - alpha: z(0.975) + z(0.95)
    assert stats.minimum_detectable_difference(0.01, alpha=0.05) == pytest.approx(0.0360481, rel=1e-5)
    assert stats.required_sample_size(0.01, standard_error=0.01, n=1000, power=0.8) == 7849
    with pytest.raises(ValueError, match="`power` must be in"):
        stats.minimum_detectable_difference(0.01, power=1.0)
