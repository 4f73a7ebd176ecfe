"""How small a difference a holdout can resolve, and how many rows a margin needs.

For a difference estimated with standard error ``se``, a test that uses a two-sided
``(1 - alpha)`` interval detects a true difference ``delta`` with probability ``power`` when
``delta >= (z[1 - alpha/2] + z[power]) * se``: that is the *minimum detectable difference*
(MDE). The standard error shrinks like ``1 / sqrt(n)``, so ``n`` rows resolve a margin ``m``
once ``n >= n_now * (mde_now / m) ** 2``.

The default power is ``1 - alpha``: the chance of blocking an equal model under a
non-inferiority rule is then at most ``alpha`` exactly when the MDE is at most the margin,
the same guarantee no-regression gives.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.stats import norm

from mlops_ci.stats._checks import check_int, check_number, check_probability


def z_sum(alpha: float, power: float) -> float:
    """``z[1 - alpha/2] + z[power]``."""
    return float(norm.ppf(1 - alpha / 2) + norm.ppf(power))


def minimum_detectable_difference(
    standard_error: float, *, alpha: float = 0.05, power: float | None = None
) -> float:
    """The smallest true difference that a two-sided ``(1 - alpha)`` interval of the
    given standard error excludes (from zero, or from a margin) with probability ``power``
    (default ``1 - alpha``)."""
    se = check_number("standard_error", standard_error, minimum=0.0)
    alpha = check_probability("alpha", alpha)
    power = 1 - alpha if power is None else check_probability("power", power)
    return z_sum(alpha, power) * se


def required_sample_size(
    margin: float, *, standard_error: float, n: int, alpha: float = 0.05, power: float | None = None
) -> int:
    """Rows needed for the MDE to shrink to ``margin``, extrapolated from ``n`` rows that gave
    ``standard_error``. Returns ``n`` itself when it is already enough."""
    margin = check_number("margin", margin)
    if margin <= 0:
        raise ValueError(f"`margin` must be positive to size a holdout, got {margin!r}")
    n = check_int("n", n)
    mde = minimum_detectable_difference(standard_error, alpha=alpha, power=power)
    if mde <= margin:
        return n
    return int(math.ceil(n * (mde / margin) ** 2))


def mde_array(se: np.ndarray, alpha: float, power: float) -> np.ndarray:
    return z_sum(alpha, power) * se
