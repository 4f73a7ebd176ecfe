"""publish_verdict(): the files are written before the platform is asked anything; what
the platform does is reported, never changes the verdict."""

from __future__ import annotations

import json
from pathlib import Path

from mlops_ci.platforms.base import Published, RunContext, Status
from mlops_ci.platforms.local import LocalPlatform
from mlops_ci.report.comment import CommentOptions
from mlops_ci.report.policy import Policy
from mlops_ci.report.publish import GateRequest, comment_paths, publish_verdict
from mlops_ci.report.verdict import VerdictRequest
from tests.forge_cases import SHA, copy_case


class Recording(LocalPlatform):
    """The laptop platform, recording what it is asked and checking the files are there."""

    name = "recording"

    def __init__(self, out_dir: Path, *, refuse: bool = False) -> None:
        super().__init__({}, cwd=out_dir, out_dir=out_dir)
        self.refuse = refuse
        self.calls: list[tuple[str, object]] = []

    def resolve_pr(self, claimed: str | None) -> tuple[str | None, str | None]:
        return claimed, None

    def upsert_comment(
        self, key: str, body: str, *, pr: str, artifact: Path, author: str | None = None
    ) -> Published:
        assert artifact.is_file() and comment_paths(self.out_dir, key)[1].is_file()
        self.calls.append(("comment", (key, pr)))
        if self.refuse:
            return Published("degraded", done=False, reason="HTTP 403: read-only token")
        return Published("created", done=True, url="https://host/c/1", kind="comment")

    def set_status(self, status: Status, *, commit: str) -> Published:
        self.calls.append(("status", (status.name, status.state, commit)))
        return Published("created", done=True, kind="commit-status")

    def annotate(self, level: str, message: str, *, title: str | None = None) -> None:
        self.calls.append(("annotate", (level, message)))


def request(out: Path, *, key: str = "default", **fields) -> GateRequest:
    verdict = VerdictRequest(out, Policy(require=("validate",)), CommentOptions(key=key), need_results=True)
    return GateRequest(verdict, RunContext(platform="recording", commit=SHA, pr="42"), **fields)


def test_files_first_then_comment_status_and_annotations(tmp_path):
    out = copy_case("block", tmp_path / "out")
    platform = Recording(out)
    outcome = publish_verdict(request(out, key="nightly"), platform)
    assert outcome.decision.verdict == "block" and outcome.pr == "42"
    assert set(outcome.paths) == {"comment", "meta", "junit", "metrics"}
    assert all(path.is_file() for path in outcome.paths.values())
    assert outcome.paths["comment"].name == "comment-nightly.md"
    assert platform.calls[0] == ("comment", ("nightly", "42"))
    assert platform.calls[1] == ("status", ("mlops-ci/nightly", "failure", SHA))
    errors = [c for kind, c in platform.calls if kind == "annotate" and c[0] == "error"]
    assert len(errors) == len(outcome.decision.blocking) == 2
    meta = json.loads(outcome.paths["meta"].read_text())
    assert meta["posted"]["comment"]["action"] == "created" and meta["verdict"] == "block"


def test_skipped_and_refused_publications(tmp_path):
    out = copy_case("pass", tmp_path / "out")
    platform = Recording(out, refuse=True)
    outcome = publish_verdict(request(out, skip_status="not wanted", status_name="x"), platform)
    assert outcome.decision.verdict == "pass"
    assert (outcome.status.action, outcome.status.reason) == ("skipped", "not wanted")
    assert outcome.comment.action == "degraded"
    assert ("annotate", ("warning", "comment not published: HTTP 403: read-only token")) in platform.calls
    quiet = Recording(out)
    skipped = publish_verdict(request(out, skip_comment="no thanks", skip_status="no"), quiet)
    assert skipped.comment.reason == "no thanks" and not any(kind != "annotate" for kind, _ in quiet.calls)
