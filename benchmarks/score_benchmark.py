"""Batch-scoring benchmark: `mlops-ci score` against `mlflow models predict` and against
pandas + scikit-learn ``predict_proba``, on the same file, in the same run; then the same
scoring on Spark (local mode, 4 partitions), checked to give identical outputs.

The data: N census-income rows resampled (with replacement, fixed seed) from
examples/census-income/data/adult.csv, plus an ``id`` column; written as one CSV. The
model: the census-income pipeline (StandardScaler + OneHotEncoder + LogisticRegression)
trained on the example's train.csv and saved as an MLflow sklearn model (with signature),
the form `mlops-ci register` leaves in the registry. Every contender reads the CSV, scores
every row and writes its predictions to a file; each is timed end to end as a command
(start-up and model loading included) except pandas + scikit-learn, which is timed in this
process from reading to writing (its model is already in memory: the most favourable case).
Peak resident memory of each command comes from /usr/bin/time.

    .venv/bin/python benchmarks/score_benchmark.py                    # 1,000,000 rows
    .venv/bin/python benchmarks/score_benchmark.py --rows 100000 --no-spark
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "examples" / "census-income" / "data"
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
FEATURES = NUMERIC + CATEGORICAL


def make_data(path: Path, rows: int, seed: int) -> None:
    source = pd.read_csv(DATA / "adult.csv", keep_default_na=False)
    picks = np.random.default_rng(seed).integers(0, len(source), size=rows)
    frame = source.iloc[picks][FEATURES].reset_index(drop=True)
    frame.insert(0, "id", np.arange(rows))
    frame.to_csv(path, index=False)


def train_model(folder: Path):
    import mlflow.sklearn
    from mlflow.models import infer_signature
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    train = pd.read_csv(DATA / "train.csv", keep_default_na=False)
    pipeline = Pipeline(
        [
            (
                "preprocess",
                ColumnTransformer(
                    [
                        ("numeric", StandardScaler(), NUMERIC),
                        (
                            "categorical",
                            OneHotEncoder(handle_unknown="ignore", sparse_output=False),
                            CATEGORICAL,
                        ),
                    ]
                ),
            ),
            ("classifier", LogisticRegression(max_iter=1000)),
        ]
    ).fit(train[FEATURES], train["class"])
    example = train[FEATURES].head(5)
    mlflow.sklearn.save_model(
        pipeline,
        str(folder),
        signature=infer_signature(example, pipeline.predict(example)),
        input_example=example,
    )
    return pipeline


def timed(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall seconds and peak resident MB of a command."""
    started = time.perf_counter()
    done = subprocess.run(
        ["/usr/bin/time", "-v", *command], env=env, capture_output=True, text=True, check=False
    )
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"{' '.join(command[:4])} ... failed ({done.returncode}):\n{done.stderr[-3000:]}")
    peak = re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr)
    return elapsed, int(peak.group(1)) / 1024 if peak else float("nan")


def read_output(path: Path) -> pd.DataFrame:
    """A CSV file, or a Spark folder of CSV part files in name (partition) order."""
    if path.is_dir():
        parts = sorted(p for p in path.glob("part-*") if p.suffix == ".csv")
        return pd.concat([pd.read_csv(p, keep_default_na=False) for p in parts], ignore_index=True)
    return pd.read_csv(path, keep_default_na=False)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=20261207)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--no-spark", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="mlops-ci-score-bench-"))
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    env = {k: v for k, v in env.items() if not k.startswith("MLOPS_CI_")}
    data = work / "census.csv"
    started = time.perf_counter()
    make_data(data, args.rows, args.seed)
    print(
        f"data: {args.rows:,} rows, {data.stat().st_size / 1e6:.0f} MB CSV ({time.perf_counter() - started:.1f} s)"
    )
    model = work / "model"
    pipeline = train_model(model)
    print(f"model: MLflow sklearn model in {model}")
    results: dict[str, tuple[float, float]] = {}

    ours = work / "ours"
    command = [sys.executable, "-m", "mlops_ci", "score", "--model", str(model), "--input", str(data)]
    command += ["--output", str(ours), "--keep-columns", "id", "--workers", str(args.workers)]
    command += ["--out-dir", str(work / "results")]
    results["mlops-ci score"] = timed(command, env)

    mlflow_out = work / "mlflow-predictions.csv"
    command = [sys.executable, "-m", "mlflow", "models", "predict", "-m", str(model), "-i", str(data)]
    command += ["-t", "csv", "-o", str(mlflow_out), "--env-manager", "local"]
    results["mlflow models predict"] = timed(command, env)

    started = time.perf_counter()
    frame = pd.read_csv(data, keep_default_na=False)
    probabilities = pipeline.predict_proba(frame[FEATURES])
    labels = pipeline.classes_[probabilities.argmax(axis=1)]
    out = pd.DataFrame({"id": frame["id"], "prediction": labels})
    for i, label in enumerate(pipeline.classes_):
        out[f"probability_{label}"] = probabilities[:, i]
    out.to_csv(work / "sklearn.csv", index=False)
    results["pandas + scikit-learn"] = (time.perf_counter() - started, float("nan"))

    local = read_output(ours / "census.csv")
    sklearn_out = pd.read_csv(work / "sklearn.csv", keep_default_na=False)
    print()
    print(f"{'contender':<24} {'seconds':>8} {'rows/s':>10} {'peak MB':>8}  ratio (ours / it)")
    ours_rate = args.rows / results["mlops-ci score"][0]
    for name, (seconds, peak) in results.items():
        rate = args.rows / seconds
        print(f"{name:<24} {seconds:8.1f} {rate:10,.0f} {peak:8.0f}  {ours_rate / rate:.2f}x")
    agreement = (local["prediction"].to_numpy() == sklearn_out["prediction"].to_numpy()).mean()
    diff = np.abs(local["probability_>50K"].to_numpy() - sklearn_out["probability_>50K"].to_numpy()).max()
    print(
        f"ours vs scikit-learn: labels agree on {agreement:.6%} of rows, largest probability difference {diff:.2e}"
    )

    if not args.no_spark:
        spark_out = work / "spark"
        command = [sys.executable, "-m", "mlops_ci", "score", "--model", str(model), "--input", str(data)]
        command += ["--output", str(spark_out), "--keep-columns", "id", "--engine", "spark"]
        command += ["--spark-master", f"local[{args.partitions}]", "--spark-partitions", str(args.partitions)]
        command += ["--out-dir", str(work / "results-spark")]
        seconds, peak = timed(command, env)
        spark = read_output(spark_out / "census.csv")
        parts = len(list((spark_out / "census.csv").glob("part-*.csv")))
        same_rows = len(spark) == len(local) and (spark["id"].to_numpy() == local["id"].to_numpy()).all()
        same_labels = (spark["prediction"].to_numpy() == local["prediction"].to_numpy()).all()
        columns = [c for c in local.columns if c.startswith("probability_")]
        largest = max(np.abs(spark[c].to_numpy() - local[c].to_numpy()).max() for c in columns)
        print()
        print(
            f"spark (local[{args.partitions}], {parts} partitions): {seconds:.1f} s, {args.rows / seconds:,.0f} rows/s "
            f"(JVM start-up included), peak {peak:.0f} MB (driver process only)"
        )
        print(
            f"spark vs local engine: same rows in the same order: {same_rows}; identical labels: {same_labels}; "
            f"largest probability difference {largest:.2e}"
        )
        if not (same_rows and same_labels and largest <= 1e-6):
            sys.exit("the Spark engine's output differs from the local engine's")
    if args.keep:
        print(f"work folder: {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
