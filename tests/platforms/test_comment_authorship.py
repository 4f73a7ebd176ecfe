"""Comment takeover: the hidden marker proves nothing, only the author does.

Anyone who may comment on a pull/merge request can start a comment with
``<!-- mlops-ci:default -->`` and a huge pipeline number. Such a comment is never the bot's:
it is neither edited nor deleted, its pipeline number is not believed, and the bot's own
comment is the one updated. Run against tests/fake_forge.py, which records who wrote each
comment and treats touching another account's comment as a failure.
"""

from __future__ import annotations

import pytest

from mlops_ci.platforms import comments
from mlops_ci.platforms.comments import Existing, plan_upsert
from mlops_ci.platforms.masking import clear_secrets
from tests.fake_forge import FakeForge, Token
from tests.forge_cases import REPO, Gate, copy_case, github_env, gitlab_env

MARKER = comments.marker("default")
BOT = "mlops-ci-bot"
ATTACKER = "mallory"
PAT = "ghp_BotUserT0kenAA1b2c3d4e5f6g7h8"
ACTIONS = "ghs_ActionsInstallT0kenBB9a8b7c6d5"
APP = "ghs_AppInstallT0kenCC1q2w3e4r5t6y7"
BAD = "ghp_RevokedT0kenDD0p9o8i7u6y5t4r3"
GITLAB = "glpat-ProjectBotT0kenEE5t4r3e2w1"
GITLAB_BOT = "project_17_bot_3f2a"


def body(pipeline: int, text: str) -> str:
    return f"{MARKER}\n{comments.meta_line(pipeline=pipeline, commit='c' * 40)}\n{text}"


# --- the plan, as a pure function -------------------------------------------------------


def test_a_marker_comment_by_someone_else_is_not_ours_even_when_newer():
    forged = Existing("1", body(10**12, "all green, merge me"), author=ATTACKER)
    ours = Existing("2", body(100, "old verdict"), author=BOT)
    plan = plan_upsert([forged, ours], key="default", body=body(200, "new"), pipeline=200, author=BOT)
    assert plan.action == "update" and plan.target is ours and plan.duplicates == ()


def test_only_others_marker_comments_means_create_and_touch_nothing():
    forged = Existing("1", body(10**12, "forged"), author=ATTACKER)
    plan = plan_upsert([forged], key="default", body=body(200, "new"), pipeline=200, author=BOT)
    assert plan == comments.Plan("create", None, ())


def test_without_a_known_author_nothing_is_ours():
    unknown = Existing("1", body(1, "deleted account"), author=None)
    assert plan_upsert([unknown], key="default", body="x", pipeline=2, author=None).action == "create"
    assert plan_upsert([unknown], key="default", body="x", pipeline=2, author=BOT).action == "create"


def test_logins_compare_case_insensitively():
    ours = Existing("1", body(1, "old"), author="MLOps-CI-Bot")
    assert plan_upsert([ours], key="default", body="x", pipeline=2, author=BOT).target is ours


@pytest.mark.parametrize(
    ("written_by", "running", "action"),
    [
        (101, 100, "kept-newer"),  # a later pipeline's comment is not overwritten
        (100, 100, "update"),  # a rerun of the SAME pipeline updates its own comment
        (99, 100, "update"),
    ],
)
def test_newer_pipeline_boundary(written_by, running, action):
    ours = Existing("1", body(written_by, "verdict of the earlier attempt"), author=BOT)
    plan = plan_upsert([ours], key="default", body=body(running, "new"), pipeline=running, author=BOT)
    assert plan.action == action


def test_our_duplicates_are_deleted_but_never_someone_elses():
    first = Existing("1", body(5, "A"), author=BOT)
    forged = Existing("2", body(5, "forged"), author=ATTACKER)
    second = Existing("3", body(5, "B"), author=BOT)
    plan = plan_upsert([first, forged, second], key="default", body="x", pipeline=6, author=BOT)
    assert plan.target is first and plan.duplicates == (second,)


# --- GitHub, through the gate, against the fake API --------------------------------------


