"""`mlops-ci serve`: run the model server locally, without a container.

What to serve, in order: the MODEL argument - a folder with model-settings.json (such as
``<out-dir>/package/model``), a build context (its ``model/``), an ``.onnx`` file, or a
model URI (``models:/name@challenger``, ``runs:/...``) converted to ONNX on the fly -
else the model of the last `mlops-ci package`, else that of the last `mlops-ci register`.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mlops_ci.errors import UsageError
from mlops_ci.serving.settings import SETTINGS_FILE

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
    out_dir: Path = values["out_dir"]
    if model is None:
        packaged = out_dir / "package" / "model"
        if (packaged / SETTINGS_FILE).is_file():
            return packaged
        registered = out_dir / "register.json"
        if registered.is_file():
            from mlops_ci.result import read_step_result

            uri = read_step_result(registered).outputs.get("model-uri")
            if uri:
                return _convert_on_the_fly(uri, values=values, project_dir=project_dir, cwd=cwd)
        raise UsageError(
            f"nothing to serve: pass a model (a folder from `mlops-ci package`, an .onnx file or a model URI), "
            f"or run `mlops-ci package` first (no {packaged / SETTINGS_FILE})"
        )
    path = Path(model).expanduser()
    path = path if path.is_absolute() else cwd / path
    if path.is_dir() and (path / SETTINGS_FILE).is_file():
        return path
    if path.is_dir() and (path / "model" / SETTINGS_FILE).is_file():
        return path / "model"
    return _convert_on_the_fly(model, values=values, project_dir=project_dir, cwd=cwd)


def _convert_on_the_fly(uri: str, *, values: Mapping[str, Any], project_dir: Path, cwd: Path) -> Path:
    from mlops_ci.convert import UnsupportedModelError
    from mlops_ci.convert.build import convert
    from mlops_ci.convert.loading import load_native_model
    from mlops_ci.tracking.store import resolve_store

    store = resolve_store(
        values.get("tracking_uri"), project_dir=project_dir, retry_timeout_s=values["retry_timeout"]
    )
    log.info("converting %s to ONNX", uri)
    native = load_native_model(uri, store=store, cwd=cwd)
    name = values.get("model_name") or native.name or Path(uri.rstrip("/")).stem or "model"
    try:
        converted = convert(native, name=name, version=native.version or "1", opset=None, precision="float32")
    except UnsupportedModelError as exc:
        raise UsageError(f"cannot serve {uri}: {exc}") from None
    folder = Path(tempfile.mkdtemp(prefix="mlops-ci-serve-"))
    (folder / converted.settings.model_file).write_bytes(converted.onnx_bytes)
    converted.settings.write(folder)
    return folder
