"""Reading the holdout."""

from __future__ import annotations

import pandas as pd
import pytest

from mlops_ci.errors import UsageError
from mlops_ci.validation import data


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
