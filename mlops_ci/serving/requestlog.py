"""Sampled request/prediction log: JSON lines for drift monitoring.

One record per sampled request (schema ``mlops-ci/request-log/v1``, published as
``mlops_ci/schemas/request-log.v1.json``)::

    {"schema": "mlops-ci/request-log/v1", "time": "2025-05-20T10:00:00.123Z",
     "model": "census-income", "version": "3", "endpoint": "v2_infer", "rows": 2,
     "latency_ms": 0.41,
     "inputs": {"age": [39, 50], "workclass": ["State-gov", "Private"], ...},
     "outputs": {"label": ["<=50K", ">50K"], "probabilities": [[0.77, 0.23], [0.4, 0.6]]}}

``inputs`` holds every column by its original name, one value per row, after the
signature checks (so numbers are numbers); ``outputs`` every model output, first axis =
rows; ``id`` the request's id when the client gave one (V2 ``id``): `mlops-ci quality`
joins labels that arrive later by it. The request thread only appends to a bounded queue; a background thread serialises
and writes, rotating ``PATH`` to ``PATH.1`` .. ``PATH.<keep>`` by size. When the writer
falls behind, records are dropped and counted (``request_log_dropped_total``), never
blocking a request.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

import numpy as np
import orjson

SCHEMA = "mlops-ci/request-log/v1"
MAX_QUEUE = 10_000
FLUSH_INTERVAL_S = 0.5


class RequestLog:
    def __init__(
        self,
        target: str,
        *,
        model: str,
        version: str,
        max_bytes: int,
        keep: int,
        columns_of: Any = None,
    ) -> None:
        self.target = target
        self.model = model
        self.version = version
        self.max_bytes = max_bytes
        self.keep = keep
        self.columns_of = columns_of or (lambda feeds: feeds)
        self.queue: deque[tuple] = deque()
        self.dropped = 0
        self.written = 0
        self._wake = threading.Event()
        self._stop = False
        self._handle = None
        if target != "-":
            Path(target).parent.mkdir(parents=True, exist_ok=True)
            self._handle = open(target, "ab")  # noqa: SIM115 - kept open for the server's life
        self._thread = threading.Thread(target=self._run, name="request-log", daemon=True)
        self._thread.start()

    def submit(
        self,
        endpoint: str,
        rows: int,
        latency_s: float,
        feeds: dict[str, np.ndarray],
        outputs: dict[str, np.ndarray],
        *,
        request_id: str | None = None,
    ) -> None:
        """Called on the request path: O(1), never blocks. ``request_id``: the client's id
        of the request (V2 ``id``), recorded so labels that arrive later can be joined."""
        if len(self.queue) >= MAX_QUEUE:
            self.dropped += 1
            return
        self.queue.append((time.time(), endpoint, rows, latency_s, feeds, outputs, request_id))
        if len(self.queue) >= 256:
            self._wake.set()

    def close(self) -> None:
        self._stop = True
        self._wake.set()
        self._thread.join(timeout=10)
        if self._handle is not None:
            self._handle.close()

    def _run(self) -> None:
        while True:
            self._wake.wait(FLUSH_INTERVAL_S)
            self._wake.clear()
            self._drain()
            if self._stop:
                self._drain()
                return

    def _drain(self) -> None:
        chunks = []
        while self.queue:
            chunks.append(self._encode(*self.queue.popleft()))
        if not chunks:
            return
        data = b"".join(chunks)
        try:
            if self._handle is None:
                sys.stdout.buffer.write(data)
                sys.stdout.buffer.flush()
            else:
                self._handle.write(data)
                self._handle.flush()
                if self._handle.tell() >= self.max_bytes:
                    self._rotate()
            self.written += len(chunks)
        except OSError:
            self.dropped += len(chunks)

    def _encode(
        self,
        at: float,
        endpoint: str,
        rows: int,
        latency_s: float,
        feeds: dict,
        outputs: dict,
        request_id: str | None = None,
    ) -> bytes:
        columns = self.columns_of(feeds)
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(at)) + f".{int(at * 1000) % 1000:03d}Z"
        record = {
            "schema": SCHEMA,
            "time": stamp,
            "model": self.model,
            "version": self.version,
            "endpoint": endpoint,
            "rows": rows,
            "latency_ms": round(latency_s * 1000, 3),
            "inputs": {name: _jsonable(values) for name, values in columns.items()},
            "outputs": {name: _jsonable(values) for name, values in outputs.items()},
        }
        if request_id is not None:
            record["id"] = request_id
        return orjson.dumps(record, option=orjson.OPT_SERIALIZE_NUMPY) + b"\n"

    def _rotate(self) -> None:
        if self._handle is not None:
            self._handle.close()
        if self.keep == 0:
            os.remove(self.target)
        else:
            for i in range(self.keep - 1, 0, -1):
                older = f"{self.target}.{i}"
                if os.path.exists(older):
                    os.replace(older, f"{self.target}.{i + 1}")
            os.replace(self.target, f"{self.target}.1")
        self._handle = open(self.target, "ab")  # noqa: SIM115


def _jsonable(values: Any) -> Any:
    if isinstance(values, np.ndarray):
        if values.dtype.kind == "O" or not values.flags.c_contiguous or values.dtype == np.float16:
            return values.tolist()
        return values
    return values
