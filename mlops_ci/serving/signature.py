"""From what clients send (columns by their original names, or whole ONNX tensors) to
ONNX Runtime feeds, with the model's signature enforced: names, row counts, shapes and
datatypes. Every mismatch is a ServingError (422, or 413 for too many rows)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from itertools import chain
from typing import Any

import numpy as np

from mlops_ci.serving.errors import clip, too_large, unprocessable
from mlops_ci.serving.settings import ColumnSpec, ModelSettings, TensorSpec

NUMPY_TYPES: dict[str, Any] = {
    "BOOL": np.bool_,
    "UINT8": np.uint8,
    "UINT16": np.uint16,
    "UINT32": np.uint32,
    "UINT64": np.uint64,
    "INT8": np.int8,
    "INT16": np.int16,
    "INT32": np.int32,
    "INT64": np.int64,
    "FP16": np.float16,
    "FP32": np.float32,
    "FP64": np.float64,
    "BYTES": np.object_,
}
ONNX_TYPES = {
    "tensor(bool)": "BOOL",
    "tensor(uint8)": "UINT8",
    "tensor(uint16)": "UINT16",
    "tensor(uint32)": "UINT32",
    "tensor(uint64)": "UINT64",
    "tensor(int8)": "INT8",
    "tensor(int16)": "INT16",
    "tensor(int32)": "INT32",
    "tensor(int64)": "INT64",
    "tensor(float16)": "FP16",
    "tensor(float)": "FP32",
    "tensor(double)": "FP64",
    "tensor(string)": "BYTES",
}
NUMERIC_KINDS = frozenset("biuf")


_DATATYPE_OF = {np.dtype(t): name for name, t in NUMPY_TYPES.items() if t is not np.object_}


def datatype_of(array: np.ndarray) -> str:
    name = _DATATYPE_OF.get(array.dtype)
    if name is not None:
        return name
    return "BYTES" if array.dtype.kind in "OUS" else "FP64"


@dataclass(frozen=True)
class _Group:
    """One ONNX input and the columns that feed it (one, or several stacked on axis 1)."""

    spec: TensorSpec
    columns: tuple[ColumnSpec, ...]
    dtype: Any
    # One column as [rows, 1]: the usual one-input-per-column layout (a fast path).
    column_input: bool = False

    @property
    def stacked(self) -> bool:
        return len(self.columns) > 1 or (len(self.spec.shape) == 2 and self.spec.shape[1] not in (1, -1))


@dataclass(slots=True)
class WholeInput:
    """A name that, sent as one tensor, feeds one ONNX input on its own (the decoding plan
    of the quick path): a column with its own [rows, 1] input, or a whole ONNX input."""

    group: _Group
    datatype: str  # what the values are converted to (the column's, or the input's)
    column_input: bool  # a column as [rows, 1] (else: a whole ONNX input)
    key: str = ""  # the ONNX input's name
    strings: bool = False
    rank: int = 0
    tail: list[int] | None = None  # the fixed dimensions after the rows (None: some vary)

    def __post_init__(self) -> None:
        self.key = self.group.spec.name
        self.strings = self.datatype == "BYTES"
        expected = self.group.spec.shape
        self.rank = len(expected)
        if all(d > 0 for d in expected[1:]):
            self.tail = list(expected[1:])

    def feed(self, array: np.ndarray) -> np.ndarray | None:
        """The feed ``decode`` would make of ``array`` (already of ``datatype``), sent as a
        whole ONNX input, or None where ``decode`` would reject it."""
        expected = self.group.spec.shape
        if array.ndim == 1 and len(expected) == 2:
            if expected[1] == 1:
                array = array.reshape(-1, 1)
            elif expected[1] == array.shape[0] and expected[1] > 1:
                array = array.reshape(1, -1)
        if array.ndim != len(expected):
            return None
        for want, got in zip(expected[1:], array.shape[1:], strict=False):
            if want > 0 and got != want:
                return None
        return array


class InputDecoder:
    """Checks and converts one request's inputs. Built once per model; thread-safe."""

    def __init__(self, settings: ModelSettings, *, max_rows: int) -> None:
        self.max_rows = max_rows
        self.columns = {column.name: column for column in settings.columns}
        groups = []
        for spec in settings.onnx_inputs:
            fed = [c for c in settings.columns if c.onnx_input == spec.name]
            fed.sort(key=lambda c: c.index or 0)
            single = len(fed) == 1 and len(spec.shape) == 2 and spec.shape[1] in (1, -1)
            groups.append(_Group(spec, tuple(fed), NUMPY_TYPES[spec.datatype], single))
        self.groups = tuple(groups)
        self.by_onnx_name = {group.spec.name: group for group in self.groups}
        # A client reading the ONNX graph may name a one-column input by its ONNX name.
        self.aliases = {
            g.spec.name: g.columns[0].name
            for g in self.groups
            if len(g.columns) == 1 and g.spec.name not in self.columns
        }
        self.column_names = tuple(self.columns)
        # Inputs that take a fixed number of rows (checked on every request).
        self.fixed_rows = tuple(g for g in self.groups if g.spec.shape and g.spec.shape[0] > 0)
        self.whole_inputs = self._whole_inputs()
        # One ONNX input of all the columns side by side, in order: rows sent in that order
        # are that input's tensor already (converted in one call).
        self.stacked_columns: list[str] | None = None
        if len(self.groups) == 1 and len(self.groups[0].columns) > 1:
            group = self.groups[0]
            if (
                len(group.columns) == len(self.columns)
                and len(group.spec.shape) == 2
                and group.spec.shape[1] == len(group.columns)
                and all(c.index == i for i, c in enumerate(group.columns))
                and all(c.datatype == group.spec.datatype for c in group.columns)
            ):
                self.stacked_columns = [c.name for c in group.columns]

    def _whole_inputs(self) -> dict[str, WholeInput]:
        """Name -> plan, for every name whose tensor alone feeds one ONNX input, resolved the
        way ``decode`` resolves it (column names first, then one-column aliases, then
        ONNX input names); names ``decode`` would treat otherwise are left out."""
        plan: dict[str, WholeInput] = {}
        for group in self.groups:
            if group.column_input:
                column = group.columns[0]
                entry = WholeInput(group, column.datatype, True)
                plan[column.name] = entry
                if self.aliases.get(group.spec.name) == column.name:
                    plan[group.spec.name] = entry
            elif group.spec.name not in self.columns and group.spec.name not in self.aliases:
                plan[group.spec.name] = WholeInput(group, group.spec.datatype, False)
        return plan

    # -- public entry points ----------------------------------------------------------

    def decode(
        self,
        columns: Mapping[str, Any],
        tensors: Mapping[str, Any] | None = None,
        *,
        strict: bool = True,
        checked: bool = False,
    ) -> tuple[dict[str, np.ndarray], int]:
        """Feeds for ONNX Runtime and the row count.

        ``columns``: original column name (or a one-column input's ONNX name) -> values,
        one per row (a flat list, an [N, 1] nested list or an array). ``tensors``: ONNX
        input name -> a whole tensor (for inputs several columns feed). With ``strict``
        (V2), unknown names are an error; without (MLflow), extra columns are ignored.
        """
        tensors = tensors or {}
        arrays: dict[str, np.ndarray] = {}
        together = {} if checked else self._convert_together(columns)
        for name, values in columns.items():
            converted = together.get(name)
            if converted is not None:
                arrays[name] = self._column(self.columns[name], converted, True)
                continue
            column = self.columns.get(name)
            if column is None:
                alias = self.aliases.get(name)
                if alias is not None and alias not in columns:
                    column = self.columns[alias]
                elif name in self.by_onnx_name and name not in tensors:
                    tensors = {**tensors, name: values}
                    continue
                elif strict:
                    raise unprocessable(
                        f"unknown input {clip(name)!r}; this model takes {_names(self.column_names)}"
                    )
                else:
                    continue
            arrays[column.name] = self._column(column, values, checked)
        feeds: dict[str, np.ndarray] = {}
        rows: int | None = None
        for group in self.groups:
            if group.spec.name in tensors:
                array = self._tensor(group, tensors[group.spec.name])
            else:
                missing = [c.name for c in group.columns if c.name not in arrays]
                if missing:
                    all_missing = [c for c in self.column_names if c not in arrays]
                    raise unprocessable(
                        f"missing input {_names(all_missing)}; this model takes {_names(self.column_names)}"
                    )
                array = self._assemble(group, arrays)
            n = array.shape[0]
            if rows is None:
                rows = n
            elif n != rows:
                raise unprocessable(
                    f"inputs have different row counts ({rows} and {n}); send one value per row for each input"
                )
            feeds[group.spec.name] = array
        if rows is None or rows == 0:
            raise unprocessable("the request has no rows")
        if rows > self.max_rows:
            raise too_large(
                f"{rows} rows in one request; the server accepts at most {self.max_rows} (split the batch)"
            )
        fixed = [g for g in self.fixed_rows if g.spec.shape[0] != rows]
        if fixed:
            raise unprocessable(
                f"input {fixed[0].spec.name!r} takes exactly {fixed[0].spec.shape[0]} rows, got {rows}"
            )
        return feeds, rows

    def _convert_together(self, columns: Mapping[str, Any]) -> dict[str, np.ndarray]:
        """Columns sent as flat lists, converted with one numpy call per datatype (what
        ``_column`` would make of each; a column that needs more is left out)."""
        buckets: dict[str, list[tuple[str, list[Any]]]] = {}
        for name, values in columns.items():
            column = self.columns.get(name)
            if column is not None and type(values) is list and values:
                buckets.setdefault(column.datatype, []).append((name, values))
        out: dict[str, np.ndarray] = {}
        for datatype, parts in buckets.items():
            if len(parts) > 1:
                arrays = quick_arrays([values for _, values in parts], datatype)
                if arrays is not None:
                    out.update(zip((name for name, _ in parts), arrays, strict=True))
        return out

    def decode_rows(self, rows: list[Any], columns: list[str] | None) -> tuple[dict[str, np.ndarray], int]:
        """Row-major data: a list of rows (lists of values, in ``columns`` order, or in the
        model's column order when there is one ONNX input they all feed)."""
        if columns is None:
            if len(self.groups) == 1:
                return self.decode({}, {self.groups[0].spec.name: rows})
            columns = list(self.column_names)
        width = len(columns)
        for i, row in enumerate(rows):
            if not isinstance(row, list) or len(row) != width:
                raise unprocessable(f"row {i} must be a list of {width} values (one per column)")
        if len(set(columns)) != width:
            raise unprocessable("column names repeat")
        if rows and columns == self.stacked_columns:
            group = self.groups[0]
            array = quick_array(rows, group.spec.datatype)
            if array is not None and array.ndim == 2:
                return self.decode({}, {group.spec.name: array})
        data = (
            {name: [row[j] for row in rows] for j, name in enumerate(columns)}
            if rows
            else {n: [] for n in columns}
        )
        return self.decode(data, strict=False)

    def decode_records(self, records: list[Any]) -> tuple[dict[str, np.ndarray], int]:
        """A list of {column: value} objects."""
        if not records:
            raise unprocessable("the request has no rows")
        needed = [name for name in self.column_names]
        data: dict[str, list[Any]] = {name: [] for name in needed}
        for i, record in enumerate(records):
            if not isinstance(record, dict):
                raise unprocessable(f"record {i} must be an object of column: value")
            for name in needed:
                try:
                    data[name].append(record[name])
                except KeyError:
                    raise unprocessable(
                        f"record {i} has no {clip(name)!r}; this model takes {_names(needed)}"
                    ) from None
        return self.decode(data, strict=False)

    # -- conversions ---------------------------------------------------------------------

    def _column(self, column: ColumnSpec, values: Any, checked: bool = False) -> np.ndarray:
        """A 1-D array of one column's values, checked against its datatype (``checked``:
        already converted by ``to_array`` for this column's datatype)."""
        if checked and isinstance(values, np.ndarray):
            array = values
        else:
            array = quick_array(values, column.datatype) if type(values) is list else None
            if array is None:
                array = to_array(values, column.datatype, column.name)
        if array.ndim == 2 and array.shape[1] == 1:
            array = array[:, 0]
        elif array.ndim == 0:
            raise unprocessable(f"input {clip(column.name)!r} must be a list with one value per row")
        elif array.ndim != 1:
            raise unprocessable(
                f"input {clip(column.name)!r} must have shape [rows] or [rows, 1], got {list(array.shape)}"
            )
        return array

    def _tensor(self, group: _Group, values: Any) -> np.ndarray:
        array = quick_array(values, group.spec.datatype) if type(values) is list else None
        if array is None:
            array = to_array(values, group.spec.datatype, group.spec.name)
        return self._shape(group, array)

    def columns_of(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Back from feeds to the original columns (views, no copies): for the request log."""
        out: dict[str, np.ndarray] = {}
        for group in self.groups:
            feed = feeds.get(group.spec.name)
            if feed is None:
                continue
            if len(group.columns) == 1 and not group.stacked:
                out[group.columns[0].name] = feed.reshape(feed.shape[0], -1)[:, 0]
            else:
                for position, column in enumerate(group.columns):
                    out[column.name] = feed[:, column.index if column.index is not None else position]
        return out

    def _assemble(self, group: _Group, arrays: Mapping[str, np.ndarray]) -> np.ndarray:
        if len(group.columns) == 1:
            array = arrays[group.columns[0].name]
            if group.column_input:  # [rows, 1]: the usual one-input-per-column layout
                return array.reshape(-1, 1)
            return self._shape(group, array.reshape(-1, 1) if len(group.spec.shape) == 2 else array)
        return np.stack([arrays[c.name] for c in group.columns], axis=1).astype(group.dtype, copy=False)

    def _shape(self, group: _Group, array: np.ndarray) -> np.ndarray:
        expected = group.spec.shape
        if array.ndim == 1 and len(expected) == 2 and expected[1] == 1:
            array = array.reshape(-1, 1)
        elif array.ndim == 1 and len(expected) == 2 and expected[1] == array.shape[0] and expected[1] > 1:
            array = array.reshape(1, -1)  # one row sent flat
        if array.ndim != len(expected) or any(
            want > 0 and got != want for want, got in zip(expected[1:], array.shape[1:], strict=False)
        ):
            raise unprocessable(
                f"input {clip(group.spec.name)!r} must have shape {_shape_text(expected)}, got {list(array.shape)}"
            )
        return array


# Below this magnitude every value fits in float32, and every integer among them is exact
# in float64: converting through float64 changes no value.
_SCALE = 2.0**-540
_BOUND = (2.0**53 * _SCALE) ** 2
_FLOAT64 = np.dtype(np.float64)
_ONLY_STR = {str}


def quick_array(values: list[Any], datatype: str) -> np.ndarray | None:
    """What ``to_array`` returns for the usual request - a list of plain numbers or of
    strings - in fewer numpy calls, or None whenever ``to_array`` might answer otherwise
    (it then decides, with its messages)."""
    if datatype == "BYTES":
        if set(map(type, values)) != _ONLY_STR:  # also rules out nested lists
            return None
        return np.array(values, dtype=np.object_)
    try:
        array = np.asarray(values)
    except (ValueError, TypeError):
        return None
    return _quick_cast(array, datatype)


def quick_arrays(parts: list[list[Any]], datatype: str) -> list[np.ndarray] | None:
    """``quick_array`` of several flat lists of one datatype, in one numpy conversion:
    1-D arrays (views of one buffer), or None when any part needs ``to_array``."""
    if datatype == "BYTES":
        array = quick_array(list(chain.from_iterable(parts)), datatype)
    else:
        try:
            array = np.asarray(list(chain.from_iterable(parts)))
        except (ValueError, TypeError):
            return None
        # Integers of one part meet floats of another in float64: for FP32 ``_small`` keeps
        # them below 2**53 (exact); for FP64 it is the one rounding ``to_array`` makes too.
        array = _quick_cast(array, datatype)
    if array is None or array.ndim != 1:
        return None
    out, start = [], 0
    for part in parts:
        out.append(array[start : start + len(part)])
        start += len(part)
    return out if start == array.shape[0] else None


def _quick_cast(array: np.ndarray, datatype: str) -> np.ndarray | None:
    source = array.dtype
    if source == _FLOAT64:
        if datatype == "FP32":
            return array.astype(np.float32) if _small(array) else None  # to_array's checks all pass
        return array if datatype == "FP64" else None
    if source == NUMPY_TYPES[datatype] and source != np.object_:
        return array
    if (datatype == "FP32" or datatype == "FP64") and source.kind in "biu":
        return array.astype(NUMPY_TYPES[datatype])
    return None


def _small(array: np.ndarray) -> bool:
    """Every value finite and below 2**53 in magnitude. One dot product of the values
    scaled by 2**-540: its squares can neither overflow (no warning) nor, at the bound,
    underflow; NaN and infinity fail the comparison."""
    scaled = array.reshape(-1) * _SCALE
    return float(scaled.dot(scaled)) < _BOUND


def to_array(values: Any, datatype: str, name: str) -> np.ndarray:
    if isinstance(values, np.ndarray) and values.dtype == NUMPY_TYPES[datatype] and values.dtype.kind != "O":
        return values
    if datatype == "BYTES":
        return _strings(values, name)
    dtype = NUMPY_TYPES[datatype]
    if isinstance(values, np.ndarray):
        array = values
    else:
        try:
            array = np.asarray(values)
        except (ValueError, TypeError):
            raise unprocessable(f"input {clip(name)!r} has rows of different lengths") from None
    kind = array.dtype.kind
    if kind == "O" and dtype in (np.float16, np.float32, np.float64) and _numbers_or_nulls(array):
        # null is a missing value (NaN) in a float column, as in a DataFrame.
        try:
            array = array.astype(np.float64)
        except (ValueError, TypeError, OverflowError):
            raise unprocessable(f"input {clip(name)!r} takes {datatype} numbers") from None
        kind = "f"
    if kind not in NUMERIC_KINDS:
        raise unprocessable(f"input {clip(name)!r} takes {datatype} numbers; got {_kind_name(array)}")
    if dtype not in (np.float16, np.float32, np.float64, np.bool_) and kind == "f":
        finite = np.isfinite(array)
        if not finite.all() or not (array == np.floor(array)).all():
            raise unprocessable(f"input {clip(name)!r} takes {datatype} integers; got non-integral numbers")
    if kind in "iu" and dtype not in (np.float16, np.float32, np.float64, np.bool_):
        info = np.iinfo(dtype)
        if array.size and (array.min() < info.min or array.max() > info.max):
            raise unprocessable(f"input {clip(name)!r} takes {datatype}; a value is out of its range")
    try:
        if kind == "f" and np.dtype(dtype).itemsize < array.dtype.itemsize:
            with np.errstate(over="ignore", invalid="ignore"):  # narrowing may overflow: checked below
                result = array.astype(dtype, copy=False)
        else:
            result = array.astype(dtype, copy=False)
    except (ValueError, TypeError, OverflowError):
        raise unprocessable(f"input {clip(name)!r} takes {datatype} numbers") from None
    overflowed = kind == "f" and result.dtype != array.dtype and not np.isfinite(result).all()
    if overflowed and np.isfinite(array).all():
        raise unprocessable(f"input {clip(name)!r} takes {datatype}; a value is out of its range")
    return result


def _numbers_or_nulls(array: np.ndarray) -> bool:
    return all(v is None or type(v) in (int, float, bool) for v in array.ravel())


def _strings(values: Any, name: str) -> np.ndarray:
    if isinstance(values, np.ndarray) and values.dtype.kind in "OU":
        array = values.astype(np.object_, copy=False)
    else:
        if not isinstance(values, list):
            raise unprocessable(f"input {clip(name)!r} must be a list of strings")
        try:
            array = np.array(values, dtype=np.object_)
        except (ValueError, TypeError):
            raise unprocessable(f"input {clip(name)!r} has rows of different lengths") from None
    flat = array.ravel()
    for value in flat:
        if type(value) is not str:
            raise unprocessable(f"input {clip(name)!r} takes strings (BYTES); got {type(value).__name__}")
    return array


def _kind_name(array: np.ndarray) -> str:
    return {"U": "strings", "S": "bytes", "O": "mixed values", "M": "dates", "c": "complex numbers"}.get(
        array.dtype.kind, str(array.dtype)
    )


def _names(names: Any, limit: int = 8) -> str:
    names = [clip(n) for n in names]
    text = ", ".join(names[:limit])
    return text + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _shape_text(shape: tuple[int, ...]) -> str:
    return (
        "["
        + ", ".join("rows" if i == 0 and d < 0 else ("*" if d < 0 else str(d)) for i, d in enumerate(shape))
        + "]"
    )
