"""The lineage document and the digests of outputs."""

from __future__ import annotations

import hashlib
from pathlib import Path

from mlops_ci import __version__
from mlops_ci.scoring.lineage import LINEAGE_SCHEMA, FileRecord, lineage_document, output_digest


def test_a_file_digest_is_its_sha256_and_a_folder_digest_covers_its_parts_only(tmp_path):
    (tmp_path / "out.csv").write_text("a\n")
    assert output_digest(tmp_path / "out.csv") == hashlib.sha256(b"a\n").hexdigest()
    folder = tmp_path / "spark"
    folder.mkdir()
    (folder / "part-0.csv").write_text("a\n")
    (folder / "part-1.csv").write_text("b\n")
    first = output_digest(folder)
    (folder / "_SUCCESS").write_text("")
    (folder / ".part-0.csv.crc").write_text("checksum")
    assert output_digest(folder) == first
    (folder / "part-1.csv").write_text("c\n")
    assert output_digest(folder) != first


def test_the_document_records_model_inputs_outputs_and_times():
    inputs = [FileRecord(Path("/in/a.csv"), "ab" * 32, 10, "csv")]
    outputs = [FileRecord(Path("/out/a.csv"), "cd" * 32, 10, "csv")]
    document = lineage_document(
        model={"uri": "models:/m/3", "version": "3", "fallback": None},
        engine={"name": "local", "workers": 2},
        inputs=inputs,
        outputs=outputs,
        keep_columns=["id"],
        prediction_columns=["prediction"],
        started_at="2026-12-07T10:00:00+00:00",
        finished_at="2026-12-07T10:00:05+00:00",
        duration_s=5.0004,
    )
    assert document["schema"] == LINEAGE_SCHEMA
    assert document["model"] == {"uri": "models:/m/3", "version": "3"}
    assert document["inputs"] == [{"path": "/in/a.csv", "format": "csv", "rows": 10, "sha256": "ab" * 32}]
    assert document["rows"] == 10 and document["mlops_ci_version"] == __version__
    assert document["duration_s"] == 5.0
