"""The one comment a pipeline owns on a pull/merge request, found by a hidden marker.

A comment body starts with ``<!-- mlops-ci:KEY -->`` (KEY lets several pipelines each own
one comment) and a second hidden line recording which pipeline wrote it. Upserting means:
list the comments, take the oldest one *written by the token's own identity* that starts
with the marker, edit it in place (or create it when there is none), and delete any of our
duplicates that two pipelines racing on the first push may have created. A comment written
by a later pipeline is not overwritten by an earlier pipeline that finishes late.

The marker alone proves nothing: anyone who may comment can start a comment with it (and
with a larger pipeline number). Such a comment is never ours: it is not edited, not
deleted, and its pipeline number is not believed.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from mlops_ci.errors import SettingError

KEY_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,63}$")
_META = re.compile(r"<!-- mlops-ci:run (\{.*?\}) -->")


def marker(key: str) -> str:
    """The hidden first line that identifies the comment a pipeline owns."""
    return f"<!-- mlops-ci:{key} -->"


def check_key(key: str) -> str:
    if not KEY_PATTERN.match(key or ""):
        raise SettingError(
            "the comment key must be 1-64 letters, digits, '.', '_', '/' or '-' starting with a "
            f"letter or digit, got {key!r}",
            setting="comment-key",
        )
    return key


def meta_line(*, pipeline: int | None, commit: str | None) -> str:
    data = {"pipeline": pipeline, "commit": commit}
    return f"<!-- mlops-ci:run {json.dumps(data, sort_keys=True)} -->"


def owns(body: str | None, key: str) -> bool:
    """Whether ``body`` is the comment of ``key``: it must *start* with the marker, so a
    person quoting the marker in their own comment never has it taken over."""
    return (body or "").lstrip().startswith(marker(key))


def pipeline_of(body: str) -> int | None:
    match = _META.search(body or "")
    if not match:
        return None
    try:
        value = json.loads(match.group(1)).get("pipeline")
    except (ValueError, AttributeError):
        return None
    return value if isinstance(value, int) else None


@dataclass(frozen=True)
class Existing:
    """A comment already on the PR/MR: its id, body, the login of the account that wrote
    it (None when the platform does not say, e.g. a deleted account) and the client object
    to act on."""

    id: str
    body: str
    handle: Any = None
    author: str | None = None


def same_login(a: str | None, b: str | None) -> bool:
    """GitHub and GitLab logins are case-insensitive; an unknown author is nobody."""
    return bool(a) and bool(b) and a.casefold() == b.casefold()


def needs_author(existing: list[Existing], key: str) -> bool:
    """Whether any comment carries the marker: only then does it matter who we are (so the
    identity is looked up only when there is something to tell apart)."""
    return any(owns(comment.body, key) for comment in existing)


@dataclass(frozen=True)
class Plan:
    """What to do: ``action`` is create, update, unchanged or kept-newer; ``target`` the
    comment to edit; ``duplicates`` our other comments with the same marker."""

    action: str
    target: Existing | None
    duplicates: tuple[Existing, ...]


def plan_upsert(
    existing: list[Existing], *, key: str, body: str, pipeline: int | None, author: str | None
) -> Plan:
    """``existing`` in creation order (oldest first); ``author`` is the login the token
    writes as. Only its comments count: with ``author`` None nothing is ours."""
    mine = [comment for comment in existing if same_login(comment.author, author) and owns(comment.body, key)]
    if not mine:
        return Plan("create", None, ())
    target, duplicates = mine[0], tuple(mine[1:])
    if target.body == body:
        return Plan("unchanged", target, duplicates)
    written_by = pipeline_of(target.body)
    # Strictly greater: a rerun of the same pipeline (same number) updates its own comment.
    if pipeline is not None and written_by is not None and written_by > pipeline:
        return Plan("kept-newer", target, duplicates)
    return Plan("update", target, duplicates)
