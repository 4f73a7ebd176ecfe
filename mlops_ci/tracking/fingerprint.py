"""Content fingerprints of data and code: what makes a training run reproducible and
lets `train` recognise that nothing changed since an earlier run."""

from __future__ import annotations

import csv
import fnmatch
import hashlib
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from mlops_ci.errors import SettingError, UsageError
from mlops_ci.gitinfo import list_files

CHUNK = 1 << 20
SCHEMA_SAMPLE_ROWS = 1000
# Folders never part of a project's code when git cannot tell us what is tracked.
SKIPPED_DIRS = {
    ".git",
    ".mlops-ci",
    "__pycache__",
    ".venv",
    "venv",
    "node_modules",
    ".tox",
    ".pytest_cache",
    ".ruff_cache",
    "mlruns",
    "mlartifacts",
}


@dataclass(frozen=True)
class DataFingerprint:
    """The identity of one declared data file or folder."""

    path: str
    sha256: str
    size_bytes: int
    files: int
    rows: int | None = None
    columns: dict[str, str] | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def fingerprint_data(path: Path, *, project_dir: Path) -> DataFingerprint:
    """sha256 of a file, or of a folder's sorted (relative path, content) pairs, plus row
    count and column types for CSV and Parquet files."""
    label = _relative(path, project_dir)
    if not path.exists():
        raise SettingError(f"data path {label} does not exist", setting="data")
    if path.is_file():
        rows, columns = describe_table(path)
        return DataFingerprint(label, sha256_file(path), path.stat().st_size, 1, rows, columns)
    digest = hashlib.sha256()
    size = count = 0
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(file.relative_to(path).as_posix().encode() + b"\0")
        digest.update(sha256_file(file).encode() + b"\n")
        size += file.stat().st_size
        count += 1
    if count == 0:
        raise SettingError(f"data folder {label} is empty", setting="data")
    return DataFingerprint(label, digest.hexdigest(), size, count)


def describe_table(path: Path) -> tuple[int | None, dict[str, str] | None]:
    """Row count and column types of a CSV or Parquet file; (None, None) for other files."""
    suffix = path.suffix.lower()
    if suffix in (".csv", ".tsv"):
        return _describe_csv(path, delimiter="\t" if suffix == ".tsv" else ",")
    if suffix in (".parquet", ".pq"):
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError:
            return None, None
        try:
            metadata = pq.read_metadata(path)
        except (OSError, ValueError, pa.ArrowException) as exc:
            raise UsageError(f"cannot read Parquet file {path}: {exc}") from None
        schema = metadata.schema.to_arrow_schema()
        return metadata.num_rows, {field.name: str(field.type) for field in schema}
    return None, None


def _describe_csv(path: Path, *, delimiter: str) -> tuple[int, dict[str, str]]:
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.reader(handle, delimiter=delimiter)
            header = next(reader, None)
            if header is None:
                raise UsageError(f"data file {path} is empty; give a CSV file with a header row")
            kinds: list[str] = ["int"] * len(header)
            rows = 0
            for row in reader:
                if rows < SCHEMA_SAMPLE_ROWS:
                    for i, cell in enumerate(row[: len(header)]):
                        kinds[i] = _widen(kinds[i], cell)
                rows += 1
    except UnicodeDecodeError:
        raise UsageError(f"data file {path} is not UTF-8 text; save the CSV as UTF-8") from None
    except csv.Error as exc:
        raise UsageError(f"data file {path} is not valid CSV: {exc}") from None
    return rows, dict(zip(header, kinds, strict=True))


def _widen(kind: str, cell: str) -> str:
    cell = cell.strip()
    if kind == "string" or cell in ("", "?", "NA", "nan", "NaN"):
        return kind
    if kind == "int":
        try:
            int(cell)
            return "int"
        except ValueError:
            kind = "float"
    try:
        float(cell)
        return "float"
    except ValueError:
        return "string"


def combined_data_fingerprint(fingerprints: Iterable[DataFingerprint]) -> str:
    digest = hashlib.sha256()
    for fp in sorted(fingerprints, key=lambda f: f.path):
        digest.update(f"{fp.path}\0{fp.sha256}\n".encode())
    return digest.hexdigest()


def code_files(project_dir: Path, *, include: Sequence[str], exclude: Sequence[Path]) -> list[Path]:
    """The project's code: what git would commit below ``project_dir`` (or, outside a
    repository, every file not in a cache, virtualenv or VCS folder), narrowed to
    ``include`` patterns (fnmatch, against paths relative to the project) when given."""
    files = list_files(project_dir)
    if files is None:
        files = sorted(_walk(project_dir))
    excluded = [p.resolve() for p in exclude]
    selected = []
    for file in files:
        resolved = file.resolve()
        if any(resolved == ex or ex in resolved.parents for ex in excluded):
            continue
        relative = file.relative_to(project_dir).as_posix()
        if include and not any(_matches(relative, pattern) for pattern in include):
            continue
        selected.append(file)
    return selected


def _matches(relative: str, pattern: str) -> bool:
    pattern = pattern.rstrip("/")
    return fnmatch.fnmatch(relative, pattern) or relative.startswith(pattern + "/")


def _walk(root: Path) -> Iterable[Path]:
    for folder, dirs, names in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in SKIPPED_DIRS and not d.startswith("."))
        for name in names:
            yield Path(folder) / name


def fingerprint_code(project_dir: Path, files: Sequence[Path]) -> str:
    digest = hashlib.sha256()
    for file in sorted(files):
        digest.update(file.relative_to(project_dir).as_posix().encode() + b"\0")
        digest.update(sha256_file(file).encode() + b"\n")
    return digest.hexdigest()


def step_fingerprint(parts: Mapping[str, Any]) -> str:
    """sha256 of a canonical JSON rendering of everything that determines a step's output."""
    text = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _relative(path: Path, base: Path) -> str:
    try:
        return path.resolve().relative_to(base.resolve()).as_posix()
    except ValueError:
        return str(path)
