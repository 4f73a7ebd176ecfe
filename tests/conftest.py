"""Fixtures shared by the whole suite: one real MLflow server per session, and a fresh
copy of the example project (a git repository with one commit) per test."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from mlops_ci.platforms.masking import clear_secrets
from tests.fake_forge import FakeForge, Token
from tests.forge_cases import GITLAB_READ_TOKEN, GITLAB_TOKEN, PAT_TOKEN, READ_TOKEN, WRITE_TOKEN, Gate
from tests.helpers import BASE_IMAGE, EXAMPLE, cli_env, free_port, in_ci, missing, wait_http

# Hypothesis: "ci" (chosen under CI=true) is derandomised, so a CI run tries the same
# examples every time and a red build reproduces; "dev" (elsewhere) explores new random
# examples each run; HYPOTHESIS_PROFILE=thorough searches twenty times as many.
_HYPOTHESIS = dict(
    deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
settings.register_profile(
    "ci", max_examples=250, derandomize=True, database=None, print_blob=True, **_HYPOTHESIS
)
settings.register_profile("dev", max_examples=250, derandomize=False, **_HYPOTHESIS)
settings.register_profile("thorough", max_examples=5000, derandomize=False, **_HYPOTHESIS)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if in_ci() else "dev"))


@pytest.hookimpl(trylast=True)
def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Print the step lines a pipeline test left in its report (tests/pipelines/conftest.py's
    `show`): under pytest-xdist the workers have no terminal, so this process prints them."""
    lines = [value for name, value in report.user_properties if name == "pipeline steps"]
    config = _session.get("config")
    reporter = config.pluginmanager.get_plugin("terminalreporter") if config is not None else None
    if lines and report.when == "call" and reporter is not None:
        for block in lines:
            reporter.write_line("")
            reporter.write_line(block)


_session: dict[str, pytest.Config] = {}


def pytest_configure(config: pytest.Config) -> None:
    _session["config"] = config


# Small real models (converted to ONNX) for the serving, conversion and package tests.
pytest_plugins = ["tests.model_fixtures"]

MLFLOW_START_TIMEOUT_S = 180


@contextmanager
def running_mlflow_server(root: Path, *extra_args: str, env: dict[str, str] | None = None) -> Iterator[str]:
    """A real `mlflow server` process (SQLite backend, proxied artifacts) on loopback."""
    port = free_port()
    log_path = root / "server.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "mlflow",
                "server",
                *extra_args,
                "--backend-store-uri",
                f"sqlite:///{root / 'mlflow.db'}",
                "--artifacts-destination",
                str(root / "artifacts"),
                "--serve-artifacts",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                "1",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=env,
        )
    uri = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{uri}/health", timeout_s=MLFLOW_START_TIMEOUT_S, process=process)
    except (RuntimeError, TimeoutError) as exc:
        os.killpg(process.pid, signal.SIGKILL)
        pytest.fail(f"mlflow server did not start: {exc}\n{log_path.read_text()[-3000:]}")
    try:
        yield uri
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_mlflow_server(tmp_path_factory.mktemp("mlflow-server")) as uri:
        yield uri


@dataclass(frozen=True)
class AuthServer:
    """An `mlflow server --app-name basic-auth` with its admin credentials."""

    uri: str
    admin: tuple[str, str]

    def create_user(self, username: str) -> tuple[str, str]:
        """A new user (default permission READ on everything it did not create)."""
        import requests

        password = f"{username}-{uuid.uuid4().hex}"
        response = requests.post(
            f"{self.uri}/api/2.0/mlflow/users/create",
            json={"username": username, "password": password},
            auth=self.admin,
            timeout=30,
        )
        response.raise_for_status()
        return username, password


