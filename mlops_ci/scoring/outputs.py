"""The output side of scoring: where each input's predictions go, streaming writers, and
the all-or-nothing commit (everything is written to temporary names in the output folder
and renamed only when every input scored; on any failure the temporaries are removed)."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from mlops_ci.scoring import ScoringInputError
from mlops_ci.scoring.inputs import InputFile

OUTPUT_FORMATS = ("auto", "csv", "parquet")
SUFFIXES = {"csv": ".csv", "parquet": ".parquet"}


@dataclass(frozen=True)
class OutputPlan:
    input: InputFile
    path: Path
    format: str  # csv | parquet


def plan_outputs(
    inputs: Sequence[InputFile], input_paths: Sequence[Path], output_dir: Path, output_format: str
) -> tuple[OutputPlan, ...]:
    """One output per input, at its relative path below ``output_dir``, in ``output_format``
    (``auto``: the input's format). The output folder may not lie inside an input folder
    (a second run would score the predictions) and no output may overwrite an input."""
    output_dir = output_dir.resolve()
    for given in input_paths:
        folder = given.resolve()
        if folder.is_dir() and (output_dir == folder or folder in output_dir.parents):
            raise ScoringInputError(
                f"output folder {output_dir} is inside input folder {folder}; choose another output folder"
            )
    if output_dir.exists() and not output_dir.is_dir():
        raise ScoringInputError(f"output {output_dir} exists and is not a folder")
    sources = {item.path for item in inputs}
    plans = []
    for item in inputs:
        fmt = item.format if output_format == "auto" else output_format
        path = output_dir / item.relative.with_suffix(SUFFIXES[fmt])
        if path in sources:
            raise ScoringInputError(
                f"the output for {item.path} would overwrite an input; choose another output folder"
            )
        plans.append(OutputPlan(item, path, fmt))
    return tuple(plans)


class Staging:
    """Temporary names for the outputs, renamed into place by ``commit``. Used as a context
    manager: leaving it without a commit (an exception) removes every temporary."""

    def __init__(self) -> None:
        self._token = uuid.uuid4().hex[:12]
        self._staged: list[tuple[Path, Path]] = []
        self.committed = False

    @property
    def staged(self) -> tuple[tuple[Path, Path], ...]:
        """(temporary, final) of every output staged so far."""
        return tuple(self._staged)

    def temp_for(self, final: Path) -> Path:
        final.parent.mkdir(parents=True, exist_ok=True)
        temp = final.parent / f".{final.name}.tmp-{self._token}"
        self._staged.append((temp, final))
        return temp

    def commit(self) -> None:
        """Rename every temporary to its final name (a folder output replaces the old folder)."""
        for temp, final in self._staged:
            if final.is_dir() and not final.is_symlink():
                shutil.rmtree(final)
            os.replace(temp, final)
        self.committed = True

    def discard(self) -> None:
        for temp, _ in self._staged:
            if temp.is_dir():
                shutil.rmtree(temp, ignore_errors=True)
            else:
                temp.unlink(missing_ok=True)

    def __enter__(self) -> Staging:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if not self.committed:
            self.discard()


class BatchWriter:
    """Appends record batches to one CSV or Parquet file; the schema is the first batch's
    (or ``empty_schema`` when no batch came: an input with a header and no rows)."""

    def __init__(self, path: Path, fmt: str, empty_schema: Any) -> None:
        self.path = path
        self.format = fmt
        self.empty_schema = empty_schema
        self._writer: Any = None
        self.rows = 0

    def write(self, table: Any) -> None:
        if self._writer is None:
            self._open(table.schema)
        self._writer.write(table)
        self.rows += table.num_rows

    def _open(self, schema: Any) -> None:
        if self.format == "parquet":
            import pyarrow.parquet as pq

            self._writer = pq.ParquetWriter(self.path, schema)
        else:
            import pyarrow.csv as pacsv

            self._writer = pacsv.CSVWriter(self.path, schema)

    def close(self) -> None:
        if self._writer is None:
            self._open(self.empty_schema)
        self._writer.close()
