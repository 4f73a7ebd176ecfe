"""Batch-scoring benchmark: `mlops-ci score` against `mlflow models predict` and against
pandas + scikit-learn ``predict_proba``, on the same file, in the same run; then the same
scoring on Spark (local mode, 4 partitions), checked to give identical outputs.

The data: N census-income rows resampled (with replacement, fixed seed) from
examples/census-income/data/adult.csv, plus an ``id`` column; written as one CSV. The
model: the census-income pipeline (StandardScaler + OneHotEncoder + LogisticRegression)
trained on the example's train.csv and saved as an MLflow sklearn model (with signature),
the form `mlops-ci register` leaves in the registry. Every contender is a command that
reads the CSV, scores every row and writes the predictions to a file, timed end to end
(start-up and model loading included):

* ``mlops-ci score`` on the MLflow model (converted to ONNX on every run), and on the
  folder `mlops-ci package` leaves (the ONNX model converted once, beforehand);
* ``mlflow models predict --env-manager local`` (JSON predictions);
* a pandas + scikit-learn script: unpickle the pipeline, ``read_csv``, ``predict_proba``,
  ``to_csv`` (the hand-written baseline).

Wall seconds, CPU seconds (user + system, all threads) and peak resident memory come from
/usr/bin/time: on a shared machine the CPU seconds are the steadier measure.

    .venv/bin/python benchmarks/score_benchmark.py                    # 1,000,000 rows
    .venv/bin/python benchmarks/score_benchmark.py --rows 100000 --no-spark
"""

from __future__ import annotations

import argparse
import os
import pickle
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Timing:
    wall_s: float
    cpu_s: float
    peak_mb: float


def timed(command: list[str], env: dict[str, str]) -> Timing:
    """Wall and CPU seconds and peak resident MB of a command."""
    started = time.perf_counter()
    done = subprocess.run(
        ["/usr/bin/time", "-v", *command], env=env, capture_output=True, text=True, check=False
    )
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"{' '.join(command[:4])} ... failed ({done.returncode}):\n{done.stderr[-3000:]}")

    def field(label: str) -> float:
        found = re.search(rf"{re.escape(label)}: ([0-9.]+)", done.stderr)
        return float(found.group(1)) if found else float("nan")

    cpu = field("User time (seconds)") + field("System time (seconds)")
    return Timing(elapsed, cpu, field("Maximum resident set size (kbytes)") / 1024)


SKLEARN_SCRIPT = """
import pickle, sys
import pandas as pd
model_path, data, out = sys.argv[1:]
with open(model_path, "rb") as handle:
    pipeline = pickle.load(handle)
frame = pd.read_csv(data, keep_default_na=False)
probabilities = pipeline.predict_proba(frame[pipeline.feature_names_in_])
result = pd.DataFrame({"id": frame["id"], "prediction": pipeline.classes_[probabilities.argmax(axis=1)]})
for i, label in enumerate(pipeline.classes_):
    result[f"probability_{label}"] = probabilities[:, i]
result.to_csv(out, index=False)
"""


