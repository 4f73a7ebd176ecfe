"""The Spark engine: the same scoring as the local engine, on a Spark cluster (or a
local-mode session). The ONNX model's bytes are broadcast once; each Python worker builds
one ONNX Runtime session from them and scores its partitions inside ``mapInPandas``, with
the same ``OnnxScorer`` the local engine uses, so both engines give the same predictions.
A model without an ONNX form scores through MLflow's ``spark_udf`` instead.

Reading follows the local engine's rules: CSV columns the model takes are parsed as the
types it takes, carried-through columns stay text, an empty CSV field is an empty string
(Spark would read it as null); Parquet keeps its own types. Each input becomes a folder of
part files (in partition order, so the rows keep the input's order).
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Iterator, Sequence
from typing import Any

from mlops_ci.errors import UsageError
from mlops_ci.scoring import ScoringInputError
from mlops_ci.scoring.inputs import columns_of
from mlops_ci.scoring.model import ScoringModel
from mlops_ci.scoring.outputs import OutputPlan, Staging
from mlops_ci.scoring.progress import Progress

# One scorer per Python worker process and model (workers are reused across tasks).
_SCORERS: dict[str, Any] = {}


def spark_session(master: str = "local[*]") -> Any:
    """The active Spark session, or a new one on ``master`` (workers run this interpreter)."""
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    # PySpark starts its Python workers with PYSPARK_PYTHON (default: `python3` on PATH, which
    # may lack numpy, pyarrow and onnxruntime); the workers must run this interpreter.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    session = (
        SparkSession.builder.master(master)
        .appName("mlops-ci score")
        .config("spark.ui.enabled", "false")
        .config("spark.pyspark.python", sys.executable)
        .config("spark.pyspark.driver.python", sys.executable)
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.ui.showConsoleProgress", "false")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    return session


def score_spark(
    plans: Sequence[OutputPlan],
    model: ScoringModel,
    scorer: Any,
    *,
    keep: Sequence[str],
    staging: Staging,
    master: str,
    partitions: int | None,
    progress: Progress,
    session: Any = None,
) -> list[int]:
    """Score every planned input into a staged folder of part files; the rows per input."""
    try:
        from pyspark.errors import AnalysisException, PythonException
    except ImportError:
        raise UsageError("the Spark engine needs pyspark: pip install 'mlops-ci[spark]'") from None
    from py4j.protocol import Py4JJavaError

    spark = session or spark_session(master)
    broadcast = spark.sparkContext.broadcast(model.onnx_bytes) if model.is_onnx else None
    settings = model.settings.to_dict() if model.is_onnx else {}
    rows: list[int] = []
    for plan in plans:
        counter = spark.sparkContext.accumulator(0)
        target = str(staging.temp_for(plan.path))
        try:
            frame = _read(spark, plan, scorer, keep, partitions)
            if broadcast is not None:
                schema = _output_schema(frame.schema, keep, scorer.output_fields)
                scored = frame.mapInPandas(
                    _partition_scorer(broadcast, settings, list(keep), counter), schema
                )
            else:
                scored = _pyfunc_scored(spark, frame, model, scorer, keep)
            writer = scored.write.mode("overwrite")
            if plan.format == "csv":
                writer.option("header", True).option("emptyValue", "").csv(target)
                count = (
                    counter.value
                    if broadcast is not None
                    else spark.read.option("header", True).csv(target).count()
                )
            else:
                writer.parquet(target)
                count = counter.value if broadcast is not None else spark.read.parquet(target).count()
        except (Py4JJavaError, AnalysisException, PythonException) as exc:
            # Bad rows fail the Spark job (FAILFAST parsing, or a worker's ScoringInputError).
            raise ScoringInputError(f"cannot score {plan.input.path} on Spark: {_cause(exc)}") from None
        rows.append(count)
        progress.advance(count)
    return rows


def _pyfunc_scored(spark: Any, frame: Any, model: ScoringModel, scorer: Any, keep: Sequence[str]) -> Any:
    """A model without an ONNX form: MLflow's ``spark_udf`` (the model shipped to the
    workers, loaded once per worker). The prediction's type comes from scoring a few rows on
    the driver, so both engines write the same type."""
    import mlflow.pyfunc
    from pyspark.sql import functions as F

    sample = frame.limit(20).toPandas()
    kind = scorer.score_frame(sample)["prediction"].dtype.kind if len(sample) else "O"
    result_type = {"f": "double", "i": "long", "u": "long", "b": "boolean"}.get(kind, "string")
    udf = mlflow.pyfunc.spark_udf(spark, model.pyfunc_uri, env_manager="local", result_type=result_type)
    columns = list(scorer.input_columns) or [name for name in frame.columns if name not in keep]
    return frame.select(*keep, udf(*[F.col(name) for name in columns]).alias("prediction"))


def _read(spark: Any, plan: OutputPlan, scorer: Any, keep: Sequence[str], partitions: int | None) -> Any:
    from pyspark.sql import types as T

    if partitions:
        # Split each file into about ``partitions`` byte ranges (no shuffle: order is kept).
        split = max(1, math.ceil(_data_bytes(plan) / partitions))
        spark.conf.set("spark.sql.files.maxPartitionBytes", str(split))
    wanted = list(dict.fromkeys([*keep, *scorer.input_columns]))
    if plan.input.format == "parquet":
        return spark.read.parquet(str(plan.input.path)).select(*wanted)
    spark_types = {"string": T.StringType(), "double": T.DoubleType(), "int64": T.LongType()}
    model_types = {name: _type_name(kind) for name, kind in scorer.read_types().items()}
    fields = [
        T.StructField(name, spark_types[model_types.get(name, "string")], True)
        for name in columns_of(plan.input)
    ]
    frame = (
        spark.read.options(header=True, mode="FAILFAST", nullValue="\u0000", emptyValue="")
        .schema(T.StructType(fields))
        .csv(str(plan.input.path))
        .select(*wanted)
    )
    text = [name for name in wanted if model_types.get(name, "string") == "string"]
    return frame.fillna("", subset=text) if text else frame


def _data_bytes(plan: OutputPlan) -> int:
    """The bytes holding rows: a Parquet file's footer is left out, else the last byte range
    would hold only the footer and no row group."""
    if plan.input.format != "parquet":
        return plan.input.size_bytes
    import pyarrow.parquet as pq

    footer = pq.ParquetFile(plan.input.path).metadata.serialized_size + 8
    return max(1, plan.input.size_bytes - footer)


def _type_name(arrow_type: Any) -> str:
    import pyarrow as pa

    if pa.types.is_floating(arrow_type):
        return "double"
    if pa.types.is_integer(arrow_type):
        return "int64"
    return "string"


def _output_schema(input_schema: Any, keep: Sequence[str], outputs: Sequence[tuple[str, str]]) -> Any:
    from pyspark.sql import types as T

    kinds = {"string": T.StringType(), "int64": T.LongType(), "float64": T.DoubleType()}
    fields = [input_schema[name] for name in keep]
    fields += [T.StructField(name, kinds[kind], True) for name, kind in outputs]
    return T.StructType(fields)


def _partition_scorer(broadcast: Any, settings: dict[str, Any], keep: list[str], counter: Any):
    """The function ``mapInPandas`` runs on each partition (pickled to the workers)."""

    def score_partition(frames: Iterator[Any]) -> Iterator[Any]:
        import pandas as pd

        scorer = worker_scorer(broadcast.value, settings)
        for frame in frames:
            scored = scorer.score_frame(frame)
            out = {name: frame[name].to_numpy() for name in keep}
            out.update(scored)
            counter.add(len(frame))
            yield pd.DataFrame(out)

    return score_partition


def worker_scorer(onnx_bytes: bytes, settings: dict[str, Any]) -> Any:
    """The worker process's scorer for this model (built on first use)."""
    import hashlib

    from mlops_ci.scoring.onnx_scorer import OnnxScorer
    from mlops_ci.serving.settings import ModelSettings

    key = hashlib.sha256(onnx_bytes).hexdigest()
    scorer = _SCORERS.get(key)
    if scorer is None:
        scorer = _SCORERS[key] = OnnxScorer(onnx_bytes, ModelSettings.from_dict(settings))
    return scorer


def _cause(exc: BaseException) -> str:
    text = str(exc)
    for line in text.splitlines():
        if "ScoringInputError" in line or "Malformed" in line or "Exception:" in line:
            return line.strip()[:300]
    return (text.strip().splitlines() or [type(exc).__name__])[0][:300]
