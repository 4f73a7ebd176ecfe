"""Registered model versions made directly with the MLflow client (no training): what
promotion needs is versions, tags and aliases, not a model."""

from __future__ import annotations

import pytest

from tests.helpers import cli_env


@pytest.fixture
def client(mlflow_server):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=mlflow_server, registry_uri=mlflow_server)


@pytest.fixture
def env(mlflow_server, unique_name):
    return cli_env(
        MLFLOW_TRACKING_URI=mlflow_server, MLOPS_CI_EXPERIMENT=unique_name, MLOPS_CI_MODEL_NAME=unique_name
    )


class Versions:
    def __init__(self, client, name: str) -> None:
        self.client = client
        self.name = name
        experiment = client.create_experiment(name)
        self.run_id = client.create_run(experiment).info.run_id
        client.log_text(self.run_id, "not a model", "model/MLmodel")
        client.create_registered_model(name)

    def add(self, *, validated_against: str | None = None, status: str = "passed") -> str:
        """A new version; with ``validated_against`` (a version or 'none') the tags validate writes."""
        version = self.client.create_model_version(
            self.name, source=f"runs:/{self.run_id}/model", run_id=self.run_id
        ).version
        if validated_against is not None:
            tags = {
                "mlops_ci.validation.status": status,
                "mlops_ci.validation.champion_version": validated_against,
                "mlops_ci.validation.at": "2025-05-20T10:00:00+00:00",
            }
            for key, value in tags.items():
                self.client.set_model_version_tag(self.name, version, key, value)
        return str(version)

    def alias(self, alias: str) -> str | None:
        from mlflow.exceptions import MlflowException

        try:
            return str(self.client.get_model_version_by_alias(self.name, alias).version)
        except MlflowException:
            return None


@pytest.fixture
def versions(client, unique_name) -> Versions:
    return Versions(client, unique_name)
