"""Conversion of trained models to ONNX, and the parity check between the two.

- ``loading``: a model URI (MLflow) or path to the native model, its signature and
  input example.
- ``columns``: the input columns a model takes, and their ONNX types.
- ``sklearn`` / ``boosters``: scikit-learn pipelines through skl2onnx, XGBoost and
  LightGBM through onnxmltools (when installed); ONNX models pass through.
- ``settings``: the serving settings (column -> ONNX input mapping, outputs, lineage).
- ``parity``: native vs ONNX predictions on the holdout; ``parity_checks``: whether they
  are within the tolerances, and the parity report.
- ``holdout``: reading the holdout rows the parity is measured on.

Heavy libraries (mlflow, scikit-learn, skl2onnx, onnx) are imported inside functions.
"""

from mlops_ci.errors import MlopsCiError, UsageError


class UnsupportedModelError(MlopsCiError):
    """The model (or one estimator or operator in it) cannot be converted to ONNX. The
    package step reports it as a failed conversion check (exit 1)."""

    def __init__(self, message: str, *, estimator: str | None = None) -> None:
        super().__init__(message)
        self.estimator = estimator


class ModelNotFoundError(UsageError):
    """The model a URI or path names does not exist. ``registered``: it was looked up in
    the model registry (the caller may suggest registering it first)."""

    def __init__(self, message: str, *, registered: bool = False) -> None:
        super().__init__(message)
        self.registered = registered


class NoParityRowsError(UsageError):
    """Parity needs rows to score: the model has no input example and no holdout was given."""
