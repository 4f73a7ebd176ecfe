"""Robustness: the candidate gets malformed batches, as a server would from a careless
client. Each must end in a clean error (an exception the server can turn into a 4xx) or a
handled result (one prediction per row); a crash or a hang fails the check.

The model runs in a separate process (``robustness_worker``) so a crash cannot take the
step down and a hang can be stopped: every batch has a deadline, and after a crash or a hang
a fresh worker continues with the remaining batches. The worker starts while the statistics
run, so its start-up time (importing MLflow, loading the model) is mostly hidden.
"""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import queue
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops_ci.validation.findings import Finding

if TYPE_CHECKING:
    import pandas as pd

BATCH_ROWS = 5
LOAD_TIMEOUT_S = 300.0
EXTRA_COLUMN = "mlops_ci_unexpected_column"
DESCRIPTIONS = {
    "wrong-dtype": "a column of the wrong type",
    "nan": "missing values in every column",
    "missing-column": "a required column left out",
    "extra-column": "an unexpected extra column",
    "empty": "an empty batch (no rows)",
}
_NUMERIC_TYPES = {"long", "integer", "double", "float"}


def make_batches(features: pd.DataFrame, signature: Any) -> dict[str, pd.DataFrame]:
    """The malformed batches, built from the first holdout rows."""
    import numpy as np
    import pandas as pd

    base = features.head(BATCH_ROWS).reset_index(drop=True)
    types: dict[str, str] = {}
    if signature is not None and signature.inputs is not None and signature.inputs.has_input_names():
        types = {spec.name: str(getattr(spec.type, "name", spec.type)) for spec in signature.inputs.inputs}
    columns = [c for c in base.columns if not types or c in types]
    numeric = [
        c
        for c in columns
        if types.get(c) in _NUMERIC_TYPES or (not types and pd.api.types.is_numeric_dtype(base[c]))
    ]
    batches: dict[str, pd.DataFrame] = {}
    wrong = base.copy()
    if numeric:
        wrong[numeric[0]] = pd.Series(["not-a-number"] * len(wrong), dtype=object)
    elif columns:
        wrong[columns[0]] = np.arange(len(wrong), dtype=np.int64)
    batches["wrong-dtype"] = wrong
    nan = base.copy()
    for c in nan.columns:
        nan[c] = pd.Series(
            [np.nan if c in numeric else None] * len(nan), dtype=float if c in numeric else object
        )
    batches["nan"] = nan
    if columns:
        batches["missing-column"] = base.drop(columns=[columns[0]])
    extra = base.copy()
    extra[EXTRA_COLUMN] = "x"
    batches["extra-column"] = extra
    batches["empty"] = base.iloc[:0].copy()
    return batches


@dataclass
class _Outcome:
    batch: str
    status: str  # passed | failed | error
    message: str
    details: dict[str, Any] = field(default_factory=dict)


