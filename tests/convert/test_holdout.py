"""Reading the holdout parity is measured on (convert.holdout), from CSV and Parquet."""

from __future__ import annotations

import pandas as pd
import pytest

from mlops_ci.convert.columns import InputColumn
from mlops_ci.convert.holdout import HoldoutError, holdout_columns, read_holdout
from mlops_ci.errors import UsageError

COLUMNS = [InputColumn("age", "float"), InputColumn("workclass", "string")]


@pytest.fixture(params=["csv", "parquet"])
def holdout(request, tmp_path):
    frame = pd.DataFrame(
        {"workclass": ["NA", "?", "Private"], "age": ["39", "x", "50"], "class": ["<=50K", ">50K", "<=50K"]}
    )
    path = tmp_path / f"holdout.{request.param}"
    if request.param == "csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path)
    return path


def test_the_columns_are_read_without_the_rows(holdout):
    assert holdout_columns(holdout) == ["workclass", "age", "class"]


def test_rows_come_typed_in_the_model_order_with_the_target_split_off(holdout):
    frame, target = read_holdout(holdout, target="class", columns=COLUMNS)
    assert list(frame.columns) == ["age", "workclass"] and list(target) == ["<=50K", ">50K", "<=50K"]
    # "NA" and "?" are categories, not missing values; an unparsable number is NaN.
    assert list(frame["workclass"]) == ["NA", "?", "Private"]
    assert frame["age"].iloc[0] == 39 and pd.isna(frame["age"].iloc[1])


def test_without_columns_or_target_every_column_is_kept(holdout):
    frame, target = read_holdout(holdout, target=None, columns=None)
    assert target is None and list(frame.columns) == ["workclass", "age", "class"]


@pytest.mark.parametrize(
    ("target", "columns", "message"),
    [
        ("salary", None, "target column 'salary' is not in holdout"),
        ("class", [InputColumn("hours", "float")], "lacks the model's column(s) hours"),
    ],
)
def test_a_missing_column_is_a_usage_error_in_domain_terms(holdout, target, columns, message):
    with pytest.raises(HoldoutError, match=message.replace("(", r"\(").replace(")", r"\)")) as caught:
        read_holdout(holdout, target=target, columns=columns)
    assert isinstance(caught.value, UsageError) and "--" not in str(caught.value)


def test_an_unreadable_holdout_is_named(tmp_path):
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"not parquet")
    with pytest.raises(HoldoutError, match=f"cannot read holdout {broken}"):
        holdout_columns(broken)
    with pytest.raises(HoldoutError, match=f"cannot read holdout {broken}"):
        read_holdout(broken, target=None, columns=None)
