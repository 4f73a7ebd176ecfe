"""`mlops-ci serve`: run the model server locally, without a container.

What to serve, in order: the MODEL argument - a folder with model-settings.json (such as
``<out-dir>/package/model``), a build context (its ``model/``), an ``.onnx`` file, or a
model URI (``models:/name@challenger``, ``runs:/...``) converted to ONNX on the fly -
else the model of the last `mlops-ci package`, else that of the last `mlops-ci register`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mlops_ci.errors import UsageError

log = logging.getLogger(__name__)


def serve_command(
    flags: Mapping[str, Any], *, env: Mapping[str, str] | None = None, cwd: Path | None = None
) -> int:
    from mlops_ci.runner import resolve_options
    from mlops_ci.serving.config import ConfigError, config_from_args
    from mlops_ci.serving.server import configure_logging, serve
    from mlops_ci.steps.base import GLOBAL_OPTIONS

    env = dict(os.environ) if env is None else dict(env)
    cwd = (cwd or Path.cwd()).resolve()
    config, values = resolve_options(flags, env=env, cwd=cwd, top_level=GLOBAL_OPTIONS)
    model_dir = prepare_model_dir(flags.get("model"), values=values, project_dir=config.base_dir, cwd=cwd)
    try:
        server_config = config_from_args(flags, env, model_dir=model_dir, defaults={"host": "127.0.0.1"})
    except ConfigError as exc:
        raise UsageError(str(exc)) from None
    configure_logging(server_config.log_level)
    from mlops_ci.serving.model import ModelLoadError
    from mlops_ci.serving.settings import SettingsError

    try:
        return serve(server_config)
    except (SettingsError, ModelLoadError) as exc:
        raise UsageError(str(exc)) from None
    except OSError as exc:
        raise UsageError(
            f"cannot listen on {server_config.host}:{server_config.port}: {exc.strerror}; choose another --port"
        ) from None


def prepare_model_dir(model: str | None, *, values: Mapping[str, Any], project_dir: Path, cwd: Path) -> Path:
    from mlops_ci.convert import ModelNotFoundError
    from mlops_ci.convert.model_dir import servable_model_dir
    from mlops_ci.result import earlier_result
    from mlops_ci.tracking.store import resolve_store

    out_dir: Path = values["out_dir"]
    registered = earlier_result(out_dir, "register")
    registered_uri = (registered.outputs.get("model-uri") or None) if registered else None
    try:
        return servable_model_dir(
            model,
            out_dir=out_dir,
            registered_uri=registered_uri,
            store=lambda: resolve_store(
                values.get("tracking_uri"), project_dir=project_dir, retry_timeout_s=values["retry_timeout"]
            ),
            model_name=values.get("model_name"),
            cwd=cwd,
        )
    except ModelNotFoundError as exc:
        hint = (
            "register it first or check the MODEL argument" if exc.registered else "check the MODEL argument"
        )
        raise UsageError(f"{exc}; {hint}") from None
