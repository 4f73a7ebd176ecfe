"""The user's training command: checked before anything is created, then run with its
output streamed live and kept in a log file."""

from __future__ import annotations

import json
import logging
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, Any

from mlops_ci.errors import SettingError, UsageError
from mlops_ci.tracking.child_env import child_environment

log = logging.getLogger(__name__)
PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_.-]*)\}")
MAX_HASH_SEED = 4294967295
KILL_GRACE_S = 10.0


@dataclass(frozen=True)
class TrainingCommand:
    argv: tuple[str, ...]
    cwd: Path
    env: Mapping[str, str]
    seed: int
    params: Mapping[str, Any]

    def with_env(self, extra: Mapping[str, str]) -> TrainingCommand:
        return replace(self, env={**self.env, **extra})

    def display(self) -> str:
        return shlex.join(self.argv)


@dataclass(frozen=True)
class CommandOutcome:
    returncode: int
    timed_out: bool = False

    @property
    def succeeded(self) -> bool:
        return self.returncode == 0 and not self.timed_out

    def describe(self) -> str:
        if self.timed_out:
            return "timed out and was stopped"
        if self.returncode < 0:
            return f"was killed by signal {-self.returncode}"
        return f"failed with exit code {self.returncode}"


def prepare_command(
    command: str | None,
    *,
    params: Mapping[str, Any],
    seed: int,
    project_dir: Path,
    env: Mapping[str, str],
    pass_env: Iterable[str] = (),
    data: Path | None = None,
) -> TrainingCommand:
    """Parse and check the command: quoting, placeholders and that the program exists.

    The command is the pull request's code: it gets ``env`` without mlops-ci's own inputs
    and without CI / code-host credentials (see ``child_env``), except the exact names in
    ``pass_env``."""
    if not command or not command.strip():
        raise SettingError("no training command", setting="command")
    if seed > MAX_HASH_SEED:
        raise SettingError(f"the seed must be at most {MAX_HASH_SEED}, got {seed}", setting="seed")
    try:
        argv = shlex.split(command)
    except ValueError as exc:
        raise SettingError(
            f"training command cannot be parsed ({exc}); check its quoting", setting="command"
        ) from None
    values = {key: str(value) for key, value in params.items()}
    values.setdefault("seed", str(seed))
    if data is not None:
        # The data the command trains on: {data} and MLOPS_CI_DATA (the first data input, or
        # the training part of a data reference's snapshot).
        values.setdefault("data", str(data))
    argv = [_substitute(arg, values) for arg in argv]
    _check_program(argv[0], project_dir, env)
    child = child_environment(env, pass_env=pass_env)
    if child.dropped:
        log.info(
            "train: the training command does not get %s (CI credentials; pass-env NAME passes one)",
            ", ".join(child.dropped),
        )
    child_env = dict(child.env)
    child_env.update(
        {
            "MLOPS_CI_SEED": str(seed),
            "MLOPS_CI_PARAMS": json.dumps(dict(params), sort_keys=True, default=str),
            "PYTHONHASHSEED": str(seed),
            "PYTHONUNBUFFERED": "1",
        }
    )
    if data is not None:
        child_env["MLOPS_CI_DATA"] = str(data)
    return TrainingCommand(tuple(argv), project_dir, child_env, seed, dict(params))


def _substitute(arg: str, values: Mapping[str, str]) -> str:
    def replace_one(match: re.Match[str]) -> str:
        token = match.group(0)
        if token in ("{{", "}}"):
            return token[0]
        name = match.group(1)
        if name not in values:
            raise SettingError(
                f"training command uses {{{name}}} but there is no parameter {name!r}; add it to the parameters",
                setting="params",
            )
        return values[name]

    return PLACEHOLDER.sub(replace_one, arg)


def _check_program(program: str, project_dir: Path, env: Mapping[str, str]) -> None:
    if "/" in program:
        path = Path(program) if Path(program).is_absolute() else project_dir / program
        if not path.is_file():
            raise SettingError(
                f"training command {program!r} does not exist in {project_dir}", setting="command"
            )
        if not os.access(path, os.X_OK):
            raise UsageError(
                f"training command {program!r} is not executable; chmod +x it or "
                "prefix it with its interpreter (e.g. 'python')"
            )
        return
    if shutil.which(program, path=env.get("PATH", os.defpath)) is None:
        raise SettingError(
            f"training command {program!r} was not found on PATH; install it or fix the command",
            setting="command",
        )


def run_command(
    command: TrainingCommand,
    *,
    log_path: Path,
    timeout_s: float | None,
    on_abort: Callable[[], None],
    stream: IO[bytes] | None = None,
) -> CommandOutcome:
    """Run the command in its own process group, copying its output to ``stream``
    (stderr by default) and to ``log_path`` as it comes.

    On timeout the whole process group is stopped. On Ctrl-C or SIGTERM (a cancelled CI
    job) the group is stopped too, ``on_abort`` runs, and KeyboardInterrupt propagates.
    """
    stream = stream or sys.stderr.buffer
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as log_file:
        try:
            process = subprocess.Popen(
                list(command.argv),
                cwd=command.cwd,
                env=dict(command.env),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        except OSError as exc:
            raise UsageError(
                f"training command {command.argv[0]!r} could not start: {exc.strerror}"
            ) from None
        pump = threading.Thread(target=_pump, args=(process.stdout, stream, log_file), daemon=True)
        pump.start()
        with _sigterm_as_interrupt():
            try:
                returncode = process.wait(timeout=timeout_s)
                timed_out = False
            except subprocess.TimeoutExpired:
                returncode = _stop_group(process)
                timed_out = True
            except BaseException:
                _stop_group(process)
                on_abort()
                raise
        pump.join(timeout=KILL_GRACE_S)
    return CommandOutcome(returncode, timed_out)


def _pump(source: IO[bytes], stream: IO[bytes], log_file: IO[bytes]) -> None:
    # read1 returns what is available, so progress output appears as it is written.
    while chunk := source.read1(65536):  # type: ignore[attr-defined]
        log_file.write(chunk)
        try:
            stream.write(chunk)
            stream.flush()
        except (OSError, ValueError):
            pass  # our own stderr went away; keep logging to the file


def _stop_group(process: subprocess.Popen[bytes]) -> int:
    for sig, grace in ((signal.SIGTERM, KILL_GRACE_S), (signal.SIGKILL, None)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            break
        try:
            return process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            continue
    return process.wait()


class _sigterm_as_interrupt:
    """Within the block, SIGTERM raises KeyboardInterrupt so cleanup code runs."""

    def __enter__(self) -> None:
        self.previous = None
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGTERM, self._raise)

    def __exit__(self, *exc: object) -> None:
        if self.previous is not None:
            signal.signal(signal.SIGTERM, self.previous)

    @staticmethod
    def _raise(signum: int, frame: object) -> None:
        raise KeyboardInterrupt
