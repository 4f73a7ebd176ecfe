"""Each platform answers the repository's web address (the image's source label) from
its own variables, and only from its own."""

from __future__ import annotations

import pytest

from mlops_ci.platforms import detect_platform

GITHUB = {"GITHUB_ACTIONS": "true", "GITHUB_REPOSITORY": "acme/census"}
GITLAB_URL = "https://gitlab.example.com/group/census"


@pytest.mark.parametrize(
    ("env", "url"),
    [
        (GITHUB, "https://github.com/acme/census"),
        ({**GITHUB, "GITHUB_SERVER_URL": "https://ghe.example.com/"}, "https://ghe.example.com/acme/census"),
        ({"GITHUB_ACTIONS": "true"}, None),
        ({"GITLAB_CI": "true", "CI_PROJECT_URL": GITLAB_URL, "GITHUB_REPOSITORY": "acme/x"}, GITLAB_URL),
        ({"GITLAB_CI": "true"}, None),
        ({"GITHUB_REPOSITORY": "acme/census", "CI_PROJECT_URL": GITLAB_URL}, None),
    ],
)
def test_repository_url(tmp_path, env, url):
    assert detect_platform(env, cwd=tmp_path, out_dir=tmp_path).repository_url() == url
