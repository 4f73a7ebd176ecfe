"""Reading every step result in an out-dir, in pipeline order."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from pathlib import Path

from mlops_ci.errors import UsageError
from mlops_ci.result import SCHEMA_NAME, StepResult, read_step_result

log = logging.getLogger(__name__)


class NoStepResults(UsageError):
    """There is nothing to decide on: the folder of step results is missing or empty. The
    caller knows which setting names that folder and may say so."""


# Known steps in pipeline order; any other step sorts after them, by name.
PIPELINE_ORDER = ("train", "register", "validate", "package", "profile", "deploy", "drift")
_SCHEMA_FAMILY = "mlops-ci/step-result/"
# A step result is kilobytes; results downloaded from an untrusted run are data of any size.
MAX_RESULT_BYTES = 8 * 1024 * 1024


def step_order(step: str) -> tuple[int, str]:
    return (PIPELINE_ORDER.index(step), "") if step in PIPELINE_ORDER else (len(PIPELINE_ORDER), step)


def load_results(out_dir: Path, *, exclude: tuple[str, ...] = ("gate",)) -> list[StepResult]:
    """Every ``*.json`` step result directly in ``out_dir`` except the ``exclude``d steps.

    Other JSON files (the comment's metadata, a tool's report) are skipped. A file that
    claims to be a step result but is invalid, a result of a newer schema version, or two
    results for one step are usage errors: the gate must not decide on a partial picture.
    """
    if not out_dir.is_dir():
        raise NoStepResults(f"no step results: {out_dir} does not exist; run the steps first")
    results: dict[str, tuple[StepResult, Path]] = {}
    for path in sorted(out_dir.glob("*.json")):
        size = path.stat().st_size if path.is_file() else 0
        if size > MAX_RESULT_BYTES:
            if path.stem in PIPELINE_ORDER:
                raise UsageError(
                    f"step result {path} is {size:,} bytes, over the {MAX_RESULT_BYTES:,} a step result "
                    "may have; it was not written by mlops-ci"
                )
            log.debug("skipping %s: %d bytes, too large for a step result", path, size)
            continue
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            if path.stem in PIPELINE_ORDER:
                raise UsageError(f"cannot read step result {path}: {exc}; rerun that step") from None
            log.debug("skipping %s: not JSON (%s)", path, exc)
            continue
        schema = data.get("schema") if isinstance(data, dict) else None
        if not isinstance(schema, str) or not schema.startswith(_SCHEMA_FAMILY):
            log.debug("skipping %s: not a step result", path)
            continue
        if schema != SCHEMA_NAME:
            raise UsageError(
                f"{path} is a step result of schema {schema!r}, newer than this mlops-ci "
                f"understands ({SCHEMA_NAME}); upgrade mlops-ci"
            )
        result = read_step_result(path)
        if result.step in exclude:
            continue
        if result.step in results:
            other = results[result.step][1]
            raise UsageError(
                f"two results for step {result.step!r}: {other.name} and {path.name}; remove the stale one"
            )
        results[result.step] = (result, path)
    return [result for result, _ in sorted(results.values(), key=lambda item: step_order(item[0].step))]


def first_recorded(results: Iterable[StepResult], field: str) -> str | None:
    """The first value of a run-context ``field`` (commit, pr, pipeline_url...) the results
    recorded, in their order."""
    return next((r.context.get(field) for r in results if r.context.get(field)), None)