def package_folder(model: Path, folder: Path) -> None:
    """What `mlops-ci package` leaves in <out-dir>/package/model: model.onnx + settings."""
    from mlops_ci.convert.build import convert
    from mlops_ci.convert.loading import load_native_model

    native = load_native_model(str(model), store=None, cwd=model.parent)
    converted = convert(native, name="census-income", version="1", opset=None, precision="float32")
    folder.mkdir(parents=True)
    (folder / converted.settings.model_file).write_bytes(converted.onnx_bytes)
    converted.settings.write(folder)


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
    with (work / "pipeline.pkl").open("wb") as handle:
        pickle.dump(pipeline, handle)
    (work / "sklearn_score.py").write_text(SKLEARN_SCRIPT)
    package_folder(model, work / "package" / "model")
    results: dict[str, Timing] = {}

    def ours(name: str, model_arg: Path) -> None:
        command = [sys.executable, "-m", "mlops_ci", "score", "--model", str(model_arg), "--input", str(data)]
        command += ["--output", str(work / name), "--keep-columns", "id", "--workers", str(args.workers)]
        command += ["--out-dir", str(work / f"results-{name}")]
        results[f"mlops-ci score ({name})"] = timed(command, env)

    ours("mlflow-model", model)
    ours("package-folder", work / "package")
    mlflow_out = work / "mlflow-predictions.json"
    command = [sys.executable, "-m", "mlflow", "models", "predict", "-m", str(model), "-i", str(data)]
    command += ["-t", "csv", "-o", str(mlflow_out), "--env-manager", "local"]
    results["mlflow models predict"] = timed(command, env)
    command = [sys.executable, str(work / "sklearn_score.py"), str(work / "pipeline.pkl"), str(data)]
    results["pandas + scikit-learn"] = timed([*command, str(work / "sklearn.csv")], env)

    local = read_output(work / "mlflow-model" / "census.csv")
    sklearn_out = pd.read_csv(work / "sklearn.csv", keep_default_na=False)
    mlflow_predictions = pd.read_json(mlflow_out)["predictions"].to_numpy()
    print()
    print(f"{'command':<32} {'wall s':>7} {'rows/s':>9} {'CPU s':>7} {'rows/CPU-s':>10} {'peak MB':>8}")
    for name, timing in results.items():
        print(
            f"{name:<32} {timing.wall_s:7.1f} {args.rows / timing.wall_s:9,.0f} {timing.cpu_s:7.1f} "
            f"{args.rows / timing.cpu_s:10,.0f} {timing.peak_mb:8.0f}"
        )
    print()
    for ours_name in ("mlops-ci score (mlflow-model)", "mlops-ci score (package-folder)"):
        mine = results[ours_name]
        for other in ("mlflow models predict", "pandas + scikit-learn"):
            theirs = results[other]
            print(
                f"{ours_name} vs {other}: {theirs.wall_s / mine.wall_s:.2f}x the rows/s (wall), "
                f"{theirs.cpu_s / mine.cpu_s:.2f}x the rows per CPU-second"
            )
    agreement = (local["prediction"].to_numpy() == sklearn_out["prediction"].to_numpy()).mean()
    diff = np.abs(local["probability_>50K"].to_numpy() - sklearn_out["probability_>50K"].to_numpy()).max()
    print(
        f"ours vs scikit-learn: labels agree on {agreement:.4%} of rows, largest probability difference {diff:.2e}"
    )
    print(
        f"ours vs mlflow models predict: labels agree on {(local['prediction'].to_numpy() == mlflow_predictions).mean():.4%}"
    )
    assert (work / "package-folder" / "census.csv").read_bytes() == (
        work / "mlflow-model" / "census.csv"
    ).read_bytes()

    if not args.no_spark:
        spark_out = work / "spark"
        command = [sys.executable, "-m", "mlops_ci", "score", "--model", str(model), "--input", str(data)]
        command += ["--output", str(spark_out), "--keep-columns", "id", "--engine", "spark"]
        command += ["--spark-master", f"local[{args.partitions}]", "--spark-partitions", str(args.partitions)]
        command += ["--out-dir", str(work / "results-spark")]
        timing = timed(command, env)
        spark = read_output(spark_out / "census.csv")
        parts = len(list((spark_out / "census.csv").glob("part-*.csv")))
        same_rows = len(spark) == len(local) and (spark["id"].to_numpy() == local["id"].to_numpy()).all()
        same_labels = (spark["prediction"].to_numpy() == local["prediction"].to_numpy()).all()
        columns = [c for c in local.columns if c.startswith("probability_")]
        largest = max(np.abs(spark[c].to_numpy() - local[c].to_numpy()).max() for c in columns)
        print()
        print(
            f"spark (local[{args.partitions}], {parts} partitions): {timing.wall_s:.1f} s, "
            f"{args.rows / timing.wall_s:,.0f} rows/s (JVM start-up included)"
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
