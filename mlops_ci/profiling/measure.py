"""The measurements a plan asks for: the end-to-end sweep (with the OOM search in a
container) and the interleaved comparison with the champion. Logs are written into the
profile's folder ``out``."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mlops_ci.profiling.compare import Comparison
from mlops_ci.profiling.errors import NoRequestPath
from mlops_ci.profiling.models import ModelUnderTest
from mlops_ci.profiling.plan import Plan
from mlops_ci.profiling.request import ProfileRequest
from mlops_ci.profiling.sweep import Sweep

log = logging.getLogger(__name__)


def progress(line: str) -> None:
    log.info("profile: %s", line)


def end_to_end(
    request: ProfileRequest, plan: Plan, out: Path, endpoint: Any = None
) -> tuple[Sweep, dict[str, Any]]:
    """The sweep over concurrency (x CPU limits in a container) and, in a container, the
    smallest memory limit without an OOM kill; with a record of what was loaded.
    ``endpoint`` is the connected target when the plan loads an endpoint."""
    from mlops_ci.profiling.sweep import e2e_sweep, memory_search

    server, sweeps = request.server, request.sweeps
    load, heavy = _requests(request, plan)
    target_info: dict[str, Any] = {
        "kind": plan.server,
        "generator": plan.generator.describe(),
        "request_rows": server.request_rows if server.body is None else None,
        "request_path": load.path,
    }
    if plan.server == "container":
        target_info["image"] = plan.image
        target_info["engine"] = plan.engine.describe()
    elif plan.server == "endpoint":
        target_info["url"] = plan.endpoint
    start = _starter(request, plan, out, endpoint)
    levels: list[float | None] = list(sweeps.cpus) if plan.server == "container" else [None]
    sweep = e2e_sweep(
        start,
        plan.generator,
        load,
        target_kind=plan.server,
        cpus_levels=levels,
        concurrency=list(sweeps.concurrency),
        duration_s=sweeps.duration_s,
        warmup_s=sweeps.warmup_s,
        slo_p99_ms=request.objective.slo_p99_ms,
        progress=progress,
    )
    if plan.server == "container" and sweeps.memory_search and sweep.points:
        sweep.memory_probes = memory_search(
            start,
            plan.generator,
            heavy,
            ladder=list(sweeps.memory_ladder),
            cpus=max(sweeps.cpus),
            concurrency=max(sweeps.concurrency),
            duration_s=sweeps.duration_s,
            max_error_rate=request.objective.max_error_rate,
            progress=progress,
        )
    return sweep, target_info


def _requests(request: ProfileRequest, plan: Plan) -> tuple[Any, Any]:
    """The request of the sweep, and the heaviest one (the largest batch) for the OOM search."""
    from mlops_ci.profiling.payload import Request, infer_path, v2_request

    server, settings = request.server, plan.candidate.settings
    if server.body is not None:
        path = server.infer_path or (infer_path(settings) if settings is not None else None)
        if path is None:
            raise NoRequestPath()
        body = Request("POST", path, server.body)
        return body, body
    load = v2_request(settings, server.request_rows)
    heavy = v2_request(settings, max(request.sweeps.batch_sizes))
    if server.infer_path:
        return Request("POST", server.infer_path, load.body), Request("POST", server.infer_path, heavy.body)
    return load, heavy


def _starter(request: ProfileRequest, plan: Plan, out: Path, endpoint: Any) -> Callable[..., Any]:
    """Starts the server under test with a CPU and memory limit (ignored but by a container)."""
    from mlops_ci.profiling.targets import ContainerTarget, ServeTarget

    server = request.server
    env = dict(server.env)
    if plan.server == "container":

        def start(cpus: float | None, memory: int | None) -> Any:
            return ContainerTarget.start(
                plan.engine,
                plan.image,
                cpus=cpus,
                memory_bytes=memory,
                env=env,
                ready_timeout_s=server.ready_timeout_s,
            )

    elif plan.server == "serve":
        log_path = out / "serve.log"

        def start(cpus: float | None, memory: int | None) -> Any:
            return ServeTarget.start(
                plan.candidate.model_dir, env=env, log_path=log_path, ready_timeout_s=server.ready_timeout_s
            )

    else:

        def start(cpus: float | None, memory: int | None) -> Any:
            return endpoint

    return start


def compare_with_champion(
    request: ProfileRequest, candidate: ModelUnderTest, champion: ModelUnderTest, out: Path
) -> Comparison:
    """Candidate vs champion latency, interleaved, in-process or through two `mlops-ci serve`."""
    from mlops_ci.profiling.compare import compare_latency, http_sampler, inprocess_sampler
    from mlops_ci.profiling.inprocess import load_model
    from mlops_ci.profiling.payload import onnx_feeds, v2_request

    how = request.comparison
    common = dict(
        rounds=how.rounds,
        duration_s=how.duration_s,
        threshold=how.threshold,
        confidence_level=1 - how.alpha,
        n_resamples=how.n_resamples,
        seed=how.seed,
    )
    batch = how.batch_size
    log.info("profile: comparing with %s (%s, %.1f s)", champion.label, how.on, how.duration_s)
    if how.on == "in-process":
        models = [load_model(m.model_dir, threads=1) for m in (candidate, champion)]
        samplers = [inprocess_sampler(m, onnx_feeds(m.settings, batch, decoder=m.decoder)) for m in models]
        return compare_latency(
            samplers[0], samplers[1], mode="in-process", setup=f"batch {batch}, 1 intra-op thread", **common
        )
    from mlops_ci.profiling.targets import ServeTarget

    def serve(model: ModelUnderTest, role: str) -> Any:
        return ServeTarget.start(
            model.model_dir,
            env=dict(request.server.env),
            log_path=out / f"serve-{role}.log",
            ready_timeout_s=request.server.ready_timeout_s,
        )

    with serve(candidate, "candidate") as first, serve(champion, "champion") as second:
        return compare_latency(
            http_sampler(first.url, v2_request(candidate.settings, batch)),
            http_sampler(second.url, v2_request(champion.settings, batch)),
            mode="end-to-end",
            setup=f"{batch}-row V2 requests, one connection, `mlops-ci serve`",
            **common,
        )
