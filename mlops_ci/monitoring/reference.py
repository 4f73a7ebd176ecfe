"""The reference a deployed model is compared against, found through the registry: a
sample stored with the model version (``mlops-ci/drift-reference.parquet`` on its run),
else the training data the run recorded (``mlops-ci/data_fingerprints.json``), read from
the project and checked against its sha256."""

from __future__ import annotations

import json
import logging
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops_ci.errors import UsageError
from mlops_ci.tracking.store import TrackingStore, tracking_errors

if TYPE_CHECKING:
    import pandas as pd
    from mlflow.tracking import MlflowClient

log = logging.getLogger(__name__)

SAMPLE_ARTIFACT = "mlops-ci/drift-reference.parquet"
SAMPLE_TAG = "mlops_ci.drift.reference"
FINGERPRINTS_ARTIFACT = "mlops-ci/data_fingerprints.json"
_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[^/]+)|/(?P<version>\d+))$")


class ModelNotFound(UsageError):
    """The model version (or the alias) does not exist in the registry."""


class NoReference(UsageError):
    """The model version's reference data cannot be found. ``sample_helps``: storing a
    reference sample with the version, where the data is, would fix it."""

    def __init__(self, message: str, *, sample_helps: bool = False) -> None:
        super().__init__(message)
        self.sample_helps = sample_helps


@dataclass(frozen=True)
class ModelVersionRef:
    name: str
    version: str
    run_id: str | None

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}"


@dataclass(frozen=True)
class Reference:
    frame: pd.DataFrame
    source: str
    warnings: tuple[str, ...] = ()
    stored_sample: bool = False


def resolve_version(client: MlflowClient, store: TrackingStore, uri: str) -> ModelVersionRef:
    from mlflow.exceptions import MlflowException

    match = _URI.match(uri)
    if not match:
        raise UsageError(f"a model URI must be models:/NAME@ALIAS or models:/NAME/VERSION, got {uri!r}")
    name = match.group("name")
    with tracking_errors(store):
        try:
            if match.group("alias"):
                version = client.get_model_version_by_alias(name, match.group("alias"))
            else:
                version = client.get_model_version(name, match.group("version"))
        except MlflowException as exc:
            if getattr(exc, "error_code", None) in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
                raise ModelNotFound(
                    f"{uri} does not exist in {store.display_uri}; deploy a champion first"
                ) from None
            raise
    return ModelVersionRef(name, str(version.version), version.run_id)


def load_reference(
    client: MlflowClient, store: TrackingStore, model: ModelVersionRef, *, project_dir: Path
) -> Reference:
    if not model.run_id:
        raise NoReference(f"{model.uri} has no training run to find its reference data in")
    with tracking_errors(store), tempfile.TemporaryDirectory() as folder:
        listed = {item.path for item in client.list_artifacts(model.run_id, "mlops-ci")}
        if SAMPLE_ARTIFACT in listed:
            import pandas as pd

            path = client.download_artifacts(model.run_id, SAMPLE_ARTIFACT, folder)
            return Reference(
                pd.read_parquet(path), f"{model.uri} (stored reference sample)", stored_sample=True
            )
        if FINGERPRINTS_ARTIFACT not in listed:
            raise NoReference(
                f"{model.uri} has neither a stored reference sample nor recorded training data "
                "(it was not trained with `mlops-ci train`)"
            )
        entries = json.loads(
            Path(client.download_artifacts(model.run_id, FINGERPRINTS_ARTIFACT, folder)).read_text()
        )
    return _training_files(entries, model, project_dir)


def _training_files(entries: list[dict[str, Any]], model: ModelVersionRef, project_dir: Path) -> Reference:
    import pandas as pd

    from mlops_ci.monitoring.data import read_table
    from mlops_ci.tracking.fingerprint import sha256_file

    frames, warnings, used = [], [], []
    for entry in entries:
        relative = entry.get("path") or ""
        path = project_dir / relative
        if entry.get("files", 1) != 1 or not relative.endswith((".csv", ".parquet", ".pq")):
            continue
        if not path.is_file():
            continue
        if sha256_file(path) != entry.get("sha256"):
            warnings.append(
                f"{relative} changed since {model.uri} was trained on it; the current file is used as the reference"
            )
        frames.append(read_table(path))
        used.append(relative)
    if not frames:
        listed = ", ".join(e.get("path", "?") for e in entries) or "none"
        raise NoReference(
            f"the training data of {model.uri} ({listed}) is not in {project_dir}; run from the project",
            sample_helps=True,
        )
    frame = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
    return Reference(frame, f"{model.uri} training data: {', '.join(used)}", tuple(warnings))


def store_sample(
    client: MlflowClient,
    store: TrackingStore,
    model: ModelVersionRef,
    frame: pd.DataFrame,
    *,
    rows: int,
    seed: int = 0,
) -> str:
    """Store up to ``rows`` rows of ``frame`` with the model version, for drift checks that
    run where the training data is not."""
    sample = frame.sample(n=rows, random_state=seed) if len(frame) > rows else frame
    with tracking_errors(store), tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / Path(SAMPLE_ARTIFACT).name
        sample.reset_index(drop=True).to_parquet(path, index=False)
        client.log_artifact(model.run_id, str(path), str(Path(SAMPLE_ARTIFACT).parent))
        uri = f"runs:/{model.run_id}/{SAMPLE_ARTIFACT}"
        client.set_model_version_tag(model.name, model.version, SAMPLE_TAG, uri)
    return uri


def score(model: ModelVersionRef, frame: pd.DataFrame, columns: list[str]):
    """The model's predictions for ``frame`` (MLflow pyfunc), as a 1-D array."""
    import mlflow.pyfunc
    import numpy as np

    loaded = mlflow.pyfunc.load_model(model.uri)
    predictions = np.asarray(loaded.predict(frame[columns]))
    return predictions.reshape(len(frame), -1)[:, 0] if predictions.ndim > 1 else predictions
