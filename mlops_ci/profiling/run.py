"""One profile from start to finish: plan, measure, recommend, compare, decide, write the
report to ``<out_dir>/profile`` and store it with the model version.

Everything is written to a scratch folder first and moved to ``<out_dir>/profile`` only
when the profile is complete: an error leaves the previous profile as it was."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlops_ci.profiling.decisions import Decision, blocking_failures, decide
from mlops_ci.profiling.models import ModelFinder, ModelUnderTest
from mlops_ci.profiling.plan import Plan, choose_champion, make_plan
from mlops_ci.profiling.report import ProfileReport
from mlops_ci.profiling.request import ProfileRequest
from mlops_ci.tracking.store import TrackingStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ProfileOutcome:
    """What a profile measured and decided. ``status`` is failed when a blocking decision
    failed; ``figures`` are the headline numbers as text (``summary.figures``); ``paths``
    the report files where they now are; ``markdown`` the report a person reads."""

    report: ProfileReport
    server: str
    decisions: tuple[Decision, ...]
    status: str
    summary: str
    figures: dict[str, str]
    paths: dict[str, Path]
    markdown: str
    profile_uri: str | None = None


def profile(request: ProfileRequest, *, store: Callable[[], TrackingStore]) -> ProfileOutcome:
    """Profile the model ``request`` names. ``store`` gives the MLflow store (only called
    when the registry is needed)."""
    scratch = Path(tempfile.mkdtemp(prefix="mlops-ci-profile-"))
    try:
        return _profile(request, store, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _profile(request: ProfileRequest, store: Callable[[], TrackingStore], scratch: Path) -> ProfileOutcome:
    finder = ModelFinder(request.models, request.out_dir, request.cwd, store)
    plan = make_plan(request, finder, scratch)
    candidate = plan.candidate
    for note in plan.notes:
        log.info("profile: %s", note)
    log.info("profile: %s (%s), server: %s", candidate.label, candidate.source, plan.server)
    endpoint = None
    if plan.server == "endpoint":
        from mlops_ci.profiling.targets import EndpointTarget

        # Unreachable: fail now, before minutes of in-process measurement.
        endpoint = EndpointTarget.connect(
            plan.endpoint,
            ready_path=request.server.ready_path,
            retry_timeout_s=request.server.retry_timeout_s,
        )
    champion, comparison_note = choose_champion(request, finder, candidate, scratch)

    out = scratch / "profile"
    out.mkdir()
    report = ProfileReport(
        model={
            "name": candidate.name or (candidate.settings.name if candidate.settings else None),
            "version": candidate.version,
            "uri": candidate.uri,
            "source": candidate.source,
        },
        objective=request.objective,
        machine=_machine(),
        settings=dict(request.settings),
        champion=_champion_record(champion),
        comparison_note=comparison_note,
    )
    _measure(request, plan, champion, endpoint, report, out)

    if candidate.model_dir is not None:
        shutil.copytree(candidate.model_dir, out / "model")
    final = request.out_dir / "profile"
    if report.sweep is not None:  # notes name logs by where they will be
        report.sweep.notes = [note.replace(str(out), str(final)) for note in report.sweep.notes]
    from mlops_ci.profiling.report import write_report
    from mlops_ci.profiling.summary import figures, summary_line

    paths = write_report(report, out)
    markdown = paths["markdown"].read_text(encoding="utf-8")
    decisions = decide(report, plan.server, request.comparison.policy)
    failed = blocking_failures(decisions)
    status = "failed" if failed else "passed"
    numbers = figures(report, plan.server)
    profile_uri = None
    if request.store_profile and candidate.model_dir is not None:
        from mlops_ci.profiling.registry import store_profile

        profile_uri = store_profile(
            candidate,
            out,
            figures=numbers,
            status=status,
            at=report.machine.get("at", ""),
            commit=request.commit,
            store=store,
        )
    _replace_folder(out, final)
    return ProfileOutcome(
        report=report,
        server=plan.server,
        decisions=decisions,
        status=status,
        summary=summary_line(report, plan.server, failed),
        figures=numbers,
        paths={key: final / path.relative_to(out) for key, path in paths.items()},
        markdown=markdown,
        profile_uri=profile_uri,
    )


def _measure(
    request: ProfileRequest,
    plan: Plan,
    champion: ModelUnderTest | None,
    endpoint: Any,
    report: ProfileReport,
    out: Path,
) -> None:
    """In-process sweep, end-to-end sweep and recommendation, comparison: into ``report``.
    ``endpoint`` is the connected target when the plan loads one."""
    from mlops_ci.profiling.measure import compare_with_champion, end_to_end, progress

    candidate = plan.candidate
    if candidate.model_dir is not None:
        from mlops_ci.profiling.inprocess import inprocess_sweep

        report.inprocess = inprocess_sweep(
            candidate.model_dir,
            threads=list(request.sweeps.threads),
            batch_sizes=list(request.sweeps.batch_sizes),
            duration_s=request.sweeps.inprocess_duration_s,
            progress=progress,
        )
    if plan.server != "none":
        from mlops_ci.profiling.recommend import recommend

        report.sweep, report.target = end_to_end(request, plan, out, endpoint)
        report.sweep.notes[:0] = list(plan.notes)
        report.recommendation = recommend(report.sweep, request.objective)
    if champion is not None:
        report.comparison = compare_with_champion(request, candidate, champion, out)
    report.machine["load_after"] = _load()


def _replace_folder(source: Path, destination: Path) -> None:
    """Move the finished ``source`` to ``destination``, replacing an earlier profile."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    if destination.exists():
        shutil.rmtree(destination)
    shutil.move(str(source), str(destination))


# -- records ------------------------------------------------------------------------------------


def _load() -> float | None:
    try:
        return os.getloadavg()[0]
    except OSError:
        return None


def _machine() -> dict[str, Any]:
    import platform

    from mlops_ci.result import now_iso

    try:
        import onnxruntime

        ort_version = onnxruntime.__version__
    except ImportError:  # pragma: no cover - a dependency
        ort_version = None
    return {
        "at": now_iso(),
        "cpus": os.cpu_count(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "onnxruntime": ort_version,
        "load_before": _load(),
    }


def _champion_record(champion: ModelUnderTest | None) -> dict[str, Any] | None:
    if champion is None:
        return None
    return {
        "name": champion.name,
        "version": champion.version,
        "uri": champion.uri,
        "source": champion.source,
        "stored_profile": dict(champion.tags),
    }
