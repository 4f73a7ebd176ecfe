"""Batch scoring: a model version over CSV/Parquet files or folders, with lineage.

- ``inputs``: finding the input files, checking their columns, reading them in batches.
- ``model``: the model to score with: ONNX (a package folder, an .onnx file, or a model
  converted the way `mlops-ci package` converts it), else MLflow pyfunc.
- ``onnx_scorer`` / ``pyfunc_scorer``: one batch of rows in, prediction columns out.
- ``outputs``: output paths, streaming writers, and the all-or-nothing commit.
- ``local``: the local engine (batches scored in parallel threads).
- ``spark``: the Spark engine (ONNX Runtime inside ``mapInPandas``).
- ``lineage``: what produced the output, written beside it.
- ``progress``: a bar on a terminal, periodic log lines elsewhere.
- ``batch``: the one entry point, ``score_batch(request) -> ScoreOutcome``.

Heavy libraries (pyarrow, onnxruntime, mlflow, pyspark) are imported inside functions.
"""

from mlops_ci.errors import UsageError


class ScoringInputError(UsageError):
    """An input file is missing, unreadable, of an unknown format, or lacks a column the
    model needs. Raised before any output is committed."""
