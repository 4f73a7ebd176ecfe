"""Request decoding benchmark: what parsing and checking one request costs in the server
(mlops_ci.serving.protocol + signature), without the HTTP layer and without inference.

Compares a census-shaped request (14 columns: 6 numbers and 8 strings, one ONNX input per
column, as skl2onnx converts a ColumnTransformer) with the same 14 columns all numeric,
for the V2 protocol (one tensor per column) and MLflow's dataframe_split and
dataframe_records. Also shows the benchmark model's one-tensor V2 request (20 features).
Prints the best per-request time over several repeats and the mixed / numeric ratio
(the goal of issue 14: at most 2).

    .venv/bin/python benchmarks/decode_benchmark.py
    .venv/bin/python benchmarks/decode_benchmark.py --rows 1 64 --seconds 0.5

No model file is needed: the decoder is built from the settings alone.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from typing import Any

import orjson

from mlops_ci.serving import protocol
from mlops_ci.serving.settings import ColumnSpec, ModelSettings, TensorSpec
from mlops_ci.serving.signature import InputDecoder

NUMERIC = ["age", "fnlwgt", "education-num", "capital-gain", "capital-loss", "hours-per-week"]
CATEGORICAL = [
    "workclass",
    "education",
    "marital-status",
    "occupation",
    "relationship",
    "race",
    "sex",
    "native-country",
]
# A few rows of the census-income data (examples/census-income/data), cycled for bigger batches.
ROWS = [
    [39, 77516, 13, 2174, 0, 40, "State-gov", "Bachelors", "Never-married", "Adm-clerical",
     "Not-in-family", "White", "Male", "United-States"],
    [50, 83311, 13, 0, 0, 13, "Self-emp-not-inc", "Bachelors", "Married-civ-spouse",
     "Exec-managerial", "Husband", "White", "Male", "United-States"],
    [38, 215646, 9, 0, 0, 40, "Private", "HS-grad", "Divorced", "Handlers-cleaners",
     "Not-in-family", "White", "Male", "United-States"],
    [53, 234721, 7, 0, 0, 40, "Private", "11th", "Married-civ-spouse", "Handlers-cleaners",
     "Husband", "Black", "Male", "United-States"],
    [28, 338409, 13, 0, 0, 40, "Private", "Bachelors", "Married-civ-spouse", "Prof-specialty",
     "Wife", "Black", "Female", "Cuba"],
]  # fmt: skip
COLUMNS = NUMERIC + CATEGORICAL
OUTPUTS = (
    TensorSpec("label", "BYTES", (-1,), "label"),
    TensorSpec("probabilities", "FP32", (-1, 2), "probabilities"),
)


def per_column_settings(numeric_only: bool) -> ModelSettings:
    """The converted census model's signature: one [rows, 1] ONNX input per column
    (renamed as skl2onnx does); ``numeric_only``: every column a number."""
    inputs, columns = [], []
    for name in COLUMNS:
        datatype = "FP32" if numeric_only or name in NUMERIC else "BYTES"
        onnx_name = name.replace("-", "_")
        inputs.append(TensorSpec(onnx_name, datatype, (-1, 1)))
        columns.append(ColumnSpec(name, datatype, onnx_name))
    return ModelSettings("census-income", "1", tuple(inputs), tuple(columns), OUTPUTS)


def one_tensor_settings(features: int = 20) -> ModelSettings:
    """The serving benchmark's model: 20 numeric columns stacked into one [rows, 20] input."""
    columns = tuple(ColumnSpec(f"f{i}", "FP32", "input", i) for i in range(features))
    return ModelSettings("bench", "1", (TensorSpec("input", "FP32", (-1, features)),), columns, OUTPUTS)


def table(rows: int, numeric_only: bool) -> list[list[Any]]:
    out = []
    for i in range(rows):
        row = list(ROWS[i % len(ROWS)])
        if numeric_only:  # the same sizes of numbers, in every column
            row = row[:6] + [float(len(v)) for v in row[6:]]
        out.append(row)
    return out


def bodies(rows: int, numeric_only: bool) -> dict[str, bytes]:
    data = table(rows, numeric_only)
    v2 = {
        "inputs": [
            {
                "name": name,
                "shape": [rows, 1],
                "datatype": "BYTES" if isinstance(data[0][j], str) else "FP32",
                "data": [row[j] for row in data],
            }
            for j, name in enumerate(COLUMNS)
        ]
    }
    split = {"dataframe_split": {"columns": COLUMNS, "data": data}}
    records = {"dataframe_records": [dict(zip(COLUMNS, row, strict=True)) for row in data]}
    return {"v2": orjson.dumps(v2), "split": orjson.dumps(split), "records": orjson.dumps(records)}


def decoders(settings: ModelSettings, rows: int) -> dict[str, Callable[[bytes], Any]]:
    decoder = InputDecoder(settings, max_rows=max(rows, 1))
    return {
        "v2": lambda body: protocol.decode_v2(protocol.parse_json(body), decoder, settings),
        "split": lambda body: protocol.decode_mlflow(body, "application/json", decoder),
        "records": lambda body: protocol.decode_mlflow(body, "application/json", decoder),
    }


def best_us(call: Callable[[], Any], seconds: float) -> float:
    """The best mean time per call over batches of about 2 ms run for ``seconds``: on a
    shared machine the best batch is the one no other process interrupted."""
    call()
    n, began = 0, time.perf_counter()
    while time.perf_counter() - began < 0.002:
        call()
        n += 1
    best, deadline = float("inf"), time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        began = time.perf_counter()
        for _ in range(n):
            call()
        best = min(best, (time.perf_counter() - began) / n)
    return best * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, nargs="+", default=[1, 100], help="rows per request")
    parser.add_argument("--seconds", type=float, default=1.0, help="time per measurement")
    args = parser.parse_args()
    mixed_settings, numeric_settings = per_column_settings(False), per_column_settings(True)
    print(f"{'request':30} {'rows':>5} {'mixed us':>9} {'numeric us':>11} {'ratio':>6}")
    for rows in args.rows:
        mixed_bodies, numeric_bodies = bodies(rows, False), bodies(rows, True)
        mixed, numeric = decoders(mixed_settings, rows), decoders(numeric_settings, rows)
        for kind in ("v2", "split", "records"):
            m = best_us(lambda: mixed[kind](mixed_bodies[kind]), args.seconds)  # noqa: B023
            n = best_us(lambda: numeric[kind](numeric_bodies[kind]), args.seconds)  # noqa: B023
            label = {"v2": "V2, one tensor per column", "split": "MLflow dataframe_split",
                     "records": "MLflow dataframe_records"}[kind]  # fmt: skip
            print(f"{label:30} {rows:5d} {m:9.1f} {n:11.1f} {m / n:6.2f}")
        settings = one_tensor_settings()
        decoder = InputDecoder(settings, max_rows=max(rows, 1))
        body = orjson.dumps(
            {"inputs": [{"name": "input", "shape": [rows, 20], "datatype": "FP32",
                         "data": [0.1 * (i % 20) - 1.0 for i in range(rows * 20)]}]}
        )  # fmt: skip
        us = best_us(lambda: protocol.decode_v2(protocol.parse_json(body), decoder, settings), args.seconds)  # noqa: B023
        print(f"{'V2, one [rows, 20] tensor':30} {rows:5d} {'':>9} {us:11.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
