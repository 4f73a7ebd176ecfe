"""Slices: their errors and the segments they cut."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlops_ci.errors import UsageError
from mlops_ci.validation import checks as checks_mod
from mlops_ci.validation.slices import segments
from tests.validation.helpers import parse


def test_slice_errors_and_segments():
    frame = pd.DataFrame({"sex": ["F", "M", None, "M"], "age": [20.0, 35.0, 50.0, np.nan]})
    specs = parse([])
    with pytest.raises(
        UsageError,
        match=r"^slices\[0\].checks names no check 'acc'; checks are: accuracy no-regression",
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
