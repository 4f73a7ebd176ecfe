"""The one entry point of batch scoring: a ``ScoreRequest`` in, a ``ScoreOutcome`` out.

Order of work: find the inputs and plan the outputs, resolve the model, check every
input's columns (all before anything is written), score into temporary names, write the
lineage, then rename everything into place. A failure at any point leaves the output
folder as it was."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from mlops_ci.scoring.lineage import LINEAGE_FILE, FileRecord, lineage_document, output_digest, write_lineage
from mlops_ci.scoring.model import ScoringModel
from mlops_ci.scoring.progress import NoProgress, Progress
from mlops_ci.tracking.store import TrackingStore

if TYPE_CHECKING:
    from mlops_ci.scoring.local import Scorer

ENGINES = ("local", "spark")


@dataclass(frozen=True)
class ScoreRequest:
    model: str
    inputs: tuple[Path, ...]
    output_dir: Path
    cwd: Path
    keep_columns: tuple[str, ...] = ()
    output_format: str = "auto"  # auto | csv | parquet
    engine: str = "local"
    workers: int = 1
    batch_rows: int = 65536
    spark_master: str = "local[*]"
    # Partitions per input for Spark (None: Spark's default parallelism).
    spark_partitions: int | None = None


@dataclass(frozen=True)
class ScoreOutcome:
    model: ScoringModel
    scorer: str  # onnx | pyfunc
    engine: str
    inputs: tuple[FileRecord, ...]
    outputs: tuple[FileRecord, ...]
    prediction_columns: tuple[str, ...]
    lineage_path: Path
    duration_s: float

    @property
    def rows(self) -> int:
        return sum(item.rows for item in self.outputs)

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.duration_s if self.duration_s > 0 else 0.0


def score_batch(
    request: ScoreRequest, *, store: TrackingStore | None, progress: Progress | None = None
) -> ScoreOutcome:
    from mlops_ci.result import now_iso
    from mlops_ci.scoring.inputs import check_columns, discover_inputs, file_digest, parquet_rows
    from mlops_ci.scoring.local import check_names
    from mlops_ci.scoring.model import resolve_model
    from mlops_ci.scoring.outputs import Staging, plan_outputs

    progress = progress or NoProgress()
    started_at, started = now_iso(), time.perf_counter()
    inputs = discover_inputs(request.inputs)
    plans = plan_outputs(inputs, request.inputs, request.output_dir, request.output_format)
    model = resolve_model(request.model, store=store, cwd=request.cwd)
    scorer = _scorer(model)
    check_columns(inputs, scorer.input_columns, request.keep_columns)
    check_names(request.keep_columns, scorer)
    digests = [file_digest(item.path) for item in inputs]
    known = all(item.format == "parquet" for item in inputs)
    progress.start(sum(parquet_rows(item) for item in inputs) if known else None)
    with Staging() as staging:
        if request.engine == "spark":
            from mlops_ci.scoring.spark import score_spark

            rows = score_spark(
                plans,
                model,
                scorer,
                keep=request.keep_columns,
                staging=staging,
                master=request.spark_master,
                partitions=request.spark_partitions,
                progress=progress,
            )
        else:
            from mlops_ci.scoring.local import score_local

            rows = score_local(
                plans,
                scorer,
                keep=request.keep_columns,
                staging=staging,
                workers=request.workers,
                batch_rows=request.batch_rows,
                progress=progress,
            )
        progress.finish()
        staged = {final: temp for temp, final in staging.staged}
        outputs = tuple(
            FileRecord(plan.path, output_digest(staged[plan.path]), count, plan.format)
            for plan, count in zip(plans, rows, strict=True)
        )
        input_records = tuple(
            FileRecord(item.path, digest, count, item.format)
            for item, digest, count in zip(inputs, digests, rows, strict=True)
        )
        duration = time.perf_counter() - started
        lineage_path = request.output_dir.resolve() / LINEAGE_FILE
        document = lineage_document(
            model={
                "uri": model.uri,
                "name": model.name,
                "version": model.version,
                "source": model.source,
                "scorer": scorer.kind,
                "onnx_sha256": _sha256(model.onnx_bytes) if model.onnx_bytes is not None else None,
                "onnx_fallback_reason": model.fallback_reason,
            },
            engine=_engine(request),
            inputs=input_records,
            outputs=outputs,
            keep_columns=request.keep_columns,
            prediction_columns=[name for name, _ in scorer.output_fields],
            started_at=started_at,
            finished_at=now_iso(),
            duration_s=duration,
        )
        write_lineage(staging.temp_for(lineage_path), document)
        staging.commit()
    return ScoreOutcome(
        model=model,
        scorer=scorer.kind,
        engine=request.engine,
        inputs=input_records,
        outputs=outputs,
        prediction_columns=tuple(name for name, _ in scorer.output_fields),
        lineage_path=lineage_path,
        duration_s=duration,
    )


def _scorer(model: ScoringModel) -> Scorer:
    if model.is_onnx:
        from mlops_ci.scoring.onnx_scorer import OnnxScorer

        return OnnxScorer(model.onnx_bytes, model.settings)
    from mlops_ci.scoring.pyfunc_scorer import PyfuncScorer

    return PyfuncScorer(model.pyfunc_uri)


def _engine(request: ScoreRequest) -> dict[str, object]:
    if request.engine == "spark":
        return {"name": "spark", "master": request.spark_master, "partitions": request.spark_partitions}
    return {"name": "local", "workers": request.workers, "batch_rows": request.batch_rows}


def _sha256(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()
