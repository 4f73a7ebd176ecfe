"""Progressive delivery on one Docker host: a canary in weighted steps, or a shadow, behind
the nginx proxy of :mod:`mlops_ci.deploy.proxy`, with a statistical analysis
(:mod:`mlops_ci.deploy.canary_analysis`) at every step.

The candidate starts beside the stable version and must be ready and pass the smoke test,
as in a blue/green deployment. Then:

- ``canary``: a *baseline* (a fresh container of the stable version's image) starts too.
  For each step below 100 % the proxy sends that share of requests to the candidate and
  as much to the baseline (the stable container serves the rest); after each analysis
  window the candidate's and the baseline's ``/metrics`` are compared: same share, same
  age, only the version differs (see ``_reference`` for why not the stable one). Promote:
  next step. Hold (too few requests): another window, at most ``max_holds`` times, then
  abort. Abort: the proxy sends everything to the stable version again (a reload that
  loses no request) and the candidate is removed. The step at 100 % is the promotion:
  the candidate takes the service alias, the baseline goes, and the stable version stops,
  kept for a rollback.
- ``shadow``: clients get only the stable version's answers; nginx ``mirror`` sends a copy
  of every request to the candidate and discards its answer. Its errors and latency are
  compared with the stable version's the same way (one stage, with holds); when it passes
  it is promoted as above.

Every analysis window is one record in the audit trail (action ``canary-analysis``,
status ``promote``, ``hold`` or ``abort``) and one entry in the check of its step.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mlops_ci.deploy import docker_target as dt
from mlops_ci.deploy import proxy as px
from mlops_ci.deploy.audit import AuditTrail, DeploymentRecord
from mlops_ci.deploy.canary_analysis import (
    ABORT,
    HOLD,
    PROMOTE,
    AnalysisConfig,
    Decision,
    MetricsFormatError,
    VersionMetrics,
    analyse,
    parse_metrics,
)
from mlops_ci.deploy.outcome import CheckRecord, DeployOutcome, StepDecision

log = logging.getLogger(__name__)

STRATEGIES = ("canary", "shadow")


@dataclass(frozen=True)
class ProgressivePlan:
    """How the traffic moves and how each step is judged."""

    strategy: str = "canary"  # canary | shadow
    steps: tuple[int, ...] = (10, 50, 100)  # canary percentages, ascending; 100 is the promotion
    window_s: float = 60.0
    max_holds: int = 3  # extra windows a step may wait for enough requests
    analysis: AnalysisConfig = field(default_factory=AnalysisConfig)
    proxy_image: str | None = None  # None: built from proxy_base_image
    proxy_base_image: str = "python:3.11-slim"
    proxy_port: int = 0  # 0: an ephemeral port, kept for the proxy's life

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise ValueError(f"`strategy` must be one of {', '.join(STRATEGIES)}, got {self.strategy!r}")
        steps = list(self.steps)
        if not steps or steps != sorted(set(steps)) or not all(1 <= s <= 100 for s in steps):
            raise ValueError(f"`steps` must be ascending percentages from 1 to 100, got {self.steps}")


@dataclass(frozen=True)
class ProgressiveDeployRequest:
    deploy: dt.DockerDeployRequest
    plan: ProgressivePlan


def stages(plan: ProgressivePlan) -> tuple[int, ...]:
    """The analysed stages: canary percentages below 100, or 0 for the shadow."""
    if plan.strategy == "shadow":
        return (0,)
    return tuple(step for step in plan.steps if step < 100)


def stage_name(percent: int) -> str:
    return "shadow" if percent == 0 else f"canary {percent}%"


def scrape(url: str) -> VersionMetrics:
    import requests

    answer = requests.get(f"{url}/metrics", timeout=5)
    answer.raise_for_status()
    return parse_metrics(answer.text)


def deploy_docker_progressive(
    request: ProgressiveDeployRequest,
    trail: AuditTrail,
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> DeployOutcome:
    deploy, plan = request.deploy, request.plan
    service = deploy.service
    prepared = dt.prepare(deploy)
    proxy_image = plan.proxy_image or px.ensure_proxy_image(prepared.engine, plan.proxy_base_image)
    new, url, problem = dt.start_candidate(prepared, deploy)
    if problem:
        return dt.candidate_failed(prepared, service, new, problem, trail, check=plan.strategy)
    try:
        return _roll_out(prepared, deploy, plan, proxy_image, new, url, trail, sleep)
    except BaseException:
        _clean_up_after_error(prepared, service)
        raise


def _clean_up_after_error(prepared: dt.Prepared, service: dt.DockerService) -> None:
    """A failure half-way (Docker or the proxy stopped answering, an interrupt): the stable
    version gets all traffic again, when the proxy still answers, and the candidate and the
    baseline go. Best effort: the error that got here is what is reported."""
    stable = prepared.old.container if prepared.old is not None else None
    client, name = prepared.client, service.name
    try:
        if stable is not None and stable.status == "running" and px.find_proxy(client, name) is not None:
            dt.route_proxy_to(client, service, stable)
    except Exception as exc:  # noqa: BLE001 - already failing: keep the first error
        log.warning("could not route %s back to %s: %s", name, stable.name, exc)
    for role in ("candidate", "baseline"):
        try:
            dt._remove_candidate(client, name, role=role)
        except Exception as exc:  # noqa: BLE001 - already failing: keep the first error
            log.warning("could not remove %s-%s: %s", name, role, exc)


def _roll_out(
    prepared: dt.Prepared,
    deploy: dt.DockerDeployRequest,
    plan: ProgressivePlan,
    proxy_image: str,
    new,
    url: str,
    trail: AuditTrail,
    sleep: Callable[[float], None],
) -> DeployOutcome:
    service = deploy.service
    client, name = prepared.client, service.name
    network = px.routes_network(client, name)
    stable = prepared.old.container if prepared.old is not None else None
    if stable is None or stable.status != "running":
        # Nothing serves: there is nothing to compare with and no traffic to protect.
        proxy = _proxy_on(client, service, proxy_image, new, network, plan)
        message = (
            f"nothing was serving {name}: no stable version to compare with, {new.name} takes all traffic"
        )
        return _with_proxy(
            dt.promoted(
                prepared, service, new, url, trail, checks=(CheckRecord(plan.strategy, True, message),)
            ),
            proxy,
            service,
            strategy=plan.strategy,
        )
    proxy = _proxy_on(client, service, proxy_image, stable, network, plan)
    stable_ip = px.address_on(stable, network)
    canary_ip = px.address_on(new, network)
    reference, reference_url, problem = _reference(prepared, service, stable, plan)
    if problem:
        new.remove(force=True)
        return dt.candidate_failed(prepared, service, reference, problem, trail, check=plan.strategy)
    reference_ip = px.address_on(reference, network)
    decisions: list[StepDecision] = []
    checks: list[CheckRecord] = []
    for percent in stages(plan):
        px.apply_routes(
            proxy,
            name,
            routes_for(percent, stable, stable_ip, reference, reference_ip, new, canary_ip),
            bind=service.bind,
        )
        stage = _analyse_stage(percent, plan, reference_url, url, prepared, trail, sleep)
        decisions.extend(stage)
        last = stage[-1]
        checks.append(
            CheckRecord(
                stage_name(percent),
                last.action == PROMOTE,
                last.reason,
                details={"windows": [d.to_dict() for d in stage]},
            )
        )
        if last.action != PROMOTE:
            outcome = _abort(prepared, service, proxy, stable, stable_ip, new, trail, checks, decisions, last)
            _remove_baseline(reference, stable)
            return _with_proxy(outcome, proxy, service, decisions=tuple(decisions), strategy=plan.strategy)
    if plan.strategy == "canary":
        # The last step: all traffic to the candidate before it takes the alias.
        px.apply_routes(
            proxy,
            name,
            px.Routes((px.Backend(canary_ip, 100),), summary=f"100% to {new.name}"),
            bind=service.bind,
        )
    _remove_baseline(reference, stable)
    outcome = dt.promoted(
        prepared,
        service,
        new,
        url,
        trail,
        checks=tuple(checks),
        details={"strategy": plan.strategy, "decisions": [d.to_dict() for d in decisions]},
    )
    return _with_proxy(outcome, proxy, service, decisions=tuple(decisions), strategy=plan.strategy)


def _reference(prepared: dt.Prepared, service: dt.DockerService, stable, plan: ProgressivePlan):
    """What the candidate is compared with: (container, its host URL, a problem or None).

    A canary is compared with a *baseline*: a fresh container of the stable version's
    image that gets the same share of the traffic as the canary (Kayenta's method). The
    stable container itself is no fair reference: it is warm and busy with most of the
    traffic, while a container that serves a small share waits between requests and pays
    for waking up at each one; on a busy host that alone made an identical canary look
    several times slower at the 95th percentile. A shadow sees every request the stable
    version sees, so the stable version is its reference."""
    if plan.strategy == "shadow":
        return stable, f"http://{service.bind}:{dt.host_port(stable)}", None
    dt._remove_candidate(prepared.client, service.name, role="baseline")
    baseline = dt._start(
        prepared.client,
        service.name,
        stable.attrs["Image"],
        dt._version_of(prepared.old),
        bind=service.bind,
        request_log_dir=None,
        role="baseline",
    )
    url = f"http://{service.bind}:{dt.host_port(baseline)}"
    problem = dt.wait_ready(baseline, url, service.ready_timeout_s)
    return (
        baseline,
        url,
        (f"the baseline (the stable version's image) did not start: {problem}" if problem else None),
    )


def _remove_baseline(reference, stable) -> None:
    if reference.id != stable.id:
        _drain_and_remove(reference)


def _drain_and_remove(container) -> None:
    """SIGTERM first: the server finishes the requests nginx's old workers still had in
    flight to it when the routes changed (a kill would turn them into 502s)."""
    container.stop(timeout=35)
    container.remove(force=True)


def routes_for(
    percent: int, stable, stable_ip: str, reference, reference_ip: str, new, canary_ip: str
) -> px.Routes:
    """The routes of a stage: the shadow copies everything to the candidate; a canary step
    gives the candidate ``percent`` and the baseline as much (up to what is left), the
    stable version the rest."""
    if percent == 0:
        return px.Routes(
            (px.Backend(stable_ip, 100),),
            shadow=canary_ip,
            summary=f"{stable.name} answers, a copy of each request to {new.name}",
        )
    baseline = min(percent, 100 - percent)
    rest = 100 - percent - baseline
    servers = [px.Backend(canary_ip, percent)]
    summary = [f"{percent}% to {new.name}"]
    if baseline:
        servers.append(px.Backend(reference_ip, baseline))
        summary.append(f"{baseline}% to the baseline {reference.name}")
    if rest:
        servers.append(px.Backend(stable_ip, rest))
        summary.append(f"{rest}% to {stable.name}")
    return px.Routes(tuple(servers), summary=", ".join(summary))


def _analyse_stage(
    percent: int,
    plan: ProgressivePlan,
    stable_url: str,
    canary_url: str,
    prepared: dt.Prepared,
    trail: AuditTrail,
    sleep: Callable[[float], None],
) -> list[StepDecision]:
    """Windows of this stage until promote or abort (a hold waits another window, at most
    ``max_holds`` times)."""
    found: list[StepDecision] = []
    for window in range(plan.max_holds + 1):
        try:
            stable_before, canary_before = scrape(stable_url), scrape(canary_url)
            sleep(plan.window_s)
            stable_after, canary_after = scrape(stable_url), scrape(canary_url)
        except (OSError, MetricsFormatError, ValueError) as exc:
            decision = Decision(
                ABORT, f"the metrics could not be read ({type(exc).__name__}: {exc})"[:300], 0, 0
            )
        else:
            decision = analyse(
                canary_after.since(canary_before), stable_after.since(stable_before), plan.analysis
            )
        if decision.action == HOLD and window == plan.max_holds:
            decision = Decision(
                ABORT,
                f"{decision.reason}, after {window + 1} windows of {plan.window_s:g} s",
                decision.stable_requests,
                decision.canary_requests,
            )
        step = StepDecision(percent, window + 1, decision.action, decision.reason, decision.to_dict())
        found.append(step)
        log.info("%s, window %d: %s (%s)", stage_name(percent), window + 1, decision.action, decision.reason)
        trail.record(
            DeploymentRecord(
                "docker",
                "canary-analysis",
                decision.action,
                model=prepared.model,
                version=prepared.version,
                image=prepared.image,
                image_digest=prepared.digest,
                previous_version=dt._version_of(prepared.old),
                message=f"{stage_name(percent)}, window {window + 1}: {decision.action}: {decision.reason}",
                context=trail.context,
                details={"strategy": plan.strategy, "percent": percent, "window": window + 1}
                | decision.to_dict(),
            )
        )
        if decision.action != HOLD:
            break
    return found


def _abort(
    prepared: dt.Prepared,
    service: dt.DockerService,
    proxy,
    stable,
    stable_ip: str,
    new,
    trail: AuditTrail,
    checks: list[CheckRecord],
    decisions: list[StepDecision],
    last: StepDecision,
) -> DeployOutcome:
    """All traffic back to the stable version, then the candidate goes."""
    px.apply_routes(
        proxy,
        service.name,
        px.Routes((px.Backend(stable_ip, 100),), summary=f"rolled back: all traffic to {stable.name}"),
        bind=service.bind,
    )
    _drain_and_remove(new)
    message = (
        f"{stage_name(last.percent)} aborted ({last.reason}); {prepared.image} was removed and "
        f"{stable.name} serves all traffic again"
    )
    record = DeploymentRecord(
        "docker",
        "deploy",
        "rolled-back",
        model=prepared.model,
        version=prepared.version,
        image=prepared.image,
        image_digest=prepared.digest,
        previous_version=dt._version_of(prepared.old),
        message=message,
        context=trail.context,
        details={"decisions": [d.to_dict() for d in decisions]},
    )
    trail.record(record)
    outcome = DeployOutcome(
        "docker",
        "rolled-back",
        False,
        message,
        tuple(checks),
        deployment_id=record.id,
        previous_version=dt._version_of(prepared.old) or "",
        **dt.reported(prepared, trail),
    )
    return outcome


def _proxy_on(client, service: dt.DockerService, image: str, container, network, plan: ProgressivePlan):
    """The service's proxy, running and sending all traffic to ``container``."""
    found = px.find_proxy(client, service.name)
    address = px.address_on(container, network)
    routes = px.Routes((px.Backend(address, 100),), summary=f"all traffic to {container.name}")
    if found is None:
        return px.start_proxy(
            client,
            service.name,
            image,
            routes,
            bind=service.bind,
            port=plan.proxy_port,
            service_network=dt.ensure_network(client, service.name),
        )
    found.reload()
    if found.status != "running":
        found.start()
    px.apply_routes(found, service.name, routes, bind=service.bind)
    return found


def _with_proxy(
    outcome: DeployOutcome,
    proxy,
    service: dt.DockerService,
    *,
    strategy: str,
    decisions: tuple[StepDecision, ...] = (),
) -> DeployOutcome:
    from dataclasses import replace

    where = px.proxy_url(proxy, service.bind)
    extra: dict[str, Any] = {
        "proxy_endpoint": f"http://{service.name}-proxy:{px.PROXY_PORT} on network "
        f"mlops-ci-{service.name}; {where} on the host",
        "decisions": decisions,
        "strategy": strategy,
    }
    return replace(outcome, **extra)
