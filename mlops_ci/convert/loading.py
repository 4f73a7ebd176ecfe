"""The native model behind a model URI, with its signature, input example and lineage.

Accepted: MLflow model URIs (``models:/name/3``, ``models:/name@challenger``,
``runs:/<id>/model``, ``models:/m-<id>``), a local MLflow model folder (with ``MLmodel``)
and a ``.onnx`` file (passed through unchanged).
"""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlops_ci.convert import ModelNotFoundError, UnsupportedModelError
from mlops_ci.convert.columns import InputColumn, columns_from_signature
from mlops_ci.errors import UsageError
from mlops_ci.tracking.store import TrackingStore

REGISTERED = re.compile(r"^models:/(?P<name>[^/@]+)(?:/(?P<version>\d+)|@(?P<alias>[\w-]+))/?$")
SUPPORTED_FLAVORS = ("onnx", "sklearn", "xgboost", "lightgbm")


@dataclass(frozen=True)
class NativeModel:
    model: Any
    flavor: str  # onnx | sklearn | xgboost | lightgbm
    uri: str
    columns: list[InputColumn] | None = None
    input_example: Any = None  # a pandas DataFrame when the model was logged with one
    name: str | None = None
    version: str | None = None
    lineage: dict[str, str] = field(default_factory=dict)

    @property
    def is_onnx(self) -> bool:
        return self.flavor == "onnx"


def load_native_model(uri: str, *, store: TrackingStore | None, cwd: Path) -> NativeModel:
    path = Path(uri).expanduser()
    if not path.is_absolute():
        path = cwd / path
    if uri.endswith(".onnx"):
        if not path.is_file():
            raise ModelNotFoundError(f"ONNX file {uri} does not exist")
        return NativeModel(model=load_onnx(path), flavor="onnx", uri=str(path))
    if path.is_dir():
        if not (path / "MLmodel").is_file():
            raise UsageError(f"{uri} is a folder without an MLmodel file; pass an MLflow model folder or URI")
        return _from_local_folder(path, uri, name=None, version=None, lineage={})
    if ":" not in uri:
        raise UsageError(
            f"model {uri!r} is neither a model URI (models:/..., runs:/...) nor an existing path"
        )
    if store is None:
        raise UsageError(f"{uri} is a model URI: reading it needs an MLflow tracking store")
    return _from_mlflow(uri, store)


def _from_mlflow(uri: str, store: TrackingStore) -> NativeModel:
    from mlflow.exceptions import MlflowException

    from mlops_ci.tracking.store import connect, tracking_errors

    client = connect(store)
    name = version = None
    lineage: dict[str, str] = {}
    match = REGISTERED.match(uri)
    with tracking_errors(store):
        try:
            if match:
                name = match.group("name")
                if match.group("alias"):
                    found = client.get_model_version_by_alias(name, match.group("alias"))
                else:
                    found = client.get_model_version(name, match.group("version"))
                version = str(found.version)
                lineage = {k: v for k, v in (found.tags or {}).items() if k.startswith("mlops_ci.")}
                if found.run_id:
                    lineage.setdefault("mlops_ci.run_id", found.run_id)
                # Pin the version: the alias may move while we work.
                uri = f"models:/{name}/{version}"
            import mlflow

            local = Path(tempfile.mkdtemp(prefix="mlops-ci-model-"))
            folder = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=str(local)))
        except MlflowException as exc:
            code = getattr(exc, "error_code", None)
            if code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"):
                raise ModelNotFoundError(
                    f"model {uri} does not exist in {store.display_uri}", registered=True
                ) from None
            raise
    if not (folder / "MLmodel").is_file():
        candidates = [p.parent for p in folder.rglob("MLmodel")]
        if not candidates:
            raise UsageError(f"{uri} holds no MLflow model (no MLmodel file)")
        folder = candidates[0]
    return _from_local_folder(folder, uri, name=name, version=version, lineage=lineage)


def _from_local_folder(
    folder: Path, uri: str, *, name: str | None, version: str | None, lineage: dict[str, str]
) -> NativeModel:
    from mlflow.models import Model

    meta = Model.load(str(folder))
    flavors = meta.flavors or {}
    columns = columns_from_signature(meta.signature)
    try:
        example = meta.load_input_example(str(folder))
    except Exception:  # noqa: BLE001 - an unreadable example only costs us the fallback
        example = None
    if example is not None and not hasattr(example, "columns"):
        example = None  # tensors: the holdout provides the rows
    common = dict(
        uri=uri, columns=columns, input_example=example, name=name, version=version, lineage=lineage
    )
    if "onnx" in flavors:
        data = flavors["onnx"].get("data", "model.onnx")
        return NativeModel(model=load_onnx(folder / data), flavor="onnx", **common)
    if "sklearn" in flavors:
        import mlflow.sklearn

        return NativeModel(model=mlflow.sklearn.load_model(str(folder)), flavor="sklearn", **common)
    if "xgboost" in flavors:
        import mlflow.xgboost

        return NativeModel(model=mlflow.xgboost.load_model(str(folder)), flavor="xgboost", **common)
    if "lightgbm" in flavors:
        import mlflow.lightgbm

        return NativeModel(model=mlflow.lightgbm.load_model(str(folder)), flavor="lightgbm", **common)
    names = ", ".join(sorted(k for k in flavors if k != "python_function")) or "python_function only"
    raise UnsupportedModelError(
        f"model {uri} has flavors {names}; ONNX conversion supports {', '.join(SUPPORTED_FLAVORS)}: log it "
        "with mlflow.sklearn, mlflow.xgboost, mlflow.lightgbm or mlflow.onnx",
        estimator=names,
    )


def load_onnx(path: Path) -> Any:
    import onnx

    try:
        return onnx.load(str(path))
    except Exception as exc:  # noqa: BLE001 - onnx raises DecodeError and others
        raise UsageError(f"{path} is not a readable ONNX model: {type(exc).__name__}") from None
