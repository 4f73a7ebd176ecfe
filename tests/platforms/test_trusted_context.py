"""Which runs are trusted contexts (SECURITY.md): reviewed refs only."""

from __future__ import annotations

import json

import pytest

from mlops_ci.platforms.github import GitHubPlatform
from mlops_ci.platforms.gitlab import GitLabPlatform


def github(tmp_path, event_name, ref, *, protected=None, default_branch="main"):
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"repository": {"default_branch": default_branch}}))
    env = {
        "GITHUB_ACTIONS": "true",
        "GITHUB_EVENT_NAME": event_name,
        "GITHUB_EVENT_PATH": str(event),
        "GITHUB_REF": ref,
        "GITHUB_REPOSITORY": "o/r",
    }
    if protected is not None:
        env["GITHUB_REF_PROTECTED"] = protected
    return GitHubPlatform(env, cwd=tmp_path, out_dir=tmp_path / ".mlops-ci").context().trusted


@pytest.mark.parametrize(
    ("event", "ref", "protected", "trusted"),
    [
        ("push", "refs/heads/main", None, True),  # the default branch
        ("push", "refs/heads/release", "true", True),  # a protected branch
        ("push", "refs/tags/v1.2.0", None, True),
        ("schedule", "refs/heads/main", None, True),
        ("workflow_dispatch", "refs/heads/main", "false", True),
        ("push", "refs/heads/feature", "false", False),  # an unreviewed branch
        ("push", "refs/heads/mainx", None, False),
        ("workflow_dispatch", "refs/heads/feature", None, False),
        ("pull_request", "refs/pull/7/merge", None, False),
        ("pull_request", "refs/heads/main", "true", False),  # a PR's code, whatever the ref says
        ("pull_request_target", "refs/heads/main", "true", False),
        ("issue_comment", "refs/heads/main", "true", False),
        ("workflow_run", "refs/heads/main", "true", False),
    ],
)
def test_github_trusts_reviewed_refs_only(tmp_path, event, ref, protected, trusted):
    assert github(tmp_path, event, ref, protected=protected) is trusted


@pytest.mark.parametrize(
    ("env", "trusted"),
    [
        ({"CI_COMMIT_REF_PROTECTED": "true", "CI_PIPELINE_SOURCE": "push"}, True),
        ({"CI_COMMIT_REF_PROTECTED": "true", "CI_PIPELINE_SOURCE": "schedule"}, True),
        ({"CI_COMMIT_REF_PROTECTED": "false", "CI_PIPELINE_SOURCE": "push"}, False),
        ({"CI_PIPELINE_SOURCE": "push"}, False),
        (
            {
                "CI_COMMIT_REF_PROTECTED": "true",
                "CI_MERGE_REQUEST_IID": "4",
                "CI_PIPELINE_SOURCE": "merge_request_event",
            },
            False,
        ),
    ],
)
def test_gitlab_trusts_protected_refs_outside_merge_requests(tmp_path, env, trusted):
    env = {"GITLAB_CI": "true", "CI_PROJECT_PATH": "g/p", **env}
    assert GitLabPlatform(env, cwd=tmp_path, out_dir=tmp_path / ".mlops-ci").context().trusted is trusted