@pytest.fixture
def forge():
    tokens = {
        PAT: Token(login=BOT, app=False),
        ACTIONS: Token(login="github-actions[bot]", installation=True),
        APP: Token(login="acme-model-bot[bot]", installation=True),
        GITLAB: Token(login=GITLAB_BOT),
    }
    with FakeForge(tokens) as server:
        yield server
    clear_secrets()


@pytest.fixture
def gate(monkeypatch, capsys, tmp_path) -> Gate:
    return Gate(monkeypatch, capsys, tmp_path)


def run_github(gate, forge, tmp_path, token, *args, run_id="200"):
    out = copy_case("pass", tmp_path / ".mlops-ci")
    env = github_env(forge, tmp_path, token=token, run_id=run_id)
    return gate(["gate", "--out-dir", str(out), "--no-status", *args], env)


def comment(forge, comment_id):
    return next(c for c in forge.github_comments(REPO, 42) if c["id"] == comment_id)


@pytest.mark.parametrize(
    ("token", "login"), [(PAT, BOT), (ACTIONS, "github-actions[bot]")], ids=["user-token", "GITHUB_TOKEN"]
)
def test_github_forged_marker_comment_is_left_alone_and_ours_is_updated(forge, gate, tmp_path, token, login):
    forge.add_pull_request(REPO, 42, head_sha="9" * 40)
    forged_body = body(10**12, "### ✅ mlops-ci: pass — merge me")
    forged = forge.add_github_comment(REPO, 42, forged_body, login=ATTACKER)
    ours = forge.add_github_comment(REPO, 42, body(100, "old verdict"), login=login)

    ran = run_github(gate, forge, tmp_path, token)

    assert ran.code == 0, ran
    assert "comment-action: updated" in ran.out
    assert comment(forge, forged["id"])["body"] == forged_body  # not edited, not deleted
    assert '"pipeline": 200' in comment(forge, ours["id"])["body"]
    assert len(forge.github_comments(REPO, 42)) == 2
    (patch,) = forge.calls("PATCH")
    assert patch.path.endswith(f"/issues/comments/{ours['id']}")
    assert forge.calls("DELETE") == [] and forge.calls("POST") == []
    (who,) = forge.calls("GET", r"^/user$")
    assert who.status == (403 if token == ACTIONS else 200)
    assert forge.problems == []


def test_github_only_a_forged_comment_means_a_new_comment_of_our_own(forge, gate, tmp_path):
    forge.add_pull_request(REPO, 42, head_sha="9" * 40)
    forged = forge.add_github_comment(REPO, 42, body(10**12, "forged"), login=ATTACKER)

    ran = run_github(gate, forge, tmp_path, ACTIONS)

    assert ran.code == 0 and "comment-action: created" in ran.out, ran
    forged_now, created = forge.github_comments(REPO, 42)
    assert forged_now == forged and created["user"]["login"] == "github-actions[bot]"
    assert forge.calls("PATCH") == [] and forge.calls("DELETE") == [] and forge.problems == []


def test_github_no_identity_lookup_when_no_comment_carries_the_marker(forge, gate, tmp_path):
    forge.add_pull_request(REPO, 42, head_sha="9" * 40)
    forge.add_github_comment(REPO, 42, "Looks good", login=ATTACKER)
    assert run_github(gate, forge, tmp_path, PAT).code == 0
    assert forge.calls("GET", r"^/user$") == []


def test_github_app_token_finds_its_comment_by_the_configured_author(forge, gate, tmp_path):
    """A GitHub App writes as <slug>[bot]; the Actions bot's marker comment is not its own."""
    forge.add_pull_request(REPO, 42, head_sha="9" * 40)
    other_bot = forge.add_github_comment(REPO, 42, body(10**12, "other bot"), login="github-actions[bot]")
    ours = forge.add_github_comment(REPO, 42, body(100, "old"), login="acme-model-bot[bot]")

    ran = run_github(gate, forge, tmp_path, APP, "--comment-author", "acme-model-bot[bot]")

    assert ran.code == 0 and "comment-action: updated" in ran.out, ran
    assert comment(forge, other_bot["id"])["body"] == other_bot["body"]
    assert '"pipeline": 200' in comment(forge, ours["id"])["body"]
    assert forge.calls("GET", r"^/user$") == []  # told, not asked
    assert forge.calls("DELETE") == [] and forge.problems == []


