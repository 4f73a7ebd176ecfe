"""What produced a scored output, written beside it as ``lineage.json``: the model (pinned
URI, version, how it was scored), every input with its sha256 and row count, every output
with its own digest, the mlops-ci version, and when the run started and finished."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlops_ci.scoring.inputs import file_digest

LINEAGE_SCHEMA = "mlops-ci/score-lineage/v1"
LINEAGE_FILE = "lineage.json"


@dataclass(frozen=True)
class FileRecord:
    path: Path
    sha256: str
    rows: int
    format: str

    def to_dict(self) -> dict[str, Any]:
        return {"path": str(self.path), "format": self.format, "rows": self.rows, "sha256": self.sha256}


def output_digest(path: Path) -> str:
    """sha256 of a file; for a folder of part files (Spark), of each part's relative name
    and digest, in name order (hidden and ``_`` files, checksums and markers, left out)."""
    if path.is_file():
        return file_digest(path)
    digest = hashlib.sha256()
    parts = (p for p in path.rglob("*") if p.is_file() and not p.name.startswith((".", "_")))
    for part in sorted(parts):
        digest.update(f"{part.relative_to(path).as_posix()}\0{file_digest(part)}\n".encode())
    return digest.hexdigest()


def lineage_document(
    *,
    model: Mapping[str, Any],
    engine: Mapping[str, Any],
    inputs: Sequence[FileRecord],
    outputs: Sequence[FileRecord],
    keep_columns: Sequence[str],
    prediction_columns: Sequence[str],
    started_at: str,
    finished_at: str,
    duration_s: float,
) -> dict[str, Any]:
    from mlops_ci import __version__

    return {
        "schema": LINEAGE_SCHEMA,
        "model": {k: v for k, v in model.items() if v is not None},
        "engine": dict(engine),
        "inputs": [item.to_dict() for item in inputs],
        "outputs": [item.to_dict() for item in outputs],
        "rows": sum(item.rows for item in outputs),
        "keep_columns": list(keep_columns),
        "prediction_columns": list(prediction_columns),
        "mlops_ci_version": __version__,
        "started_at": started_at,
        "finished_at": finished_at,
        "duration_s": round(duration_s, 3),
    }


def write_lineage(path: Path, document: Mapping[str, Any]) -> None:
    path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")


def read_lineage(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))
