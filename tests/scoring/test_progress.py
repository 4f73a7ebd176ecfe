"""A bar on a terminal, periodic log lines elsewhere."""

from __future__ import annotations

import io
import logging

from mlops_ci.scoring.progress import LogProgress, TerminalProgress, progress_for


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_terminal_bar_is_redrawn_in_place_with_the_share_done():
    stream, clock = Tty(), Clock()
    bar = TerminalProgress(stream, clock=clock)
    bar.start(1000)
    clock.now = 1.0
    bar.advance(250)
    clock.now = 1.05
    bar.advance(250)  # within 0.1 s of the last drawing: not redrawn
    bar.finish()
    text = stream.getvalue()
    assert text.count("\r") == 2 and text.endswith("\n")
    assert "[#######.......................] 250/1,000 rows (25 %), 250 rows/s" in text
    assert "500/1,000 rows (50 %)" in text


def test_log_lines_come_every_few_seconds_and_at_the_end(caplog):
    clock = Clock()
    progress = LogProgress(every_s=10, clock=clock)
    progress.start(None)
    with caplog.at_level(logging.INFO, logger="mlops_ci.scoring.progress"):
        for _ in range(25):
            clock.now += 1
            progress.advance(100)
        progress.finish()
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        "scoring: 1,000 rows, 100 rows/s",
        "scoring: 2,000 rows, 100 rows/s",
        "scoring done: 2,500 rows, 100 rows/s",
    ]
    assert "\r" not in "".join(lines)


def test_the_kind_follows_the_stream():
    assert isinstance(progress_for(Tty()), TerminalProgress)
    assert isinstance(progress_for(io.StringIO()), LogProgress)
