"""Argument checking, kept apart from the maths. Every error names the parameter.

The library raises ``ValueError``/``TypeError`` only; the validate step turns those into
usage errors where the values came from the user's configuration.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable
from typing import Any

import numpy as np

ALTERNATIVES = ("two-sided", "less", "greater")


def check_int(name: str, value: Any, *, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"`{name}` must be an integer, got {value!r}")
    if value < minimum:
        kind = "a positive integer" if minimum == 1 else f"an integer of at least {minimum}"
        raise ValueError(f"`{name}` must be {kind}, got {value!r}")
    return int(value)


def check_probability(name: str, value: Any, *, open_low: bool = True, open_high: bool = True) -> float:
    """A number in (0, 1) (ends included when not open)."""
    number = check_number(name, value)
    low_ok = number > 0 if open_low else number >= 0
    high_ok = number < 1 if open_high else number <= 1
    if not (low_ok and high_ok):
        low = "(0" if open_low else "[0"
        high = "1)" if open_high else "1]"
        raise ValueError(f"`{name}` must be in {low}, {high}, got {value!r}")
    return number


def check_number(name: str, value: Any, *, minimum: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"`{name}` must be a number, got {value!r}")
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"`{name}` must be finite, got {value!r}")
    if minimum is not None and number < minimum:
        raise ValueError(f"`{name}` must be at least {minimum:g}, got {value!r}")
    return number


def check_choice(name: str, value: Any, choices: Iterable[str]) -> str:
    options = tuple(choices)
    if value not in options:
        raise ValueError(f"`{name}` must be one of {', '.join(repr(c) for c in options)}; got {value!r}")
    return value


def check_alternative(value: Any) -> str:
    return check_choice("alternative", value, ALTERNATIVES)


def check_random_state(value: Any) -> np.random.SeedSequence:
    """None, an integer seed, a SeedSequence or a Generator -> a SeedSequence.

    Resampling spawns one child sequence per batch of resamples, so the result does not
    depend on how the work is split across threads.
    """
    if value is None:
        return np.random.SeedSequence()
    if isinstance(value, np.random.SeedSequence):
        return value
    if isinstance(value, np.random.Generator):
        return np.random.SeedSequence(value.integers(0, 2**63 - 1, size=4).tolist())
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        if value < 0:
            raise ValueError(f"`random_state` must be a non-negative integer, got {value!r}")
        return np.random.SeedSequence(int(value))
    raise TypeError(
        f"`random_state` must be None, an integer or a numpy Generator, got {type(value).__name__}"
    )


def as_1d_or_2d(name: str, values: Any, *, numeric: bool) -> np.ndarray:
    """An array of one observation per row (1-D), or a batch of problems (2-D: rows x problems)."""
    try:
        array = np.asarray(values)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"`{name}` must be array-like: {exc}") from None
    if array.ndim == 0:
        raise ValueError(f"`{name}` must be an array of one value per row, got a scalar")
    if numeric:
        if array.dtype.kind not in "biuf":
            try:
                array = array.astype(np.float64)
            except (TypeError, ValueError):
                raise TypeError(f"`{name}` must be numeric, got dtype {array.dtype}") from None
        array = array.astype(np.float64, copy=False)
        if not np.isfinite(array).all():
            bad = int((~np.isfinite(array)).sum())
            raise ValueError(f"`{name}` contains {bad} NaN or infinite value(s); drop or impute them first")
    elif array.dtype.kind == "f" and np.isnan(array).any():
        raise ValueError(f"`{name}` contains {int(np.isnan(array).sum())} missing value(s)")
    elif array.dtype.kind == "O" and any(v is None or (isinstance(v, float) and v != v) for v in array.flat):
        raise ValueError(f"`{name}` contains missing values (None or NaN)")
    return array


def check_same_rows(reference_name: str, reference: np.ndarray, **others: np.ndarray | None) -> None:
    for name, array in others.items():
        if array is None:
            continue
        if array.shape[0] != reference.shape[0]:
            raise ValueError(
                f"`{name}` has {array.shape[0]} rows but `{reference_name}` has {reference.shape[0]}; "
                "both models must be scored on the same rows"
            )
