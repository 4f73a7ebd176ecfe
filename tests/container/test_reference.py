"""Image references (container.reference): formed from the template, split, and the
registry they name."""

from __future__ import annotations

import pytest

from mlops_ci.container.reference import ImageRefError, image_ref, registry_of, split_ref
from mlops_ci.errors import UsageError


def test_the_template_takes_name_version_and_commit():
    ref = image_ref("ghcr.io/acme/{name}:{version}-{commit}", name="Census", version="3", commit="a" * 40)
    assert ref == "ghcr.io/acme/census:3-" + "a" * 12
    assert image_ref("{name}:{commit}", name="m", version="1", commit=None) == "m:local"


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{name}:{tag}", r"'\{name\}:\{tag\}' has an unknown placeholder \('tag'\)"),
        ("Bad Image!", r"gives 'Bad Image!', which is not a valid image reference"),
    ],
)
def test_a_bad_template_is_a_usage_error_that_names_no_flag(template, message):
    with pytest.raises(ImageRefError, match=message) as caught:
        image_ref(template, name="m", version="1", commit=None)
    assert isinstance(caught.value, UsageError) and "--" not in str(caught.value)


@pytest.mark.parametrize(
    ("ref", "split", "registry"),
    [
        ("census:3", ("census", "3"), "docker.io"),
        ("acme/census", ("acme/census", "latest"), "docker.io"),
        ("localhost:5000/a/b:tag", ("localhost:5000/a/b", "tag"), "localhost:5000"),
        ("ghcr.io/acme/census:1", ("ghcr.io/acme/census", "1"), "ghcr.io"),
        ("localhost/census", ("localhost/census", "latest"), "localhost"),
    ],
)
def test_references_split_into_repository_and_tag_and_name_their_registry(ref, split, registry):
    assert split_ref(ref) == split and registry_of(ref) == registry
