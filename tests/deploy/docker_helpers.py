"""What the Docker deployment tests share: a service on the test engine, an audit trail in
the test's folder, and the census serving image they start from."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

from mlops_ci.deploy.audit import AuditTrail
from mlops_ci.deploy.docker_target import DockerService
from mlops_ci.tracking.store import resolve_store
from tests.helpers import BASE_IMAGE
from tests.model_fixtures import census_pipeline, write_model_dir


def on_engine(name: str) -> DockerService:
    return DockerService(name=name, env={"DOCKER_HOST": os.environ["DOCKER_HOST"]}, ready_timeout_s=60)


def trail(tmp_path: Path) -> AuditTrail:
    """The local log in tmp_path; the registry an embedded store that does not know the model
    (the deployments are then logged locally only)."""
    return AuditTrail(
        log_path=tmp_path / "deployments.jsonl",
        store=lambda: resolve_store(None, project_dir=tmp_path, retry_timeout_s=5),
        experiment="deploy-test",
        context={"commit": "abc123"},
    )


def build_census_image(engine, tmp_path_factory, prefix: str) -> tuple[str, str]:
    """Version 1 of a real serving image of the census model, and its tag (without version)."""
    from mlops_ci.container.context import oci_labels, render_context
    from mlops_ci.container.wheels import default_platform
    from mlops_ci.serving.settings import load_settings

    tag = f"localhost/{prefix}-{uuid.uuid4().hex[:8]}"
    folder = tmp_path_factory.mktemp("model")
    write_model_dir(folder, census_pipeline(rows=500), name="census-income", version="1")
    settings = load_settings(folder)
    context = render_context(
        tmp_path_factory.mktemp("context") / "ctx",
        onnx_bytes=(folder / settings.model_file).read_bytes(),
        settings=settings,
        image=f"{tag}:1",
        base_image=BASE_IMAGE,
        labels=oci_labels(settings, source_url=None, commit=None, model_uri=None),
        python_version="3.11",
        platform_tag=default_platform(),
    )
    return engine.build(context.path, f"{tag}:1").ref, tag
