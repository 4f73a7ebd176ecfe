"""Which folder to serve: a model folder made by `mlops-ci package`, an .onnx file, or a
model URI converted to ONNX on the fly (for `mlops-ci serve` and `mlops-ci profile`)."""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable
from pathlib import Path

from mlops_ci.errors import UsageError
from mlops_ci.serving.settings import SETTINGS_FILE
from mlops_ci.tracking.store import TrackingStore

log = logging.getLogger(__name__)


def servable_model_dir(
    model: str | None,
    *,
    out_dir: Path,
    registered_uri: str | None,
    store: Callable[[], TrackingStore],
    model_name: str | None,
    cwd: Path,
) -> Path:
    """A folder with model-settings.json for ``model``; without one, the last package's
    folder in ``out_dir``, else the last registered model (``registered_uri``)."""
    if model is None:
        packaged = out_dir / "package" / "model"
        if (packaged / SETTINGS_FILE).is_file():
            return packaged
        if registered_uri:
            return _convert_on_the_fly(registered_uri, store=store(), model_name=model_name, cwd=cwd)
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
    return _convert_on_the_fly(model, store=store(), model_name=model_name, cwd=cwd)


def _convert_on_the_fly(uri: str, *, store: TrackingStore, model_name: str | None, cwd: Path) -> Path:
    from mlops_ci.convert import UnsupportedModelError
    from mlops_ci.convert.build import convert
    from mlops_ci.convert.loading import load_native_model

    log.info("converting %s to ONNX", uri)
    native = load_native_model(uri, store=store, cwd=cwd)
    name = model_name or native.name or Path(uri.rstrip("/")).stem or "model"
    try:
        converted = convert(native, name=name, version=native.version or "1", opset=None, precision="float32")
    except UnsupportedModelError as exc:
        raise UsageError(f"cannot serve {uri}: {exc}") from None
    folder = Path(tempfile.mkdtemp(prefix="mlops-ci-serve-"))
    (folder / converted.settings.model_file).write_bytes(converted.onnx_bytes)
    converted.settings.write(folder)
    return folder
