"""Image references: formed from a template, split into repository and tag, and the
registry they name."""

from __future__ import annotations

import re

from mlops_ci.errors import UsageError

IMAGE_REF = re.compile(r"^[a-z0-9]+([._/:-][a-z0-9]+)*(:[\w][\w.-]{0,127})?$")


class ImageRefError(UsageError):
    """An image template that does not give a valid image reference."""


def image_ref(template: str, *, name: str, version: str, commit: str | None) -> str:
    """``template`` with {name} (lowercased), {version} and {commit} (12 characters, or
    "local") replaced."""
    try:
        ref = template.format(name=name.lower(), version=version, commit=(commit or "local")[:12])
    except (KeyError, IndexError, ValueError) as exc:
        raise ImageRefError(
            f"{template!r} has an unknown placeholder ({exc}); use {{name}}, {{version}}, {{commit}}"
        ) from None
    if not IMAGE_REF.match(ref):
        raise ImageRefError(f"gives {ref!r}, which is not a valid image reference (lowercase, name[:tag])")
    return ref


def split_ref(ref: str) -> tuple[str, str]:
    """'host:5000/a/b:tag' -> ('host:5000/a/b', 'tag'); no tag -> 'latest'."""
    slash = ref.rfind("/")
    colon = ref.rfind(":")
    if colon > slash:
        return ref[:colon], ref[colon + 1 :]
    return ref, "latest"


def registry_of(ref: str) -> str:
    first = ref.split("/", 1)[0]
    if "/" in ref and ("." in first or ":" in first or first == "localhost"):
        return first
    return "docker.io"
