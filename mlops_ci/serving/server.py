"""``python -m mlops_ci.serving MODEL_DIR``: load, warm up, serve, stop gracefully.

The port is bound first: while the model loads and warms up (in a thread),
``/v2/health/live`` answers 200 and everything else 503, so orchestrators can tell
"starting" from "dead". Ready only once the warm-up is done.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from mlops_ci.serving.config import ConfigError, ServerConfig, add_server_arguments, config_from_args

log = logging.getLogger("mlops_ci.serving")
DEFAULT_MODEL_DIR = "/model"


def server_version() -> str:
    from mlops_ci import __version__

    return __version__


class StartingApp:
    """Answers while the model loads: live 200, everything else 503."""

    def __init__(self) -> None:
        from mlops_ci.serving.metrics import Metrics

        self.metrics = Metrics("", "")

    def should_offload(self, path: str, body_length: int) -> float:
        return 0.0

    def handle(self, method: str, path: str, content_type: str, body: bytes) -> Any:
        from mlops_ci.serving.app import Response

        if path == "/v2/health/live":
            return Response(200, b'{"live":true}', "v2_live")
        if path in ("/v2/health/ready", "/ping", "/health"):
            return Response(503, b'{"ready":false}', "ready", reason="not_ready")
        return Response(
            503, b'{"error":"the model is loading; retry shortly"}', "starting", reason="not_ready"
        )


def load_app(config: ServerConfig) -> Any:
    """Load the model, build the app, warm up. Runs in a thread at start-up."""
    from mlops_ci.serving.app import App
    from mlops_ci.serving.model import OnnxModel
    from mlops_ci.serving.requestlog import RequestLog
    from mlops_ci.serving.settings import load_settings

    settings = load_settings(config.model_dir)
    model = OnnxModel(
        settings,
        config.model_dir,
        intra_op_threads=config.intra_op_threads,
        inter_op_threads=config.inter_op_threads,
        max_rows=config.max_batch_rows,
    )
    request_log = None
    if config.request_log and config.request_log_sample > 0:
        request_log = RequestLog(
            config.request_log,
            model=settings.name,
            version=settings.version,
            max_bytes=config.request_log_max_bytes,
            keep=config.request_log_keep,
            columns_of=model.decoder.columns_of,
        )
    app = App(
        model,
        server_version=server_version(),
        request_log=request_log,
        request_log_sample=config.request_log_sample,
    )
    model.warm_up(config.warmup_runs)
    return app


def serve(
    config: ServerConfig,
    *,
    sock: Any = None,
    on_ready: Callable[[str, int], None] | None = None,
    started_at: float | None = None,
) -> int:
    """Serve until SIGTERM/SIGINT; returns the process exit code."""
    from mlops_ci.serving.http import HttpServer, run_loop

    started_at = started_at or time.monotonic()
    failure: list[BaseException] = []

    async def main() -> int:
        server = HttpServer(StartingApp(), config)
        host, port = await server.start(sock)
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):  # not the main thread, or Windows
                loop.add_signal_handler(signum, stop.set)
        try:
            app = await loop.run_in_executor(None, load_app, config)
        except Exception as exc:  # noqa: BLE001 - re-raised below, after the port is closed
            failure.append(exc)
            server.begin_shutdown()
            await server.wait_drained(1.0)
            return 1
        server.handler = app
        app.ready = True
        settings = app.settings
        log.info(
            "serving %s version %s on http://%s:%d (ready in %.2f s; V2 at /v2/models/%s/infer, MLflow at /invocations)",
            settings.name,
            settings.version,
            host,
            port,
            time.monotonic() - started_at,
            settings.name,
        )
        if on_ready is not None:
            on_ready(host, port)
        await stop.wait()
        log.info("shutting down: finishing %d open connection(s)", len(server.connections))
        app.draining = True
        app.ready = False
        server.begin_shutdown()
        drained = await server.wait_drained(config.shutdown_timeout)
        if app.request_log is not None:
            app.request_log.close()
        log.info("stopped%s", "" if drained else " (some connections were cut after the shutdown timeout)")
        return 0

    code = run_loop(main)
    if failure:
        raise failure[0]
    return code


def check(config: ServerConfig) -> int:
    """Load and warm up the model, run the input example once, print a summary."""
    import numpy as np

    app = load_app(config)
    model = app.model
    example = app.settings.input_example
    if not example:
        print(f"ok: {app.settings.name} {app.settings.version} loads (no input example to run)")
        return 0
    feeds, rows = model.decoder.decode(example, strict=False)
    outputs = model.run(feeds)
    shapes = ", ".join(f"{k} {list(np.shape(v))}" for k, v in outputs.items())
    print(f"ok: {app.settings.name} {app.settings.version} predicts {rows} example row(s): {shapes}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m mlops_ci.serving",
        description="Serve an ONNX model made by `mlops-ci package` (Open Inference Protocol V2, "
        "MLflow /invocations, Prometheus /metrics).",
    )
    parser.add_argument(
        "model_dir",
        nargs="?",
        help=f"folder with model-settings.json and the ONNX file (default: env MLOPS_CI_SERVE_MODEL_DIR, else {DEFAULT_MODEL_DIR})",
    )
    parser.add_argument(
        "--check", action="store_true", help="load the model, run the input example once and exit"
    )
    add_server_arguments(parser)
    return parser


def configure_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    root = logging.getLogger("mlops_ci.serving")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False


def main(argv: Sequence[str] | None = None) -> int:
    started_at = time.monotonic()
    parser = build_parser()
    args = parser.parse_args(argv)
    model_dir = Path(args.model_dir or os.environ.get("MLOPS_CI_SERVE_MODEL_DIR") or DEFAULT_MODEL_DIR)
    try:
        config = config_from_args(args, model_dir=model_dir)
    except ConfigError as exc:
        parser.exit(2, f"{parser.prog}: error: {exc}\n")
    configure_logging(config.log_level)
    from mlops_ci.serving.model import ModelLoadError
    from mlops_ci.serving.settings import SettingsError

    try:
        if args.check:
            return check(config)
        return serve(config, started_at=started_at)
    except (SettingsError, ModelLoadError) as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001 - e.g. an input example that no longer fits
        print(f"{parser.prog}: error: cannot start: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(
            f"{parser.prog}: error: cannot listen on {config.host}:{config.port}: {exc.strerror}",
            file=sys.stderr,
        )
        return 2
