"""What the Docker and Kubernetes targets share: the service's name and the image to run."""

from __future__ import annotations

from dataclasses import dataclass

from mlops_ci.deploy import kube_manifests as km
from mlops_ci.deploy.errors import SettingError


def service_name(name: str | None, model: str | None) -> str:
    """The name of the deployed objects: ``name``, else the model name made a DNS label
    (census_income.v2 -> census-income-v2); checked as a Kubernetes name (it is also a
    Docker network alias and container prefix)."""
    chosen = name or (km.kube_name(model) if model else "")
    if not chosen:
        raise SettingError("name", "is missing: give the service a name, or a model name to derive it from")
    return km.check_name(chosen, "name")


@dataclass(frozen=True)
class ImageRef:
    """The image to deploy, and its digest when known (the package step's, else none)."""

    image: str
    digest: str | None = None

    @property
    def pinned(self) -> str:
        """``repo@sha256:...`` when the digest is a registry digest, else the image as given."""
        return km.image_ref(self.image, self.digest)


def image_to_deploy(image: str | None, packaged: str | None, packaged_digest: str | None) -> ImageRef | None:
    """The image named for this deployment, else the one packaged earlier (with its digest);
    None when there is neither. A named image carries no digest: the packaged one's would
    belong to another image."""
    if image:
        return ImageRef(image)
    if packaged:
        return ImageRef(packaged, packaged_digest)
    return None