class RobustnessRun:
    """Start with ``start()`` (non-blocking), collect ``Finding``s with ``finish()``."""

    def __init__(
        self,
        model_path: Path,
        batches: dict[str, pd.DataFrame],
        *,
        timeout_s: float,
        workdir: Path,
        blocking: bool,
    ) -> None:
        self.model_path = model_path
        self.batches = batches
        self.timeout_s = timeout_s
        self.workdir = workdir
        self.blocking = blocking
        self.process: subprocess.Popen[bytes] | None = None
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.pending = list(batches)
        self.batches_file = workdir / "robustness-batches.pkl"

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        with self.batches_file.open("wb") as handle:
            pickle.dump(self.batches, handle)
        self._launch(self.pending)

    def _launch(self, names: list[str]) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MLOPS_CI_")}
        env["PYTHONUNBUFFERED"] = "1"
        self.lines = queue.Queue()
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "mlops_ci.validation.robustness_worker",
                str(self.model_path),
                str(self.batches_file),
                *names,
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            env=env,
        )
        reader = threading.Thread(target=self._read, args=(self.process, self.lines), daemon=True)
        reader.start()

    @staticmethod
    def _read(process: subprocess.Popen[bytes], lines: queue.Queue[str | None]) -> None:
        assert process.stdout is not None
        for raw in process.stdout:
            lines.put(raw.decode("utf-8", "replace").strip())
        lines.put(None)

    def _stop(self) -> None:
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        self.process = None

    def _next(self, deadline: float) -> tuple[str, Any]:
        """('line', dict) | ('eof', returncode) | ('timeout', None)"""
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return "timeout", None
            try:
                line = self.lines.get(timeout=remaining)
            except queue.Empty:
                return "timeout", None
            if line is None:
                assert self.process is not None
                return "eof", self.process.wait()
            try:
                return "line", json.loads(line)
            except ValueError:
                continue  # a stray print of the model code

    def finish(self) -> list[Finding]:
        outcomes: dict[str, _Outcome] = {}
        try:
            self._collect(outcomes)
        finally:
            self._stop()
            self.batches_file.unlink(missing_ok=True)
        return [self._check(name, outcomes[name]) for name in self.batches if name in outcomes]

    def _collect(self, outcomes: dict[str, _Outcome]) -> None:
        loading = True
        while self.pending:
            timeout = LOAD_TIMEOUT_S if loading else self.timeout_s
            kind, value = self._next(time.monotonic() + timeout)
            current = self.pending[0]
            if kind == "line" and value.get("event") == "loaded":
                loading = False
                continue
            if kind == "line" and value.get("event") == "load-failed":
                for name in self.pending:
                    outcomes[name] = _Outcome(
                        name, "error", f"the model did not load in a fresh process: {value.get('error')}"
                    )
                self.pending = []
                return
            if kind == "line" and value.get("batch") == current:
                outcomes[current] = self._judge(current, value)
                self.pending.pop(0)
                continue
            if kind == "line":
                continue
            if loading and kind == "timeout":
                for name in self.pending:
                    outcomes[name] = _Outcome(
                        name,
                        "error",
                        f"the model did not load within {LOAD_TIMEOUT_S:.0f} s in a fresh process",
                    )
                self.pending = []
                return
            if kind == "timeout":
                outcomes[current] = _Outcome(
                    current, "failed", f"hang: no answer within {self.timeout_s:g} s", {"outcome": "hang"}
                )
            else:
                outcomes[current] = _Outcome(
                    current,
                    "failed",
                    f"crash: {_describe_exit(value)}",
                    {"outcome": "crash", "returncode": value},
                )
            self._stop()
            self.pending.pop(0)
            if self.pending:
                self._launch(self.pending)
                loading = True

    def _judge(self, name: str, message: dict[str, Any]) -> _Outcome:
        rows = len(self.batches[name])
        if message.get("outcome") == "error":
            return _Outcome(
                name,
                "passed",
                f"clean error: {message.get('error')}",
                {"outcome": "error", "error": message.get("error")},
            )
        returned = message.get("rows")
        details = {"outcome": "result", "rows": returned, "nan_predictions": message.get("nan", 0)}
        if returned != rows:
            return _Outcome(name, "failed", f"returned {returned} predictions for {rows} rows", details)
        note = f"; {message.get('nan')} of them NaN" if message.get("nan") else ""
        return _Outcome(
            name, "passed", f"handled: returned {returned} predictions for {rows} rows{note}", details
        )

    def _check(self, name: str, outcome: _Outcome) -> Finding:
        status = outcome.status
        if status == "failed" and not self.blocking:
            status = "warning"
        return Finding(
            f"robustness: {name}",
            status,
            message=f"{DESCRIPTIONS[name]}: {outcome.message}",
            blocking=self.blocking,
            details={"kind": "robustness", "batch": name, "rows": len(self.batches[name]), **outcome.details},
        )


def _describe_exit(returncode: int) -> str:
    if returncode is not None and returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"the model process was killed by {name}"
    return f"the model process exited with code {returncode} without answering"