@pytest.fixture(scope="session")
def mlflow_auth_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthServer]:
    """MLflow's built-in authentication (pip install mlflow[auth]): users and per-experiment /
    per-registered-model permissions, default permission READ."""
    root = tmp_path_factory.mktemp("mlflow-auth-server")
    admin = ("admin", uuid.uuid4().hex)
    config = root / "basic_auth.ini"
    config.write_text(
        "[mlflow]\n"
        "default_permission = READ\n"
        f"database_uri = sqlite:///{root / 'auth.db'}\n"
        f"admin_username = {admin[0]}\n"
        f"admin_password = {admin[1]}\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
    )
    env = {
        **os.environ,
        "MLFLOW_AUTH_CONFIG_PATH": str(config),
        "MLFLOW_FLASK_SERVER_SECRET_KEY": uuid.uuid4().hex,
    }
    with running_mlflow_server(root, "--app-name", "basic-auth", env=env) as uri:
        yield AuthServer(uri, admin)


def copy_example(destination: Path) -> Path:
    shutil.copytree(EXAMPLE, destination, ignore=shutil.ignore_patterns(".mlops-ci", "__pycache__"))
    git = ["git", "-c", "user.name=Test", "-c", "user.email=test@example.com"]
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=destination, check=True)
    subprocess.run([*git, "add", "-A"], cwd=destination, check=True)
    subprocess.run(
        [*git, "commit", "-q", "-m", "Census income example\n\nFirst model."], cwd=destination, check=True
    )
    return destination


@pytest.fixture
def example_project(tmp_path: Path) -> Path:
    """A fresh copy of examples/census-income, committed to a new git repository."""
    return copy_example(tmp_path / "census-income")


@pytest.fixture
def unique_name() -> str:
    """Experiment and model names that no other test uses on the shared server."""
    return f"test-{uuid.uuid4().hex[:10]}"


# -- the tracking server's client and a CLI environment pointing at it -----------------------


@pytest.fixture
def env(mlflow_server, unique_name):
    """The environment of a CLI run against the shared MLflow server, with its own names."""
    return cli_env(
        MLFLOW_TRACKING_URI=mlflow_server, MLOPS_CI_EXPERIMENT=unique_name, MLOPS_CI_MODEL_NAME=unique_name
    )


@pytest.fixture
def client(mlflow_server):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=mlflow_server, registry_uri=mlflow_server)


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


# -- the Docker engine -----------------------------------------------------------------------


@pytest.fixture(scope="session")
def docker_engine():
    """The Docker engine scripts/setup/20-docker.sh starts, with the offline base image.
    Under CI a missing engine or image fails the test; elsewhere it skips."""
    from mlops_ci.container.engine import find_engine

    engine, why = find_engine("docker", os.environ)
    if engine is None:
        missing(f"a Docker engine ({why})", install="scripts/setup/20-docker.sh")
    if not any(BASE_IMAGE in tag for image in engine.client.images.list() for tag in image.tags):
        missing(f"the base image {BASE_IMAGE}", install="scripts/setup/20-docker.sh creates it")
    return engine


@pytest.fixture
def docker_service(docker_engine):
    """A service name of its own; its containers and network are removed afterwards."""
    name = f"svc-{uuid.uuid4().hex[:8]}"
    yield name
    for container in docker_engine.client.containers.list(
        all=True, filters={"label": f"io.mlops-ci.service={name}"}
    ):
        container.remove(force=True)
    # The service's network, and a canary rollout's proxy routes network and volume.
    for network in docker_engine.client.networks.list(names=[f"mlops-ci-{name}", f"mlops-ci-{name}-routes"]):
        network.remove()
    for volume in docker_engine.client.volumes.list(filters={"name": f"mlops-ci-{name}-proxy"}):
        volume.remove(force=True)


# -- the forge stand-in (GitHub and GitLab REST APIs) -----------------------------------------


@pytest.fixture(autouse=True)
def _forget_secrets():
    yield
    clear_secrets()


@pytest.fixture
def forge():
    tokens = {
        WRITE_TOKEN: Token(),
        READ_TOKEN: Token(write=False),
        PAT_TOKEN: Token(app=False),
        GITLAB_TOKEN: Token(),
        GITLAB_READ_TOKEN: Token(write=False),
    }
    with FakeForge(tokens) as server:
        yield server


@pytest.fixture
def gate(monkeypatch, capsys, tmp_path) -> Gate:
    return Gate(monkeypatch, capsys, tmp_path)
