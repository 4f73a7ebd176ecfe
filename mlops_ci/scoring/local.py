"""The local engine: each input read in batches, the batches scored by a pool of threads
(ONNX Runtime releases the GIL while it computes), written in their original order.
At most ``2 * workers`` batches are in memory at a time, whatever the input's size."""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Protocol

import numpy as np

from mlops_ci.scoring import ScoringInputError
from mlops_ci.scoring.inputs import read_batches
from mlops_ci.scoring.outputs import BatchWriter, OutputPlan, Staging
from mlops_ci.scoring.progress import Progress


class Scorer(Protocol):
    kind: str
    input_columns: tuple[str, ...]
    output_fields: list[tuple[str, str]]

    def read_types(self) -> dict[str, Any]: ...

    def score_batch(self, batch: Any) -> dict[str, np.ndarray]: ...


def score_local(
    plans: Sequence[OutputPlan],
    scorer: Scorer,
    *,
    keep: Sequence[str],
    staging: Staging,
    workers: int,
    batch_rows: int,
    progress: Progress,
) -> list[int]:
    """Score every planned input into its staged output; the rows written per input."""
    rows: list[int] = []
    types = scorer.read_types()
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="mlops-ci-score") as pool:
        for plan in plans:
            writer = BatchWriter(staging.temp_for(plan.path), plan.format, _empty_schema(plan, scorer, keep))
            pending: deque[tuple[Any, int, Future]] = deque()
            offset = 0
            try:
                for batch in read_batches(plan.input, model_types=types, keep=keep, batch_rows=batch_rows):
                    pending.append((batch, offset, pool.submit(scorer.score_batch, batch)))
                    offset += batch.num_rows
                    while len(pending) >= 2 * workers:
                        _write(writer, pending.popleft(), plan, keep, progress)
                while pending:
                    _write(writer, pending.popleft(), plan, keep, progress)
            finally:
                for _, _, future in pending:
                    future.cancel()
                writer.close()
            rows.append(writer.rows)
    return rows


def _write(
    writer: BatchWriter,
    item: tuple[Any, int, Future],
    plan: OutputPlan,
    keep: Sequence[str],
    progress: Progress,
) -> None:
    batch, offset, future = item
    try:
        scored = future.result()
    except ScoringInputError as exc:
        raise ScoringInputError(
            f"{plan.input.path}, rows {offset + 1}-{offset + batch.num_rows}: {exc}"
        ) from None
    writer.write(output_table(batch, scored, keep))
    progress.advance(batch.num_rows)


def output_table(batch: Any, scored: dict[str, np.ndarray], keep: Sequence[str]) -> Any:
    """The kept columns as they were read, then the prediction columns."""
    import pyarrow as pa

    arrays = [batch.column(name) for name in keep]
    names = list(keep)
    for name, values in scored.items():
        arrays.append(pa.array(values))
        names.append(name)
    return pa.Table.from_arrays(arrays, names=names)


def _empty_schema(plan: OutputPlan, scorer: Scorer, keep: Sequence[str]) -> Any:
    import pyarrow as pa

    if plan.input.format == "parquet" and keep:
        import pyarrow.parquet as pq

        schema = pq.ParquetFile(plan.input.path).schema_arrow
        fields = [schema.field(name) for name in keep]
    else:
        fields = [pa.field(name, pa.string()) for name in keep]
    fields += [pa.field(name, getattr(pa, kind)()) for name, kind in scorer.output_fields]
    return pa.schema(fields)


def check_names(keep: Sequence[str], scorer: Scorer) -> None:
    """A kept column may not share its name with a prediction column."""
    clash = sorted(set(keep) & {name for name, _ in scorer.output_fields})
    if clash:
        raise ScoringInputError(
            f"column {clash[0]!r} to keep has the name of a prediction column; rename it in the input"
        )
