"""Fixtures of the step tests that run against the real MLflow server."""

from __future__ import annotations

import pytest

from tests.helpers import cli_env


@pytest.fixture
def env(mlflow_server, unique_name):
    return cli_env(
        MLFLOW_TRACKING_URI=mlflow_server, MLOPS_CI_EXPERIMENT=unique_name, MLOPS_CI_MODEL_NAME=unique_name
    )


@pytest.fixture
def client(mlflow_server):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=mlflow_server, registry_uri=mlflow_server)
