"""Fixtures of the step tests: the real MLflow server's environment and client, and - shared
with the platform tests rather than copied - the fake GitHub/GitLab server, the in-process
runner of `mlops-ci`, and forgetting the secrets a test masked."""

from __future__ import annotations

import pytest

from tests.helpers import cli_env
from tests.platforms.conftest import _forget_secrets, forge, gate

__all__ = ["_forget_secrets", "forge", "gate"]


@pytest.fixture
def env(mlflow_server, unique_name):
    return cli_env(
        MLFLOW_TRACKING_URI=mlflow_server, MLOPS_CI_EXPERIMENT=unique_name, MLOPS_CI_MODEL_NAME=unique_name
    )


@pytest.fixture
def client(mlflow_server):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=mlflow_server, registry_uri=mlflow_server)
