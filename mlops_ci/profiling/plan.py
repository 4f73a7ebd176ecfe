"""Which measurements a profile makes: the candidate, the server to load it in (a
container, `mlops-ci serve`, a running endpoint, or none: in-process only), the load
generator, and whether and with which champion the latency is compared. Decided, and
checked, before anything is measured."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlops_ci.profiling.errors import EngineUnavailable, NoRequestBody, NothingToProfile
from mlops_ci.profiling.models import ModelFinder, ModelUnderTest
from mlops_ci.profiling.request import ProfileRequest

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Plan:
    candidate: ModelUnderTest
    server: str  # container | serve | endpoint | none
    generator: Any  # a loadgen.LoadGenerator
    image: str | None = None
    engine: Any = None
    endpoint: str | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)


def make_plan(request: ProfileRequest, finder: ModelFinder, scratch: Path) -> Plan:
    """The candidate and the server to load. Raises (before any measurement) for what
    cannot work: nothing to profile, a container engine that must answer and does not, an
    endpoint with nothing to send it."""
    from mlops_ci.profiling.loadgen import find_generator

    generator = find_generator(request.sweeps.load_generator, request.env)
    choice, mode = request.models, request.server.mode
    image, endpoint = choice.image, choice.endpoint
    engine, engine_why = None, ""
    if mode == "container" or (mode == "auto" and not endpoint and image is not None):
        from mlops_ci.container.engine import find_engine

        engine, engine_why = find_engine(request.server.engine, request.env)
        if engine is None and mode == "container":
            raise EngineUnavailable(engine_why)

    candidate = finder.candidate(engine, scratch)
    if candidate is None:
        raise NothingToProfile(request.out_dir)

    notes: list[str] = []
    if endpoint:
        server = "endpoint"
    elif mode == "none":
        server = "none"
    elif engine is not None and image is not None and mode in ("auto", "container"):
        server = "container"
    else:
        if mode == "auto" and image is not None:
            notes.append(f"image {image} not run ({engine_why}): measured `mlops-ci serve` instead")
        server = "serve"
    if server == "endpoint" and candidate.model_dir is None and request.server.body is None:
        raise NoRequestBody(endpoint)
    return Plan(
        candidate,
        server,
        generator,
        image=image if server == "container" else None,
        engine=engine,
        endpoint=endpoint,
        notes=tuple(notes),
    )


def choose_champion(
    request: ProfileRequest, finder: ModelFinder, candidate: ModelUnderTest, scratch: Path
) -> tuple[ModelUnderTest | None, str | None]:
    """The champion to compare with and the note the report shows about it; no champion
    with the reason when the latency is not compared."""
    if request.comparison.policy == "off":
        return None, "not compared (latency-regression: off)"
    if candidate.model_dir is None:
        return None, "not compared: the candidate's model is not available here (only an endpoint)"
    champion, how = finder.champion(candidate, scratch)
    if champion is None:
        return None, how
    log.info("profile: champion %s (%s; %s)", champion.label, request.models.champion.reason, how)
    return champion, f"Champion model: {how}."
