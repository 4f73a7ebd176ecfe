"""The input side of scoring: which files to read, whether they hold the columns the model
needs, and reading them in bounded batches (never a whole file at once).

CSV is read with pyarrow's streaming reader: the model's columns with the types the model
takes, carried-through columns as their text (a CSV has no types; text is lossless and
never fails half-way on a value that does not fit an inferred type). Parquet is read one
record batch at a time with the file's own types.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlops_ci.scoring import ScoringInputError

FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}
# Bytes per CSV block: the streaming reader yields about one record batch per block.
CSV_BLOCK_BYTES = 4 << 20


@dataclass(frozen=True)
class InputFile:
    path: Path
    format: str  # csv | parquet
    # Where its output goes, relative to the output folder (the path below the input
    # folder it was found in, or its name).
    relative: Path
    size_bytes: int


def discover_inputs(paths: Sequence[Path]) -> tuple[InputFile, ...]:
    """The files to score: each path is a CSV/Parquet file or a folder searched recursively
    for them (hidden and ``_``-prefixed entries skipped, as Spark and Hadoop write them)."""
    if not paths:
        raise ScoringInputError("no input to score: name at least one CSV/Parquet file or folder")
    found: list[InputFile] = []
    for path in paths:
        if path.is_dir():
            files = sorted(
                p
                for p in path.rglob("*")
                if p.is_file()
                and p.suffix.lower() in FORMATS
                and not any(part.startswith((".", "_")) for part in p.relative_to(path).parts)
            )
            if not files:
                raise ScoringInputError(f"input folder {path} holds no .csv or .parquet file")
            found += [_input(p, p.relative_to(path)) for p in files]
        elif path.is_file():
            if path.suffix.lower() not in FORMATS:
                raise ScoringInputError(f"input {path} is neither .csv nor .parquet")
            found.append(_input(path, Path(path.name)))
        else:
            raise ScoringInputError(f"input {path} does not exist")
    seen: dict[Path, Path] = {}
    for item in found:
        key = item.relative.with_suffix("")
        if key in seen and seen[key] != item.path:
            raise ScoringInputError(
                f"inputs {seen[key]} and {item.path} would write the same output {key}; "
                "score them into different output folders"
            )
        seen[key] = item.path
    return tuple(dict.fromkeys(found))


def _input(path: Path, relative: Path) -> InputFile:
    return InputFile(path.resolve(), FORMATS[path.suffix.lower()], relative, path.stat().st_size)


def file_digest(path: Path) -> str:
    """sha256 of the file's bytes, read in blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def columns_of(item: InputFile) -> list[str]:
    """The column names of a file, from its header or its Parquet schema."""
    import pyarrow as pa

    try:
        if item.format == "parquet":
            import pyarrow.parquet as pq

            return list(pq.ParquetFile(item.path).schema_arrow.names)
        import pyarrow.csv as pacsv

        with pacsv.open_csv(item.path, read_options=pacsv.ReadOptions(block_size=1 << 16)) as reader:
            return list(reader.schema.names)
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise ScoringInputError(f"cannot read {item.path}: {_first_line(exc)}") from None


def check_columns(items: Sequence[InputFile], needed: Sequence[str], keep: Sequence[str]) -> None:
    """Every file has the model's columns and the columns to carry through."""
    for item in items:
        present = set(columns_of(item))
        missing = [c for c in needed if c not in present]
        if missing:
            shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
            raise ScoringInputError(
                f"{item.path} lacks {len(missing)} column{'s' if len(missing) > 1 else ''} the model takes: {shown}"
            )
        absent = [c for c in keep if c not in present]
        if absent:
            raise ScoringInputError(f"{item.path} has no column {', '.join(absent)} to keep")


def parquet_rows(item: InputFile) -> int:
    import pyarrow.parquet as pq

    return pq.ParquetFile(item.path).metadata.num_rows


def read_batches(
    item: InputFile,
    *,
    model_types: Mapping[str, Any],
    keep: Sequence[str],
    batch_rows: int,
) -> Iterator[Any]:
    """pyarrow RecordBatches of the model's columns and the kept ones. ``model_types``:
    column -> pyarrow type to parse a CSV column as; empty (a model without a signature):
    every column is read, with the types pyarrow infers."""
    import pyarrow as pa

    columns = list(dict.fromkeys([*keep, *model_types])) if model_types else None
    try:
        if item.format == "parquet":
            import pyarrow.parquet as pq

            with pq.ParquetFile(item.path) as handle:
                yield from handle.iter_batches(batch_size=batch_rows, columns=columns)
            return
        import pyarrow.csv as pacsv

        types = {name: pa.string() for name in keep} if model_types else {}
        types.update(model_types)
        reader = pacsv.open_csv(
            item.path,
            read_options=pacsv.ReadOptions(block_size=CSV_BLOCK_BYTES),
            convert_options=pacsv.ConvertOptions(
                column_types=types, include_columns=columns or [], strings_can_be_null=False
            ),
        )
        with reader:
            for batch in reader:
                yield from _split(batch, batch_rows)
    except (pa.ArrowException, OSError) as exc:
        raise ScoringInputError(f"cannot read {item.path}: {_first_line(exc)}") from None


def _split(batch: Any, rows: int) -> Iterator[Any]:
    for start in range(0, batch.num_rows, rows):
        yield batch.slice(start, rows)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__
