"""How long `mlops-ci drift` takes on a realistic amount of serving traffic.

Writes N request-log records (2 census-income rows each, as the serving container logs
them), then times, in the same run:

* reading them: ``mlops_ci.monitoring.data.read_request_log`` vs the named baseline
  ``pandas.read_json(lines=True)`` + ``json_normalize`` + ``explode`` (which gives the input
  columns only, without the prediction columns or the schema check);
* detecting drift on the result against the 26,048 training rows (14 features plus the
  predictions, Benjamini-Hochberg): ``mlops_ci.monitoring.detect.detect``.

    .venv/bin/python benchmarks/drift_benchmark.py --records 50000
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from mlops_ci.monitoring import data, detect

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "census-income" / "data"


def write_log(path: Path, records: int) -> None:
    holdout = pd.read_csv(EXAMPLE / "holdout.csv", keep_default_na=False).drop(columns=["class"])
    rng = np.random.default_rng(0)
    now = datetime.now(timezone.utc)
    picks = rng.integers(0, len(holdout), size=(records, 2))
    columns = {c: holdout[c].tolist() for c in holdout.columns}
    with path.open("w") as handle:
        for i, (a, b) in enumerate(picks):
            record = {
                "schema": "mlops-ci/request-log/v1",
                "time": (now - timedelta(seconds=i)).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
                "model": "census-income",
                "version": "1",
                "endpoint": "v2_infer",
                "rows": 2,
                "latency_ms": 0.3,
                "inputs": {c: [values[a], values[b]] for c, values in columns.items()},
                "outputs": {"label": ["<=50K", ">50K"], "probabilities": [[0.7, 0.3], [0.4, 0.6]]},
            }
            handle.write(json.dumps(record) + "\n")


def timed(function):
    started = time.perf_counter()
    value = function()
    return time.perf_counter() - started, value


def baseline(path: Path) -> pd.DataFrame:
    raw = pd.read_json(path, lines=True)
    return pd.json_normalize(raw["inputs"]).apply(pd.Series.explode)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=50_000)
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f}; {args.records:,} records ({2 * args.records:,} rows)")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "requests.jsonl"
        write_log(path, args.records)
        ours_s, (frame, _) = timed(lambda: data.read_request_log(path, since=None))
        base_s, base = timed(lambda: baseline(path))
    print(
        f"read: mlops-ci {ours_s:.2f} s, pandas read_json+json_normalize+explode {base_s:.2f} s "
        f"(ratio {ours_s / base_s:.2f}; {len(frame):,} and {len(base):,} rows)"
    )
    reference = pd.read_csv(EXAMPLE / "train.csv", keep_default_na=False)
    reference = reference.assign(prediction=np.where(reference["class"] == ">50K", ">50K", "<=50K"))
    columns = detect.feature_columns(reference, frame, exclude=["class", "prediction_score"])
    detect_s, report = timed(lambda: detect.detect(reference, frame, columns=columns))
    print(f"detect: {detect_s:.2f} s for {len(report.verdicts)} tests on {len(frame):,} current rows")


if __name__ == "__main__":
    main()
