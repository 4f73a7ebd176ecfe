"""Finding, loading and scoring the candidate and the baseline.

A model is named by a registry URI (``models:/<name>/<version>``, ``models:/<name>@<alias>``,
``models:/m-<id>``), a run (``runs:/<run-id>/<path>``) or a local MLflow model folder. It is
downloaded once; labels (or regression values) come from ``mlflow.pyfunc`` — the model as it
will be served, with its signature enforced — and probabilities from ``predict_proba`` of
the scikit-learn flavor when the model has one. Other flavors are judged on their labels
only: the probability metrics (ROC AUC, log loss, Brier) are then skipped, with that reason.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mlops_ci.errors import SettingError, UsageError
from mlops_ci.tracking.store import TrackingStore, tracking_errors

if TYPE_CHECKING:
    import pandas as pd
    from mlflow.tracking import MlflowClient

log = logging.getLogger(__name__)

VERSION_URI = re.compile(r"^models:/(?P<name>[^/@]+)/(?P<version>\d+)$")
ALIAS_URI = re.compile(r"^models:/(?P<name>[^/@]+)@(?P<alias>[^/]+)$")
LOGGED_MODEL_URI = re.compile(r"^models:/(?P<id>m-[0-9a-f]+)$")
RUN_URI = re.compile(r"^runs:/(?P<run>[0-9a-f]+)/(?P<path>.+)$")
MISSING_CODES = {"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"}


@dataclass(frozen=True)
class ModelRef:
    """Where a model comes from; ``version`` and ``run_id`` when the registry knows them."""

    role: str
    uri: str
    name: str | None = None
    version: str | None = None
    run_id: str | None = None
    local_path: Path | None = None

    @property
    def label(self) -> str:
        if self.name and self.version:
            return f"{self.name} v{self.version}"
        return self.uri


def _missing(exc: Exception) -> bool:
    return getattr(exc, "error_code", None) in MISSING_CODES


def resolve(client: MlflowClient | None, store: TrackingStore, uri: str, *, role: str) -> ModelRef:
    """The model ``uri`` names, or a usage error about the setting ``role`` when it does not exist."""
    from mlflow.exceptions import MlflowException

    path = Path(uri).expanduser()
    if "://" not in uri and ":/" not in uri:
        if (path / "MLmodel").is_file():
            return ModelRef(role, str(path.resolve()), local_path=path.resolve())
        raise SettingError(
            f"{role} {uri!r} is neither a models:/ or runs:/ URI nor a folder with an MLmodel file",
            setting=role,
        )
    assert client is not None
    where = store.display_uri
    with tracking_errors(store):
        try:
            if match := VERSION_URI.match(uri):
                version = client.get_model_version(match["name"], match["version"])
                return ModelRef(role, uri, version.name, str(version.version), version.run_id)
            if match := ALIAS_URI.match(uri):
                version = client.get_model_version_by_alias(match["name"], match["alias"])
                return ModelRef(
                    role,
                    f"models:/{version.name}/{version.version}",
                    version.name,
                    str(version.version),
                    version.run_id,
                )
            if match := LOGGED_MODEL_URI.match(uri):
                logged = client.get_logged_model(match["id"])
                return ModelRef(role, uri, run_id=logged.source_run_id)
            if match := RUN_URI.match(uri):
                run = client.get_run(match["run"])
                return ModelRef(role, uri, run_id=run.info.run_id)
        except MlflowException as exc:
            if _missing(exc):
                raise SettingError(f"{role} model {uri} does not exist in {where}", setting=role) from None
            raise
    raise SettingError(
        f"{role} {uri!r} is not a model URI this tool understands (models:/<name>/<version>, "
        "models:/<name>@<alias>, models:/m-<id>, runs:/<run-id>/<path> or a folder)",
        setting=role,
    )


def find_alias(
    client: MlflowClient, store: TrackingStore, name: str, alias: str, *, role: str
) -> ModelRef | None:
    """The version ``alias`` points at, or None when the model or the alias does not exist."""
    from mlflow.exceptions import MlflowException

    with tracking_errors(store):
        try:
            version = client.get_model_version_by_alias(name, alias)
        except MlflowException as exc:
            if _missing(exc):
                return None
            raise
    return ModelRef(
        role, f"models:/{version.name}/{version.version}", version.name, str(version.version), version.run_id
    )


@dataclass
class Predictions:
    """What a model said about the holdout rows."""

    labels: np.ndarray | None = None  # predicted classes, or regression values
    scores: np.ndarray | None = None  # predict_proba, columns in `classes` order
    classes: np.ndarray | None = None
    error: str | None = None


@dataclass
class LoadedModel:
    ref: ModelRef
    path: Path
    pyfunc: Any
    sklearn: Any | None
    signature: Any | None
    flavors: tuple[str, ...]
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def classes(self) -> np.ndarray | None:
        classes = getattr(self.sklearn, "classes_", None)
        return None if classes is None else np.asarray(classes)

    @property
    def is_classifier(self) -> bool | None:
        if self.sklearn is None:
            return None
        from sklearn.base import is_classifier

        return bool(is_classifier(self.sklearn))

    @property
    def has_scores(self) -> bool:
        return (
            self.sklearn is not None and hasattr(self.sklearn, "predict_proba") and self.classes is not None
        )

    def _signature_columns(self, features: pd.DataFrame) -> pd.DataFrame:
        """The columns the signature names, in its order — what the pyfunc passes on; the raw
        scikit-learn model checks feature names against those it was fitted on."""
        names = (
            [spec.name for spec in self.signature.inputs.inputs]
            if self.signature is not None
            and self.signature.inputs is not None
            and self.signature.inputs.has_input_names()
            else []
        )
        present = [n for n in names if n in features.columns]
        return features[present] if present and len(present) == len(names) else features

    def predict(self, features: pd.DataFrame, *, want_scores: bool) -> Predictions:
        """Labels from the pyfunc (as served), probabilities from scikit-learn. A model that
        cannot score the holdout gives ``error`` instead of raising."""
        try:
            with _quiet("mlflow.models.utils", "mlflow.pyfunc"):
                raw = self.pyfunc.predict(features)
        except Exception as exc:  # noqa: BLE001 - any failure of the model itself is reported, not raised
            return Predictions(error=_describe(exc))
        labels = _one_column(raw, len(features))
        if isinstance(labels, str):
            return Predictions(error=labels)
        scores = None
        if want_scores and self.has_scores:
            try:
                scores = np.asarray(
                    self.sklearn.predict_proba(self._signature_columns(features)), dtype=np.float64
                )
            except Exception as exc:  # noqa: BLE001
                return Predictions(
                    labels=labels, classes=self.classes, error=f"predict_proba failed: {_describe(exc)}"
                )
        return Predictions(labels=labels, scores=scores, classes=self.classes)


@contextmanager
def _quiet(*names: str) -> Iterator[None]:
    """MLflow warns on every call that columns outside the signature are ignored; the
    data check reports extra columns once instead."""
    loggers = [logging.getLogger(name) for name in names]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:300] if text else ''}".rstrip(": ")


def _one_column(raw: Any, rows: int) -> np.ndarray | str:
    import pandas as pd

    if isinstance(raw, pd.DataFrame):
        if raw.shape[1] != 1:
            return f"the model returned {raw.shape[1]} columns; validate expects one prediction per row"
        raw = raw.iloc[:, 0]
    if isinstance(raw, pd.Series):
        raw = raw.to_numpy()
    array = np.asarray(raw)
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 1:
        return f"the model returned an array of shape {array.shape}; validate expects one prediction per row"
    if len(array) != rows:
        return f"the model returned {len(array)} predictions for {rows} rows"
    if array.dtype.kind == "U":
        array = array.astype(object)
    return array


def download(ref: ModelRef, destination: Path) -> Path:
    """A local copy of the model (the folder itself for a local model)."""
    if ref.local_path is not None:
        return ref.local_path
    import mlflow.artifacts

    destination.mkdir(parents=True, exist_ok=True)
    return Path(mlflow.artifacts.download_artifacts(artifact_uri=ref.uri, dst_path=str(destination)))


def load(ref: ModelRef, destination: Path, store: TrackingStore) -> LoadedModel:
    """Download and load a model; a model that cannot be loaded is a usage error (the URI
    points at something that is not a usable MLflow model)."""
    import mlflow.pyfunc
    from mlflow.exceptions import MlflowException
    from mlflow.models import Model

    with tracking_errors(store):
        try:
            path = download(ref, destination / ref.role)
        except MlflowException as exc:
            if _missing(exc):
                raise UsageError(
                    f"{ref.role} model {ref.uri} has no files in the artifact store; re-register it"
                ) from None
            raise
    try:
        meta = Model.load(str(path / "MLmodel"))
        pyfunc = mlflow.pyfunc.load_model(str(path))
    except Exception as exc:  # noqa: BLE001 - a model that does not load is the user's to fix
        raise UsageError(f"{ref.role} model {ref.uri} cannot be loaded: {_describe(exc)}") from None
    flavors = tuple(meta.flavors)
    sklearn_model = None
    if "sklearn" in flavors:
        import mlflow.sklearn

        try:
            # The pyfunc wraps the scikit-learn object it loaded: no second (slow) load.
            sklearn_model = pyfunc.get_raw_model()
            if not hasattr(sklearn_model, "predict"):
                sklearn_model = mlflow.sklearn.load_model(str(path))
        except Exception as exc:  # noqa: BLE001 - fall back to labels only
            log.warning(
                "validate: the %s's scikit-learn flavor did not load (%s); using its labels only",
                ref.role,
                _describe(exc),
            )
    return LoadedModel(ref, path, pyfunc, sklearn_model, meta.signature, flavors)
