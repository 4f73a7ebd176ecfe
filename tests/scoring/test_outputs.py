"""Planning outputs, and the all-or-nothing commit of staged files."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mlops_ci.scoring import ScoringInputError
from mlops_ci.scoring.inputs import discover_inputs
from mlops_ci.scoring.outputs import BatchWriter, Staging, plan_outputs


@pytest.fixture
def inputs(tmp_path):
    (tmp_path / "in/sub").mkdir(parents=True)
    (tmp_path / "in/a.csv").write_text("x\n1\n")
    (tmp_path / "in/sub/b.parquet").write_text("")
    return tmp_path / "in"


def test_outputs_mirror_the_inputs_in_the_chosen_format(tmp_path, inputs):
    files = discover_inputs([inputs])
    auto = plan_outputs(files, [inputs], tmp_path / "out", "auto")
    assert [(p.path.relative_to(tmp_path / "out").as_posix(), p.format) for p in auto] == [
        ("a.csv", "csv"),
        ("sub/b.parquet", "parquet"),
    ]
    csv = plan_outputs(files, [inputs], tmp_path / "out", "csv")
    assert [p.path.name for p in csv] == ["a.csv", "b.csv"]


def test_an_output_folder_inside_an_input_folder_or_over_an_input_is_refused(tmp_path, inputs):
    files = discover_inputs([inputs])
    with pytest.raises(ScoringInputError, match="is inside input folder"):
        plan_outputs(files, [inputs], inputs / "predictions", "auto")
    with pytest.raises(ScoringInputError, match="is inside input folder"):
        plan_outputs(files, [inputs], inputs, "auto")
    single = discover_inputs([inputs / "a.csv"])
    with pytest.raises(ScoringInputError, match="would overwrite an input"):
        plan_outputs(single, [inputs / "a.csv"], inputs, "auto")
    (tmp_path / "file").write_text("")
    with pytest.raises(ScoringInputError, match="is not a folder"):
        plan_outputs(files, [inputs], tmp_path / "file", "auto")


def test_staged_files_appear_only_on_commit(tmp_path):
    final = tmp_path / "out/a.csv"
    with Staging() as staging:
        temp = staging.temp_for(final)
        temp.write_text("new")
        assert temp.parent == final.parent and temp.name.startswith(".a.csv.tmp-")
        assert not final.exists()
        staging.commit()
    assert final.read_text() == "new" and list(final.parent.iterdir()) == [final]


def test_a_failure_removes_the_temporaries_and_leaves_the_old_outputs(tmp_path):
    final = tmp_path / "out/a.csv"
    final.parent.mkdir()
    final.write_text("old")
    folder = tmp_path / "out/b.parquet"
    with pytest.raises(RuntimeError), Staging() as staging:
        staging.temp_for(final).write_text("half")
        staging.temp_for(folder).mkdir()
        raise RuntimeError("scoring failed")
    assert final.read_text() == "old"
    assert sorted(p.name for p in final.parent.iterdir()) == ["a.csv"]


def test_a_folder_output_replaces_the_old_folder(tmp_path):
    final = tmp_path / "out/part-folder"
    (final / "old-part").mkdir(parents=True)
    with Staging() as staging:
        temp = staging.temp_for(final)
        temp.mkdir()
        (temp / "part-0").write_text("p")
        staging.commit()
    assert [p.name for p in final.iterdir()] == ["part-0"]


def test_the_writer_streams_batches_and_writes_the_schema_of_an_empty_input(tmp_path):
    batch = pa.record_batch({"id": ["a", "b"], "prediction": [1.0, 2.0]})
    writer = BatchWriter(tmp_path / "p.parquet", "parquet", None)
    writer.write(batch)
    writer.write(batch)
    writer.close()
    assert writer.rows == 4 and pq.read_table(tmp_path / "p.parquet").num_rows == 4
    empty = BatchWriter(tmp_path / "e.csv", "csv", batch.schema)
    empty.close()
    assert (tmp_path / "e.csv").read_text().strip() == '"id","prediction"'
