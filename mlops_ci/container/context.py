"""The build context: Dockerfile, model/ (model.onnx + model-settings.json), wheels/
(the serving stack and mlops-ci, pinned), rendered with jinja2. Same inputs, same bytes:
the wheels are pinned, the mlops-ci wheel is reproducible and nothing carries a date."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlops_ci import __version__
from mlops_ci.container.wheels import Wheelset, vendor_wheels
from mlops_ci.serving.settings import ModelSettings

DEFAULT_BASE_IMAGE = "python:3.11-slim"
# Parts of the serving stack inference never imports (ONNX Runtime's tooling, numpy's
# tests and build tools): about 30 MB. The build checks afterwards that the model runs.
PRUNE = (
    "onnxruntime/transformers",
    "onnxruntime/quantization",
    "onnxruntime/tools",
    "onnxruntime/datasets",
    "numpy/tests",
    "numpy/*/tests",
    "numpy/*/*/tests",
    "numpy/f2py",
    "numpy/distutils",
    "numpy/_pyinstaller",
    "numpy/typing/tests",
)


@dataclass(frozen=True)
class BuildContext:
    path: Path
    image: str
    base_image: str
    labels: dict[str, str]
    wheels: Wheelset

    @property
    def dockerfile(self) -> Path:
        return self.path / "Dockerfile"

    def build_command(self) -> str:
        return f"docker build -t {self.image} {self.path}"


def oci_labels(
    settings: ModelSettings, *, source_url: str | None, commit: str | None, model_uri: str | None
) -> dict[str, str]:
    labels = {
        "org.opencontainers.image.title": f"{settings.name} model server",
        "org.opencontainers.image.version": settings.version,
        "org.opencontainers.image.description": f"ONNX Runtime server for {settings.name} version {settings.version} (mlops-ci)",
        "io.mlops-ci.version": __version__,
        "io.mlops-ci.model.name": settings.name,
        "io.mlops-ci.model.version": settings.version,
    }
    if commit:
        labels["org.opencontainers.image.revision"] = commit
    if source_url:
        labels["org.opencontainers.image.source"] = source_url
    if model_uri:
        labels["io.mlops-ci.model.uri"] = model_uri
    return labels


def render_context(
    destination: Path,
    *,
    onnx_bytes: bytes,
    settings: ModelSettings,
    image: str,
    base_image: str,
    labels: dict[str, str],
    python_version: str,
    platform_tag: str,
    wheelhouse: Path | None = None,
    wheels: Wheelset | None = None,
) -> BuildContext:
    """Write the context into ``destination`` (emptied first). ``wheels``: reuse wheels
    vendored earlier instead of downloading them again."""
    import jinja2

    if destination.exists():
        shutil.rmtree(destination)
    model_dir = destination / "model"
    model_dir.mkdir(parents=True)
    (model_dir / settings.model_file).write_bytes(onnx_bytes)
    settings.write(model_dir)
    wheel_dir = destination / "wheels"
    if wheels is not None:
        shutil.copytree(wheels.folder, wheel_dir)
        wheels = Wheelset(wheel_dir, wheels.requirements, wheels.self_wheel, wheels.pip_wheel)
    else:
        wheels = vendor_wheels(
            wheel_dir, python_version=python_version, platform_tag=platform_tag, wheelhouse=wheelhouse
        )
    (wheel_dir / "requirements.txt").write_text("\n".join(wheels.requirements) + "\n", encoding="utf-8")
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("mlops_ci.container", "templates"),
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
    )
    environment.filters["tojson"] = lambda value: json.dumps(str(value))
    dockerfile = environment.get_template("Dockerfile.j2").render(
        base_image=base_image,
        image=image,
        labels=dict(sorted(labels.items())),
        model_name=settings.name,
        model_version=settings.version,
        mlops_ci_version=__version__,
        pip_wheel=wheels.pip_wheel,
        self_wheel=wheels.self_wheel,
        prune=PRUNE,
    )
    (destination / "Dockerfile").write_text(dockerfile, encoding="utf-8")
    (destination / ".dockerignore").write_text("*\n!Dockerfile\n!model/\n!wheels/\n", encoding="utf-8")
    return BuildContext(destination, image, base_image, labels, wheels)


def context_files(context: Path) -> dict[str, Any]:
    """Relative path -> size, for the step's report."""
    return {
        p.relative_to(context).as_posix(): p.stat().st_size for p in sorted(context.rglob("*")) if p.is_file()
    }
