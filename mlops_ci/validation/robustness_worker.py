"""The process that feeds malformed batches to a model (see ``robustness``).

``python -m mlops_ci.validation.robustness_worker MODEL_DIR BATCHES_PICKLE NAME...`` loads
the model with ``mlflow.pyfunc`` and prints one JSON line per batch: ``{"batch", "outcome":
"result", "rows", "nan"}`` or ``{"batch", "outcome": "error", "error"}``. The parent enforces
the deadlines and notices crashes.
"""

from __future__ import annotations

import json
import pickle
import sys
from typing import Any


def _emit(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message, default=str) + "\n")
    sys.stdout.flush()


def _rows_and_nans(output: Any) -> tuple[int, int]:
    import numpy as np
    import pandas as pd

    values = output.to_numpy() if isinstance(output, (pd.DataFrame, pd.Series)) else np.asarray(output)
    rows = len(values) if values.ndim else 1
    try:
        nans = int(pd.isna(pd.DataFrame(values.reshape(rows, -1))).any(axis=1).sum()) if rows else 0
    except (TypeError, ValueError):
        nans = 0
    return rows, nans


def describe(exc: BaseException) -> str:
    """Exception type and the informative part of its message. MLflow's schema errors embed
    the whole batch before the reason ("... Error: Incompatible input types for column age")."""
    text = str(exc).strip()
    if "Error: " in text:
        text = text.rsplit("Error: ", 1)[1]
    text = text.split(" Hint: ", 1)[0]
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return f"{type(exc).__name__}: {lines[0][:300] if lines else ''}".rstrip(": ")


def main(argv: list[str]) -> int:
    model_dir, batches_file, *names = argv
    try:
        import mlflow.pyfunc

        model = mlflow.pyfunc.load_model(model_dir)
        with open(batches_file, "rb") as handle:
            batches = pickle.load(handle)  # written by our own parent process
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which decides
        _emit({"event": "load-failed", "error": describe(exc)})
        return 1
    _emit({"event": "loaded"})
    for name in names:
        try:
            output = model.predict(batches[name])
        except Exception as exc:  # noqa: BLE001 - a clean error is what we hope for
            _emit({"batch": name, "outcome": "error", "error": describe(exc)})
            continue
        rows, nans = _rows_and_nans(output)
        _emit({"batch": name, "outcome": "result", "rows": rows, "nan": nans})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
