"""Server settings: one definition per setting drives the flag ``--name`` and the
environment variable ``MLOPS_CI_SERVE_<NAME>`` (how a container is configured).

Standard library only: the CLI imports this module to build `mlops-ci serve`'s flags.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

ENV_PREFIX = "MLOPS_CI_SERVE_"
KIB = 1024
MIB = 1024 * KIB


class ConfigError(ValueError):
    """A setting has a value the server cannot use; the message names the setting."""


@dataclass(frozen=True)
class Setting:
    name: str
    help: str
    kind: type = str
    default: Any = None
    minimum: float | None = None
    choices: tuple[str, ...] = ()

    @property
    def dest(self) -> str:
        return self.name.replace("-", "_")

    @property
    def env_var(self) -> str:
        return ENV_PREFIX + self.name.upper().replace("-", "_")


SETTINGS: tuple[Setting, ...] = (
    Setting("host", "Address to listen on", default="0.0.0.0"),
    Setting("port", "TCP port to listen on", int, 8080, minimum=0),
    Setting(
        "intra-op-threads",
        "ONNX Runtime threads within one inference (1 suits many small concurrent "
        "requests; raise it for large batches)",
        int,
        1,
        minimum=1,
    ),
    Setting("inter-op-threads", "ONNX Runtime threads across independent graph nodes", int, 1, minimum=1),
    Setting(
        "inference-threads",
        "Threads that run requests too large to run on the event loop (see --inline-budget-ms)",
        int,
        2,
        minimum=1,
    ),
    Setting(
        "inline-budget-ms",
        "Requests whose estimated inference time (from the warm-up) is below this run on the "
        "event loop without a thread hand-off; longer ones go to the inference threads so "
        "health checks stay responsive",
        float,
        2.0,
        minimum=0,
    ),
    Setting("max-body-bytes", "Largest request body accepted (larger: 413)", int, 16 * MIB, minimum=1),
    Setting("max-batch-rows", "Most rows accepted in one request (more: 413)", int, 100_000, minimum=1),
    Setting(
        "request-log",
        "Write sampled requests and predictions as JSON lines (format "
        "mlops-ci/request-log/v1) to this file, or '-' for standard output",
    ),
    Setting("request-log-sample", "Fraction of requests written to --request-log", float, 1.0, minimum=0),
    Setting(
        "request-log-max-bytes",
        "Rotate the request log file when it exceeds this size",
        int,
        100 * MIB,
        minimum=1024,
    ),
    Setting("request-log-keep", "Rotated request log files kept", int, 5, minimum=0),
    Setting(
        "access-log-sample",
        "Fraction of requests logged as an access-log line on standard error (server errors "
        "are always logged)",
        float,
        0.0,
        minimum=0,
    ),
    Setting(
        "warmup-runs", "Inferences on the input example before the server reports ready", int, 20, minimum=0
    ),
    Setting(
        "shutdown-timeout",
        "Seconds to let in-flight requests finish after SIGTERM before closing connections",
        float,
        30.0,
        minimum=0,
    ),
    Setting(
        "keepalive-timeout", "Seconds an idle keep-alive connection stays open", float, 15.0, minimum=0.1
    ),
    Setting(
        "request-timeout",
        "Seconds a client may take to send one request (headers and body)",
        float,
        30.0,
        minimum=0.1,
    ),
    Setting(
        "header-timeout",
        "Seconds a client may take to send a request's line and headers (also: to send a first "
        "request on a new connection); slower: 408 and close",
        float,
        10.0,
        minimum=0.1,
    ),
    Setting(
        "write-timeout",
        "Seconds a connection may keep more than --write-buffer-bytes of responses unread "
        "before it is closed (a client that sends but does not read)",
        float,
        10.0,
        minimum=0.1,
    ),
    Setting(
        "write-buffer-bytes",
        "Unsent response bytes per connection above which the server stops reading that "
        "connection until its client reads",
        int,
        256 * KIB,
        minimum=4096,
    ),
    Setting(
        "max-header-bytes",
        "Largest request line plus headers, counted while they arrive (larger: 431 and close)",
        int,
        64 * KIB,
        minimum=1024,
    ),
    Setting("max-headers", "Most header fields in one request (more: 431 and close)", int, 100, minimum=1),
    Setting("max-url-bytes", "Longest request target (longer: 414 and close)", int, 8 * KIB, minimum=64),
    Setting(
        "max-connections",
        "Most open connections; a new one beyond it closes the longest-idle connection, or, "
        "when none is idle, is answered 503 and closed (capped by the open-files limit)",
        int,
        1024,
        minimum=1,
    ),
    Setting(
        "max-buffered-bytes",
        "Request body bytes all connections together may hold in memory (arriving or waiting "
        "for an answer); a body that would exceed it: 503 and close",
        int,
        256 * MIB,
        minimum=1,
    ),
    Setting("log-level", "Server log level", default="info", choices=("debug", "info", "warning", "error")),
)


@dataclass(frozen=True)
class ServerConfig:
    """Resolved server settings (defaults as in ``SETTINGS``)."""

    model_dir: Path
    host: str = "0.0.0.0"
    port: int = 8080
    intra_op_threads: int = 1
    inter_op_threads: int = 1
    inference_threads: int = 2
    inline_budget_ms: float = 2.0
    max_body_bytes: int = 16 * MIB
    max_batch_rows: int = 100_000
    request_log: str | None = None
    request_log_sample: float = 1.0
    request_log_max_bytes: int = 100 * MIB
    request_log_keep: int = 5
    access_log_sample: float = 0.0
    warmup_runs: int = 20
    shutdown_timeout: float = 30.0
    keepalive_timeout: float = 15.0
    request_timeout: float = 30.0
    header_timeout: float = 10.0
    write_timeout: float = 10.0
    write_buffer_bytes: int = 256 * KIB
    max_header_bytes: int = 64 * KIB
    max_headers: int = 100
    max_url_bytes: int = 8 * KIB
    max_connections: int = 1024
    max_buffered_bytes: int = 256 * MIB
    log_level: str = "info"

    def __post_init__(self) -> None:
        for name in ("request_log_sample", "access_log_sample"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ConfigError(f"--{name.replace('_', '-')} must be between 0 and 1, got {value}")

    def replace(self, **changes: Any) -> ServerConfig:
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values.update(changes)
        return ServerConfig(**values)


def add_server_arguments(
    parser: argparse.ArgumentParser | Any, *, defaults: Mapping[str, Any] | None = None
) -> None:
    """Add one flag per setting. Values stay raw; ``config_from_args`` parses flags and
    environment variables with one parser and one error format."""
    defaults = defaults or {}
    for setting in SETTINGS:
        default = defaults.get(setting.dest, setting.default)
        parts = [setting.help]
        if setting.choices:
            parts.append("one of: " + ", ".join(setting.choices))
        if default is not None:
            parts.append(f"default: {default}")
        parts.append(f"env {setting.env_var}")
        parser.add_argument(
            "--" + setting.name,
            dest=setting.dest,
            default=None,
            metavar=setting.kind.__name__.upper() if setting.kind is not str else "VALUE",
            help="; ".join(parts).replace("%", "%%"),
        )


def config_from_args(
    args: argparse.Namespace | Mapping[str, Any],
    env: Mapping[str, str] | None = None,
    *,
    model_dir: Path,
    defaults: Mapping[str, Any] | None = None,
) -> ServerConfig:
    """Flag > environment variable > ``defaults`` > built-in default."""
    env = os.environ if env is None else env
    raw_args = vars(args) if isinstance(args, argparse.Namespace) else dict(args)
    defaults = defaults or {}
    values: dict[str, Any] = {}
    for setting in SETTINGS:
        raw = raw_args.get(setting.dest)
        where = "--" + setting.name
        if raw is None:
            env_raw = env.get(setting.env_var)
            if env_raw is not None and env_raw.strip():
                raw, where = env_raw, setting.env_var
        if raw is None:
            values[setting.dest] = defaults.get(setting.dest, setting.default)
            continue
        values[setting.dest] = _parse(setting, raw, where)
    return ServerConfig(model_dir=model_dir, **values)


def _parse(setting: Setting, raw: Any, where: str) -> Any:
    if setting.kind is not str and not isinstance(raw, str):
        value = raw
    else:
        text = str(raw).strip()
        try:
            value = setting.kind(text)
        except ValueError:
            kind = "an integer" if setting.kind is int else "a number"
            raise ConfigError(f"{where} must be {kind}, got {text!r}") from None
    if setting.choices and value not in setting.choices:
        raise ConfigError(f"{where} must be one of {', '.join(setting.choices)}, got {value!r}")
    if setting.minimum is not None and value < setting.minimum:
        raise ConfigError(f"{where} must be at least {setting.minimum:g}, got {value}")
    return value


def server_argv(config: ServerConfig, *, skip: Sequence[str] = ()) -> list[str]:
    """The flags that reproduce ``config`` (to start the server in another process)."""
    argv = [str(config.model_dir)]
    for setting in SETTINGS:
        value = getattr(config, setting.dest)
        if value is None or setting.dest in skip:
            continue
        argv += ["--" + setting.name, str(value)]
    return argv
