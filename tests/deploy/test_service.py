"""What the Docker and Kubernetes targets share (mlops_ci/deploy/service.py): the service's
name and the image to deploy."""

from __future__ import annotations

import pytest

from mlops_ci.deploy.errors import SettingError
from mlops_ci.deploy.service import ImageRef, image_to_deploy, service_name

DIGEST = "sha256:" + "4b825dc6" * 8


def test_service_name_is_the_name_else_the_model_as_a_dns_label():
    assert service_name("svc", "census_income.v2") == "svc"
    assert service_name(None, "census_income.v2") == "census-income-v2"
    with pytest.raises(SettingError) as caught:
        service_name("Bad_Name", None)
    assert caught.value.setting == "name" and str(caught.value).startswith("name 'Bad_Name' is not a valid")
    with pytest.raises(SettingError, match="is missing") as caught:
        service_name(None, None)
    assert caught.value.setting == "name"


def test_image_named_else_packaged_with_its_digest():
    assert image_to_deploy("mine:1", "pkg:2", DIGEST) == ImageRef("mine:1")  # another image's digest
    assert image_to_deploy(None, "ghcr.io/a/m:2", DIGEST) == ImageRef("ghcr.io/a/m:2", DIGEST)
    assert image_to_deploy(None, None, DIGEST) is None
    assert ImageRef("ghcr.io/a/m:2", DIGEST).pinned == f"ghcr.io/a/m@{DIGEST}"
    assert ImageRef("ghcr.io/a/m:2").pinned == "ghcr.io/a/m:2"
