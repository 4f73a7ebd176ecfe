"""Progress of a scoring run: a bar redrawn in place on a terminal, a plain log line every
few seconds anywhere else (CI logs keep every byte; a redrawn bar would flood them)."""

from __future__ import annotations

import logging
import sys
import threading
import time
from typing import Protocol, TextIO

log = logging.getLogger(__name__)
BAR_WIDTH = 30


class Progress(Protocol):
    def start(self, total_rows: int | None) -> None: ...

    def advance(self, rows: int) -> None: ...

    def finish(self) -> None: ...


class NoProgress:
    def start(self, total_rows: int | None) -> None:
        pass

    def advance(self, rows: int) -> None:
        pass

    def finish(self) -> None:
        pass


class _Counter:
    """Rows done and the rate, shared by both kinds of progress (thread-safe)."""

    def __init__(self, clock=time.monotonic) -> None:
        self.clock = clock
        self.total: int | None = None
        self.done = 0
        self.started = clock()
        self._lock = threading.Lock()

    def start(self, total_rows: int | None) -> None:
        self.total = total_rows
        self.done = 0
        self.started = self.clock()

    def add(self, rows: int) -> None:
        with self._lock:
            self.done += rows

    def text(self) -> str:
        elapsed = max(self.clock() - self.started, 1e-9)
        rate = self.done / elapsed
        if self.total:
            return f"{self.done:,}/{self.total:,} rows ({100 * self.done / self.total:.0f} %), {rate:,.0f} rows/s"
        return f"{self.done:,} rows, {rate:,.0f} rows/s"


class TerminalProgress(_Counter):
    """A bar redrawn with a carriage return, at most ten times a second."""

    def __init__(self, stream: TextIO, clock=time.monotonic) -> None:
        super().__init__(clock)
        self.stream = stream
        self._drawn = 0.0

    def advance(self, rows: int) -> None:
        self.add(rows)
        now = self.clock()
        if now - self._drawn >= 0.1:
            self._drawn = now
            self._draw()

    def _draw(self) -> None:
        if self.total:
            filled = int(BAR_WIDTH * min(self.done / self.total, 1.0))
            bar = "[" + "#" * filled + "." * (BAR_WIDTH - filled) + "] "
        else:
            bar = ""
        self.stream.write("\rscoring " + bar + self.text() + "  ")
        self.stream.flush()

    def finish(self) -> None:
        self._draw()
        self.stream.write("\n")
        self.stream.flush()


class LogProgress(_Counter):
    """One INFO line every ``every_s`` seconds, and one at the end."""

    def __init__(self, every_s: float = 10.0, clock=time.monotonic) -> None:
        super().__init__(clock)
        self.every_s = every_s
        self._logged = 0.0

    def start(self, total_rows: int | None) -> None:
        super().start(total_rows)
        self._logged = self.started

    def advance(self, rows: int) -> None:
        self.add(rows)
        now = self.clock()
        if now - self._logged >= self.every_s:
            self._logged = now
            log.info("scoring: %s", self.text())

    def finish(self) -> None:
        log.info("scoring done: %s", self.text())


def progress_for(stream: TextIO | None = None) -> Progress:
    """A bar when ``stream`` (default stderr) is a terminal, log lines otherwise."""
    stream = stream or sys.stderr
    isatty = getattr(stream, "isatty", None)
    return TerminalProgress(stream) if callable(isatty) and isatty() else LogProgress()
