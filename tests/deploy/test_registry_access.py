"""Registry access control for real: MLflow's built-in authentication (`mlflow server
--app-name basic-auth`) with the two identities SECURITY.md sets up. The pull-request
identity trains and registers candidates in its own experiment and model; it can neither
move the champion alias of the production model nor write the validation record that
`deploy` accepts. The deploy identity, which only trusted jobs hold, can."""

from __future__ import annotations

import pytest

from tests.helpers import cli_env, run_cli

VALIDATION = {
    "mlops_ci.validation.status": "passed",
    "mlops_ci.validation.champion_version": "1",
    "mlops_ci.validation.at": "2026-12-07T10:00:00+00:00",
}


@pytest.fixture
def identities(mlflow_auth_server, unique_name):
    pr = mlflow_auth_server.create_user(f"pr-{unique_name}")
    deployer = mlflow_auth_server.create_user(f"deploy-{unique_name}")
    return pr, deployer


@pytest.fixture
def client_as(mlflow_auth_server, monkeypatch):
    """A client acting as ``identity``: MLflow reads the credentials from the environment on
    every request, so the last identity chosen is the one every client uses."""
    from mlflow.tracking import MlflowClient

    def use(identity):
        monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", identity[0])
        monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", identity[1])
        return MlflowClient(tracking_uri=mlflow_auth_server.uri, registry_uri=mlflow_auth_server.uri)

    return use


def deploy_as(identity, server, tmp_path, name, *args):
    env = cli_env(
        MLFLOW_TRACKING_URI=server.uri,
        MLFLOW_TRACKING_USERNAME=identity[0],
        MLFLOW_TRACKING_PASSWORD=identity[1],
        MLOPS_CI_MODEL_NAME=name,
        MLOPS_CI_EXPERIMENT=name,
    )
    return run_cli(["deploy", "--target", "registry", *args], cwd=tmp_path, env=env)


def test_the_pr_identity_cannot_promote_or_approve_and_the_deploy_identity_can(
    mlflow_auth_server, identities, client_as, unique_name, tmp_path
):
    from mlflow.exceptions import MlflowException

    pr, deployer = identities
    name = unique_name
    # The deploy identity owns the production experiment and registered model.
    trusted = client_as(deployer)
    experiment = trusted.create_experiment(name)
    run_id = trusted.create_run(experiment).info.run_id
    trusted.create_registered_model(name)
    v1 = trusted.create_model_version(name, source=f"runs:/{run_id}/model", run_id=run_id).version
    trusted.set_registered_model_alias(name, "champion", v1)
    v2 = trusted.create_model_version(name, source=f"runs:/{run_id}/model", run_id=run_id).version

    # The pull-request identity works in its own experiment and candidates model...
    untrusted = client_as(pr)
    pr_experiment = untrusted.create_experiment(f"{name}-pr")
    pr_run = untrusted.create_run(pr_experiment).info.run_id
    untrusted.create_registered_model(f"{name}-candidates")
    candidate = untrusted.create_model_version(
        f"{name}-candidates", source=f"runs:/{pr_run}/model", run_id=pr_run
    ).version
    untrusted.set_registered_model_alias(f"{name}-candidates", "challenger", candidate)
    # ...and cannot plant a run where trusted jobs look, write a validation record on the
    # production model, register into it, or move its aliases.
    attempts = {
        "run in the trusted experiment": lambda: untrusted.create_run(experiment),
        "validation tag": lambda: untrusted.set_model_version_tag(name, v2, *next(iter(VALIDATION.items()))),
        "version of the production model": lambda: untrusted.create_model_version(
            name, source=f"runs:/{pr_run}/model", run_id=pr_run
        ),
        "champion alias": lambda: untrusted.set_registered_model_alias(name, "champion", v2),
    }
    for what, attempt in attempts.items():
        with pytest.raises(MlflowException) as refused:
            attempt()
        assert refused.value.error_code == "PERMISSION_DENIED", what

    trusted = client_as(deployer)
    for key, value in VALIDATION.items():
        trusted.set_model_version_tag(name, v2, key, value)

    # `mlops-ci deploy` with the pull-request identity: one line, exit 2, champion unchanged.
    done = deploy_as(pr, mlflow_auth_server, tmp_path, name, "--version", v2)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "denied" in lines[0] and pr[0] in lines[0] and "deploy identity" in lines[0]
    assert str(trusted.get_model_version_by_alias(name, "champion").version) == str(v1)

    # The deploy identity promotes the version it validated.
    done = deploy_as(deployer, mlflow_auth_server, tmp_path, name, "--version", v2)
    assert done.returncode == 0, done.stderr
    assert str(trusted.get_model_version_by_alias(name, "champion").version) == str(v2)
