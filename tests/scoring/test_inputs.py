"""Finding the input files, checking their columns, reading them in bounded batches."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pyarrow as pa
import pytest

from mlops_ci.scoring import ScoringInputError
from mlops_ci.scoring.inputs import (
    check_columns,
    columns_of,
    discover_inputs,
    file_digest,
    parquet_rows,
    read_batches,
)


def test_folders_are_searched_recursively_and_markers_and_hidden_files_skipped(tmp_path):
    (tmp_path / "in/sub").mkdir(parents=True)
    (tmp_path / "in/_temporary").mkdir()
    for name in (
        "in/a.csv",
        "in/sub/b.parquet",
        "in/.hidden.csv",
        "in/_SUCCESS",
        "in/_temporary/c.csv",
        "in/notes.txt",
    ):
        (tmp_path / name).write_text("x\n1\n")
    (tmp_path / "single.CSV").write_text("x\n1\n")
    found = discover_inputs([tmp_path / "in", tmp_path / "single.CSV"])
    assert [(f.relative.as_posix(), f.format) for f in found] == [
        ("a.csv", "csv"),
        ("sub/b.parquet", "parquet"),
        ("single.CSV", "csv"),
    ]
    assert found[0].size_bytes == 4 and found[0].path.is_absolute()
    # The same file named twice is scored once.
    assert len(discover_inputs([tmp_path / "single.CSV", tmp_path / "single.CSV"])) == 1


@pytest.mark.parametrize(
    ("layout", "given", "message"),
    [
        ({}, "missing.csv", "does not exist"),
        ({"data.json": "{}"}, "data.json", "neither .csv nor .parquet"),
        ({"empty/readme.txt": "x"}, "empty", "holds no .csv or .parquet file"),
    ],
)
def test_bad_inputs_are_named(tmp_path, layout, given, message):
    for name, text in layout.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    with pytest.raises(ScoringInputError, match=message):
        discover_inputs([tmp_path / given])
    with pytest.raises(ScoringInputError, match="no input"):
        discover_inputs([])


def test_two_inputs_that_would_write_the_same_output_are_refused(tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "x/a.csv").write_text("c\n1\n")
    (tmp_path / "x/a.parquet").write_text("")
    with pytest.raises(ScoringInputError, match="would write the same output"):
        discover_inputs([tmp_path / "x"])


def test_columns_are_checked_in_every_file(census_inputs):
    files = discover_inputs([census_inputs])
    assert [f.relative.as_posix() for f in files] == ["more/rows2.parquet", "rows.csv"]
    assert columns_of(files[0])[:3] == columns_of(files[1])[:3] == ["id", "age", "fnlwgt"]
    check_columns(files, ["age", "sex"], ["id"])
    with pytest.raises(ScoringInputError, match=r"lacks 7 columns the model takes: a, b, c, d, e and 2 more"):
        check_columns(files, ["age", *"abcdefg"], [])
    with pytest.raises(ScoringInputError, match="has no column row_id to keep"):
        check_columns(files, ["age"], ["row_id"])


def test_an_unreadable_file_is_a_usage_error(tmp_path):
    (tmp_path / "broken.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(ScoringInputError, match=r"cannot read .*broken.parquet"):
        columns_of(discover_inputs([tmp_path / "broken.parquet"])[0])


def test_csv_batches_are_bounded_typed_as_the_model_takes_and_keep_text(tmp_path):
    path = tmp_path / "rows.csv"
    path.write_text("id,age,city,extra\n007,31,,x\n008,,Paris,y\n009,40.5,Lyon,z\n")
    (item,) = discover_inputs([path])
    batches = list(
        read_batches(item, model_types={"age": pa.float64(), "city": pa.string()}, keep=["id"], batch_rows=2)
    )
    assert [b.num_rows for b in batches] == [2, 1]
    table = pa.Table.from_batches(batches)
    assert table.column_names == ["id", "age", "city"]
    # Kept CSV columns are their text (the leading zeros survive); an empty string field is
    # an empty string, an empty number is missing.
    assert table.column("id").to_pylist() == ["007", "008", "009"]
    assert table.column("city").to_pylist() == ["", "Paris", "Lyon"]
    assert table.column("age").to_pylist() == [31.0, None, 40.5]


def test_a_bad_value_in_a_csv_is_a_usage_error_naming_the_file(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("age\n1\n2\nforty\n")
    (item,) = discover_inputs([path])
    with pytest.raises(ScoringInputError, match=r"cannot read .*bad.csv"):
        list(read_batches(item, model_types={"age": pa.float64()}, keep=[], batch_rows=10))


def test_parquet_is_read_in_batches_with_its_own_types(census_inputs):
    (item,) = discover_inputs([census_inputs / "more"])
    assert parquet_rows(item) == 1500
    batches = list(read_batches(item, model_types={"age": pa.float64()}, keep=["id"], batch_rows=400))
    assert max(b.num_rows for b in batches) <= 400 and sum(b.num_rows for b in batches) == 1500
    assert batches[0].schema.names == ["id", "age"] and pa.types.is_integer(
        batches[0].schema.field("age").type
    )


def test_without_model_columns_every_column_is_read(tmp_path):
    path = tmp_path / "rows.csv"
    path.write_text("a,b\n1,x\n")
    (item,) = discover_inputs([path])
    (batch,) = read_batches(item, model_types={}, keep=[], batch_rows=10)
    assert batch.schema.names == ["a", "b"]


def test_file_digest_is_the_sha256_of_the_bytes(tmp_path):
    path = Path(tmp_path / "f.bin")
    data = bytes(range(256)) * 9000
    path.write_bytes(data)
    assert file_digest(path) == hashlib.sha256(data).hexdigest()
