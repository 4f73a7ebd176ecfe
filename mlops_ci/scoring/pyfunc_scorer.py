"""The fallback scorer: MLflow pyfunc, for models that do not convert to ONNX. Slower and
it unpickles the model, but any MLflow model scores. Its output is the one column
``prediction`` (pyfunc exposes ``predict`` only)."""

from __future__ import annotations

from typing import Any

import numpy as np

from mlops_ci.scoring import ScoringInputError
from mlops_ci.scoring.onnx_scorer import PREDICTION


class PyfuncScorer:
    kind = "pyfunc"

    def __init__(self, uri: str) -> None:
        import mlflow.pyfunc

        self.model = mlflow.pyfunc.load_model(uri)
        self.input_columns = self._input_columns()

    # What the predictions' type is, pyfunc tells only when they come: text for an empty file.
    output_fields = [(PREDICTION, "string")]

    def _input_columns(self) -> tuple[str, ...]:
        schema = self.model.metadata.get_input_schema()
        if schema is None or not schema.has_input_names():
            return ()
        return tuple(schema.input_names())

    def read_types(self) -> dict[str, Any]:
        """pyarrow types to parse CSV columns as: strings and numbers as the signature says."""
        import pyarrow as pa

        schema = self.model.metadata.get_input_schema()
        types: dict[str, Any] = {}
        for spec in schema.inputs if schema is not None and schema.has_input_names() else ():
            type_name = getattr(spec.type, "name", str(spec.type))
            types[spec.name] = (
                pa.string()
                if type_name in ("string", "binary", "datetime")
                else pa.bool_()
                if type_name == "boolean"
                else pa.int64()
                if type_name in ("long", "integer")
                else pa.float64()
            )
        return types

    def score_frame(self, frame: Any) -> dict[str, np.ndarray]:
        from mlflow.exceptions import MlflowException

        try:
            predictions = self.model.predict(frame)
        except MlflowException as exc:
            raise ScoringInputError(f"the model refused the rows: {str(exc).splitlines()[0][:300]}") from None
        values = np.asarray(getattr(predictions, "values", predictions))
        if values.ndim > 1:
            values = values.reshape(values.shape[0], -1)[:, 0]
        if values.dtype.kind == "f":
            values = values.astype(np.float64)
        return {PREDICTION: values}

    def score_batch(self, batch: Any) -> dict[str, np.ndarray]:
        columns = self.input_columns or tuple(batch.schema.names)
        return self.score_frame(batch.select(list(columns)).to_pandas())
