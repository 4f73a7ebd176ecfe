"""Each platform as a step sees it: which one runs (detection), its run context, and where
outputs and summaries go."""

import json
import subprocess

from mlops_ci.platforms import detect_platform
from mlops_ci.platforms.github import format_output
from mlops_ci.platforms.gitlab import dotenv_name


def test_detection(tmp_path):
    assert detect_platform({"GITHUB_ACTIONS": "true"}, cwd=tmp_path, out_dir=tmp_path).name == "github"
    assert detect_platform({"GITLAB_CI": "true"}, cwd=tmp_path, out_dir=tmp_path).name == "gitlab"
    assert detect_platform({}, cwd=tmp_path, out_dir=tmp_path).name == "local"


def test_github_context_from_a_pull_request_event(tmp_path):
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"pull_request": {"number": 17, "head": {"sha": "headsha"}}}))
    env = {
        "GITHUB_ACTIONS": "true",
        "GITHUB_EVENT_PATH": str(event),
        "GITHUB_SHA": "mergesha",
        "GITHUB_HEAD_REF": "feature",
        "GITHUB_REF_NAME": "17/merge",
        "GITHUB_REPOSITORY": "o/r",
        "GITHUB_RUN_ID": "99",
        "GITHUB_SERVER_URL": "https://github.example",
        "GITHUB_ACTOR": "ada",
        "GITHUB_EVENT_NAME": "pull_request",
    }
    context = detect_platform(env, cwd=tmp_path, out_dir=tmp_path).context()
    assert context.pr == "17"
    assert context.commit == "headsha"  # not the merge commit
    assert context.branch == "feature"
    assert context.pipeline_url == "https://github.example/o/r/actions/runs/99"
    assert context.actor == "ada"


def test_github_context_on_push(tmp_path):
    env = {"GITHUB_ACTIONS": "true", "GITHUB_SHA": "abc", "GITHUB_REF_NAME": "main"}
    context = detect_platform(env, cwd=tmp_path, out_dir=tmp_path).context()
    assert (context.pr, context.commit, context.branch) == (None, "abc", "main")


def test_github_outputs_and_summary_are_appended(tmp_path):
    output, summary = tmp_path / "output", tmp_path / "summary"
    output.write_text("earlier=1\n")
    summary.write_text("# earlier\n")
    env = {"GITHUB_ACTIONS": "true", "GITHUB_OUTPUT": str(output), "GITHUB_STEP_SUMMARY": str(summary)}
    platform = detect_platform(env, cwd=tmp_path, out_dir=tmp_path)
    platform.write_outputs("train", {"run-id": "r1", "notes": "line one\nline two"})
    platform.write_summary("## train passed")
    text = output.read_text()
    assert text.startswith("earlier=1\nrun-id=r1\nnotes<<ghadelimiter_")
    assert "\nline one\nline two\nghadelimiter_" in text
    assert summary.read_text() == "# earlier\n## train passed\n\n"


def test_heredoc_parses_back_like_the_runner_does():
    entry = format_output("k", "a\nb")
    header, *body = entry.splitlines()
    name, delimiter = header.split("<<")
    assert name == "k" and body == ["a", "b", delimiter]


def test_gitlab_context_and_dotenv(tmp_path):
    env = {
        "GITLAB_CI": "true",
        "CI_COMMIT_SHA": "abc",
        "CI_MERGE_REQUEST_IID": "5",
        "CI_MERGE_REQUEST_SOURCE_BRANCH_NAME": "feat",
        "CI_COMMIT_REF_NAME": "main",
        "CI_PIPELINE_URL": "https://gitlab.example/p/-/pipelines/1",
        "GITLAB_USER_LOGIN": "bob",
        "CI_PROJECT_PATH": "g/p",
        "CI_PIPELINE_SOURCE": "merge_request_event",
    }
    platform = detect_platform(env, cwd=tmp_path, out_dir=tmp_path)
    context = platform.context()
    assert (context.pr, context.branch, context.actor) == ("5", "feat", "bob")
    platform.write_outputs("train", {"run-id": "r1", "multi": "a\nb"})
    assert (tmp_path / "train.env").read_text() == "MLOPS_CI_TRAIN_RUN_ID=r1\n"
    assert dotenv_name("register", "model-version") == "MLOPS_CI_REGISTER_MODEL_VERSION"


def test_local_context_reads_git(tmp_path):
    subprocess.run(["git", "init", "-q", "-b", "work"], cwd=tmp_path, check=True)
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@e", "commit", "-q", "--allow-empty", "-m", "x"],
        cwd=tmp_path,
        check=True,
    )
    context = detect_platform({}, cwd=tmp_path, out_dir=tmp_path).context()
    assert context.platform == "local" and context.branch == "work" and len(context.commit) == 40
