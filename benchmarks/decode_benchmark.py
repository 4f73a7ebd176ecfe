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

No model file is needed: the decoder is built from the settings alone. For a before/after
comparison, run it with PYTHONPATH pointing at an older checkout.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from typing import Any

import orjson

from mlops_ci.serving import protocol, signature
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


def decode(kind: str, decoder: InputDecoder, settings: ModelSettings, body: bytes) -> Any:
    """What the server does with the body before inference: parse, check, convert."""
    if kind == "v2":
        return protocol.decode_v2(protocol.parse_json(body), decoder, settings)[0]
    return protocol.decode_mlflow(body, "application/json", decoder)[0]


def one_tensor_bodies(rows: int, features: int = 20) -> dict[str, bytes]:
    data = [[round(0.1 * ((i + j) % features) - 1.0, 3) for j in range(features)] for i in range(rows)]
    flat = [value for row in data for value in row]
    v2 = {"inputs": [{"name": "input", "shape": [rows, features], "datatype": "FP32", "data": flat}]}
    split = {"dataframe_split": {"columns": [f"f{j}" for j in range(features)], "data": data}}
    return {"v2": orjson.dumps(v2), "split": orjson.dumps(split)}


def general_path_agrees(kind: str, settings: ModelSettings, body: bytes, rows: int) -> bool:
    """The quick decoding plan and the general path give the same feeds (values, dtypes,
    shapes) for this request: the general path is forced by emptying the plan."""
    quick = decode(kind, InputDecoder(settings, max_rows=rows), settings, body)
    general_decoder = InputDecoder(settings, max_rows=rows)
    general_decoder.whole_inputs = {}
    general_decoder.stacked_columns = None
    saved = getattr(signature, "quick_array", None)  # None: a checkout from before the plan
    signature.quick_array = lambda values, datatype: None
    try:
        general = decode(kind, general_decoder, settings, body)
    finally:
        if saved is None:
            del signature.quick_array
        else:
            signature.quick_array = saved
    return quick.keys() == general.keys() and all(
        quick[k].dtype == general[k].dtype
        and quick[k].shape == general[k].shape
        and (quick[k] == general[k]).all()
        for k in quick
    )


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
    bench_settings = one_tensor_settings()
    labels = {
        "v2": "V2, one tensor per column",
        "split": "MLflow dataframe_split",
        "records": "MLflow dataframe_records",
    }
    agree = True
    print("census-shaped requests (14 columns), per request: 8 string columns vs all 14 numeric")
    print(f"{'request':30} {'rows':>5} {'mixed us':>9} {'numeric us':>11} {'ratio':>6}")
    mixed_v2: dict[int, float] = {}
    for rows in args.rows:
        mixed_bodies, numeric_bodies = bodies(rows, False), bodies(rows, True)
        mixed_decoder = InputDecoder(mixed_settings, max_rows=rows)
        numeric_decoder = InputDecoder(numeric_settings, max_rows=rows)
        for kind, label in labels.items():
            m = best_us(lambda: decode(kind, mixed_decoder, mixed_settings, mixed_bodies[kind]), args.seconds)  # noqa: B023
            n = best_us(
                lambda: decode(kind, numeric_decoder, numeric_settings, numeric_bodies[kind]),  # noqa: B023
                args.seconds,
            )
            print(f"{label:30} {rows:5d} {m:9.1f} {n:11.1f} {m / n:6.2f}")
            mixed_v2.setdefault(rows, m)
            agree &= general_path_agrees(kind, mixed_settings, mixed_bodies[kind], rows)
            agree &= general_path_agrees(kind, numeric_settings, numeric_bodies[kind], rows)
    print("\nthe serving benchmark's model (20 numeric columns, one [rows, 20] ONNX input)")
    print(f"{'request':30} {'rows':>5} {'us':>9} {'census V2 / this':>17}")
    for rows in args.rows:
        bench_bodies = one_tensor_bodies(rows)
        decoder = InputDecoder(bench_settings, max_rows=rows)
        for kind in ("v2", "split"):
            us = best_us(lambda: decode(kind, decoder, bench_settings, bench_bodies[kind]), args.seconds)  # noqa: B023
            label = "V2, one [rows, 20] tensor" if kind == "v2" else "MLflow dataframe_split"
            ratio = f"{mixed_v2[rows] / us:17.2f}" if kind == "v2" else ""
            print(f"{label:30} {rows:5d} {us:9.1f} {ratio}")
            agree &= general_path_agrees(kind, bench_settings, bench_bodies[kind], rows)
    print(f"\nquick decoding plan and general path give identical feeds: {'yes' if agree else 'NO'}")
    return 0 if agree else 1


if __name__ == "__main__":
    sys.exit(main())
