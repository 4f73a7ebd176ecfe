"""Running one step: load the config, resolve options, call the step, publish its result.

The CLI is a thin shell around ``run_step``; tests call it directly.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from mlops_ci.config import Config, config_schema, load_config
from mlops_ci.errors import UsageError
from mlops_ci.options import Option, OptionValues, resolve
from mlops_ci.platforms import detect_platform
from mlops_ci.report.summary import step_summary_markdown
from mlops_ci.result import StepResult, now_iso
from mlops_ci.steps import GLOBAL_OPTIONS, SHARED_OPTIONS, StepContext, all_steps
from mlops_ci.steps.setting_errors import settings_of

log = logging.getLogger(__name__)


def full_config_schema() -> dict[str, Any]:
    top_level = GLOBAL_OPTIONS + tuple(SHARED_OPTIONS.values())
    return config_schema(top_level, {name: step.options for name, step in all_steps().items()})


def load_project_config(flags: Mapping[str, Any], env: Mapping[str, str], cwd: Path) -> Config:
    raw = flags.get("config") or env.get("MLOPS_CI_CONFIG", "").strip() or None
    return load_config(Path(raw) if raw else None, cwd=cwd, schema=full_config_schema())


def resolve_options(
    flags: Mapping[str, Any],
    *,
    env: Mapping[str, str],
    cwd: Path,
    top_level: Sequence[Option],
    section: str | None = None,
    options: Sequence[Option] = (),
    flags_only: Sequence[Option] = (),
) -> tuple[Config, OptionValues]:
    """The one path from flags, environment and mlops-ci.yaml to option values, for steps
    and for the commands that are not steps (report, serve): ``top_level`` options are read
    from the top of the config file, ``options`` from its ``section``, ``flags_only`` from
    flags and the environment alone."""
    config = load_project_config(flags, env, cwd)
    common = dict(flags=flags, env=env, config_dir=config.base_dir, cwd=cwd)
    values = resolve(top_level, config=config.data, **common)
    if options:
        values.update(resolve(options, config=config.section(section) if section else {}, **common))
    if flags_only:
        values.update(resolve(flags_only, config={}, **common))
    return config, OptionValues(values)


def run_step(
    name: str,
    flags: Mapping[str, Any],
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> StepResult:
    """Run step ``name`` and publish its result (file, CI outputs, summary).

    Usage errors propagate before anything is written. Any other failure still writes a
    complete result with status ``error`` (so the gate can report it) and then propagates.
    """
    env = dict(os.environ) if env is None else env
    cwd = (cwd or Path.cwd()).resolve()
    steps = all_steps()
    if name not in steps:
        raise UsageError(f"unknown step {name!r}; choose one of {', '.join(steps)}")
    step = steps[name]
    config, values = resolve_options(
        flags, env=env, cwd=cwd, top_level=step.top_level_options, section=name, options=step.options
    )
    platform = detect_platform(env, cwd=cwd, out_dir=values.out_dir)
    context = StepContext(
        step=name,
        cwd=cwd,
        config=config,
        options=values,
        platform=platform,
        run_context=platform.context(),
        env=env,
    )

    started_at, started = now_iso(), time.monotonic()
    try:
        # A domain error about a setting is reworded to name its config key and flag.
        with settings_of(step):
            result = step.run(context)
    except UsageError:
        raise
    except Exception as exc:
        failed = StepResult(step=name, status="error", summary=str(exc) or type(exc).__name__)
        _publish(failed, context, started_at, started)
        raise
    _publish(result, context, started_at, started)
    return result


def _publish(result: StepResult, context: StepContext, started_at: str, started: float) -> None:
    result.context = context.run_context.to_dict()
    result.started_at = started_at
    result.duration_s = time.monotonic() - started
    path = result.write(context.out_dir)
    log.debug("wrote %s", path)
    context.platform.write_outputs(result.step, result.outputs)
    context.platform.write_summary(result.summary_markdown or step_summary_markdown(result))
