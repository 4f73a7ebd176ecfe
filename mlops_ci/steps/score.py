"""`mlops-ci score`: batch inference of a model version over CSV/Parquet files or folders.

Three moves: the options become a checked ``ScoreRequest``; one call to
``scoring.batch.score_batch`` scores everything (all or nothing) and returns a
``ScoreOutcome``; ``score_result`` turns that into the step's outputs."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

from mlops_ci.errors import UsageError
from mlops_ci.options import Option
from mlops_ci.result import Check, StepResult
from mlops_ci.steps.base import Output, Step, StepContext

if TYPE_CHECKING:
    from mlops_ci.scoring.batch import ScoreOutcome, ScoreRequest

OPTIONS = (
    Option(
        "model",
        "Model to score with: a model URI (models:/<name>/<version>, models:/<name>@<alias>, runs:/...), "
        "a local MLflow model folder, an .onnx file or a folder from `mlops-ci package` (default: "
        "models:/<model-name>@champion)",
        metavar="MODEL",
    ),
    Option(
        "input",
        "CSV or Parquet files, or folders searched for them, to score",
        kind="paths",
        metavar="PATH",
    ),
    Option(
        "output",
        "Folder for the predictions (one file per input, same relative path) and lineage.json "
        "(default: <out-dir>/score)",
        kind="path",
        metavar="DIR",
    ),
    Option(
        "keep-columns",
        "Input columns copied into the output before the predictions, e.g. an id (CSV columns are "
        "copied as their text)",
        kind="list",
        metavar="COLUMN",
    ),
    Option(
        "output-format",
        "Format of the outputs (auto: the input's format)",
        choices=("auto", "csv", "parquet"),
        default="auto",
    ),
    Option(
        "engine",
        "Where to score: local (threads on this machine) or spark (a Spark session; pip install "
        "'mlops-ci[spark]')",
        choices=("local", "spark"),
        default="local",
        env="MLOPS_CI_SCORING_ENGINE",
    ),
    Option(
        "workers",
        "Threads scoring batches in parallel with the local engine (default: the number of CPUs)",
        kind="int",
        minimum=1,
    ),
    Option("batch-rows", "Most rows scored in one batch", kind="int", default=65536, minimum=1),
    Option(
        "spark-master",
        "Spark master URL when no Spark session is active",
        default="local[*]",
        metavar="URL",
    ),
    Option(
        "spark-partitions",
        "Partitions each input is split into on Spark (default: Spark's own split size)",
        kind="int",
        minimum=1,
    ),
)

OUTPUTS = (
    Output("output-dir", "Folder holding the predictions and lineage.json"),
    Output("lineage-path", "The lineage file: model, input and output digests, row counts, times"),
    Output("files", "Number of input files scored"),
    Output("rows", "Number of rows scored"),
    Output("rows-per-second", "Rows scored per second, reading and writing included"),
    Output("model-uri", "The model scored with (a registry alias pinned to its version)"),
    Output("model-version", "Registered version of the model, when it has one"),
    Output("scorer", "onnx (ONNX Runtime) or pyfunc (MLflow, when the model has no ONNX form)"),
    Output("engine", "local or spark"),
)


def run(ctx: StepContext) -> StepResult:
    from mlops_ci.convert import ModelNotFoundError
    from mlops_ci.scoring.batch import score_batch
    from mlops_ci.scoring.model import needs_store
    from mlops_ci.scoring.progress import progress_for

    request = score_request(ctx)
    store = ctx.store if needs_store(request.model, request.cwd) else None
    try:
        outcome = score_batch(request, store=store, progress=progress_for(sys.stderr))
    except ModelNotFoundError as exc:
        hint = "register it and set the alias, or pass --model" if exc.registered else "check --model"
        raise UsageError(f"{exc}; {hint}") from None
    return score_result(outcome)


def score_request(ctx: StepContext) -> ScoreRequest:
    from mlops_ci.scoring.batch import ScoreRequest

    opts = ctx.options
    if not opts.input:
        raise UsageError("nothing to score: pass --input with a CSV/Parquet file or a folder")
    model = opts.model
    if not model:
        if not opts.model_name:
            raise UsageError(
                "no model to score with: pass --model, or set model-name (then "
                "models:/<model-name>@champion is used)"
            )
        model = f"models:/{opts.model_name}@champion"
    return ScoreRequest(
        model=model,
        inputs=tuple(opts.input),
        output_dir=opts.output or (ctx.out_dir / "score"),
        cwd=ctx.cwd,
        keep_columns=tuple(dict.fromkeys(opts.keep_columns)),
        output_format=opts.output_format,
        engine=opts.engine,
        workers=opts.workers or os.cpu_count() or 1,
        batch_rows=opts.batch_rows,
        spark_master=opts.spark_master,
        spark_partitions=opts.spark_partitions,
    )


def score_result(outcome: ScoreOutcome) -> StepResult:
    model = outcome.model
    outputs = {
        "output-dir": str(outcome.lineage_path.parent),
        "lineage-path": str(outcome.lineage_path),
        "files": str(len(outcome.outputs)),
        "rows": str(outcome.rows),
        "rows-per-second": f"{outcome.rows_per_s:.0f}",
        "model-uri": model.uri,
        "model-version": model.version or "",
        "scorer": outcome.scorer,
        "engine": outcome.engine,
    }
    checks = []
    if model.fallback_reason:
        checks.append(
            Check(
                "onnx-scoring",
                "warning",
                message=f"scored with MLflow pyfunc: the model does not convert to ONNX ({model.fallback_reason})",
                blocking=False,
            )
        )
    how = "ONNX Runtime" if outcome.scorer == "onnx" else "MLflow pyfunc"
    files = len(outcome.outputs)
    summary = (
        f"scored {outcome.rows:,} rows from {files} file{'s' if files != 1 else ''} with {model.uri} "
        f"({how}, {outcome.engine} engine) in {outcome.duration_s:.1f} s ({outcome.rows_per_s:,.0f} rows/s); "
        f"predictions in {outcome.lineage_path.parent}"
    )
    artifacts = [str(outcome.lineage_path), *(str(item.path) for item in outcome.outputs)]
    return StepResult("score", "passed", summary, outputs, checks, artifacts)


STEP = Step(
    name="score",
    help="batch-score CSV/Parquet files or folders with a model version, with the output's lineage",
    description="Score CSV/Parquet files or folders with a model version (default: "
    "models:/<model-name>@champion): read in batches, scored in parallel with ONNX Runtime (the model "
    "converted the way `mlops-ci package` converts it; MLflow pyfunc when it does not convert), written "
    "to one output per input under --output, with lineage.json beside them (model version, input "
    "and output sha256 digests, row counts, mlops-ci version, times). Outputs appear only when every "
    "input scored. --engine spark runs the same scoring on Spark (ONNX Runtime inside mapInPandas; "
    "MLflow's spark_udf for a model without ONNX).",
    options=OPTIONS,
    outputs=OUTPUTS,
    run=run,
)