def test_github_app_token_without_the_author_says_how_to_fix_it(forge, gate, tmp_path):
    forge.add_pull_request(REPO, 42, head_sha="9" * 40)
    earlier = forge.add_github_comment(REPO, 42, body(100, "old"), login="acme-model-bot[bot]")

    ran = run_github(gate, forge, tmp_path, APP)

    # Taken for github-actions[bot], it cannot tell its earlier comment: it adds one and
    # says which comment-author would have found it; it never deletes the earlier one.
    assert ran.code == 0 and "comment-action: created" in ran.out, ran
    assert "set comment-author to acme-model-bot[bot]" in ran.err
    assert comment(forge, earlier["id"])["body"] == earlier["body"]
    assert forge.calls("DELETE") == [] and forge.problems == []


def test_github_a_rerun_of_the_same_pipeline_updates_its_comment(forge, gate, tmp_path):
    forge.add_pull_request(REPO, 42, head_sha="9" * 40)
    ours = forge.add_github_comment(REPO, 42, body(200, "first attempt"), login=BOT)

    ran = run_github(gate, forge, tmp_path, PAT, run_id="200")

    assert ran.code == 0 and "comment-action: updated" in ran.out, ran
    assert "first attempt" not in comment(forge, ours["id"])["body"]


def test_github_a_token_whose_identity_cannot_be_read_edits_nothing(forge, gate, tmp_path):
    forge.add_pull_request(REPO, 42, head_sha="9" * 40)
    ours = forge.add_github_comment(REPO, 42, body(100, "old"), login=BOT)
    forge.fail("GET", r"^/user$", 401, body={"message": "Bad credentials"})

    ran = run_github(gate, forge, tmp_path, PAT)

    assert ran.code == 0 and "comment-action: degraded" in ran.out, ran
    assert comment(forge, ours["id"])["body"] == ours["body"]
    assert forge.calls("PATCH") == [] and forge.calls("POST") == [] and forge.calls("DELETE") == []


# --- GitLab ---------------------------------------------------------------------------------


def test_gitlab_forged_marker_note_is_left_alone_and_ours_is_updated(forge, gate, tmp_path):
    forge.add_merge_request("17", 5)
    forged_body = body(10**12, "forged pass")
    forged = forge.add_gitlab_note("17", 5, forged_body, login=ATTACKER)
    ours = forge.add_gitlab_note("17", 5, body(100, "old verdict"), login=GITLAB_BOT)
    out = copy_case("pass", tmp_path / ".mlops-ci")

    ran = gate(
        ["gate", "--out-dir", str(out), "--no-status"], gitlab_env(forge, token=GITLAB, pipeline="555")
    )

    assert ran.code == 0 and "comment-action: updated" in ran.out, ran
    notes = {n["id"]: n for n in forge.gitlab_mrs[("17", 5)]}
    assert notes[forged["id"]]["body"] == forged_body
    assert '"pipeline": 555' in notes[ours["id"]]["body"]
    (put,) = forge.calls("PUT")
    assert put.path.endswith(f"/notes/{ours['id']}")
    assert forge.calls("DELETE") == [] and forge.calls("POST") == []
    assert [r.status for r in forge.calls("GET", r"^/api/v4/user$")] == [200]
    assert forge.problems == []


def test_gitlab_only_a_forged_note_means_a_new_note_of_our_own(forge, gate, tmp_path):
    forge.add_merge_request("17", 5)
    forged = forge.add_gitlab_note("17", 5, body(10**12, "forged"), login=ATTACKER)
    out = copy_case("pass", tmp_path / ".mlops-ci")

    ran = gate(["gate", "--out-dir", str(out), "--no-status"], gitlab_env(forge, token=GITLAB))

    assert ran.code == 0 and "comment-action: created" in ran.out, ran
    forged_now, created = forge.gitlab_mrs[("17", 5)]
    assert forged_now == forged and created["author"]["username"] == GITLAB_BOT
    assert forge.calls("PUT") == [] and forge.calls("DELETE") == [] and forge.problems == []
