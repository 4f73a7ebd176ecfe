"""What every step shares: the global options, the context a step runs in, and the
``Step`` record each step module exports."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from mlops_ci.config import Config
from mlops_ci.options import Option, OptionValues
from mlops_ci.platforms import Platform, RunContext
from mlops_ci.result import StepResult, earlier_result
from mlops_ci.tracking.store import TrackingStore, resolve_store

GLOBAL_OPTIONS: tuple[Option, ...] = (
    Option("out-dir", "Folder for step results, reports and logs", kind="path", default=".mlops-ci"),
    Option(
        "tracking-uri",
        "MLflow tracking server URI; without one, an embedded SQLite store "
        "under .mlops-ci/ in the project is used",
        env_aliases=("MLFLOW_TRACKING_URI",),
        metavar="URI",
    ),
    Option(
        "experiment",
        "MLflow experiment name (default: the model name, else the project folder's name)",
        env_aliases=("MLFLOW_EXPERIMENT_NAME",),
        metavar="NAME",
    ),
    Option("model-name", "Registered model name", metavar="NAME"),
    Option(
        "retry-timeout",
        "Seconds to keep retrying an unreachable service before giving up",
        kind="float",
        default=60.0,
        minimum=0,
        metavar="SECONDS",
    ),
)

# Settings several steps use (the holdout is scored by validate, package and profile). They
# sit at the top level of the config; a step lists the ones it takes in ``Step.shared``.
SHARED_OPTIONS: dict[str, Option] = {
    option.name: option
    for option in (
        Option(
            "holdout", "Holdout data (CSV or Parquet) the models are scored on", kind="path", metavar="PATH"
        ),
        Option("target", "Target column of the holdout data", metavar="COLUMN"),
    )
}


@dataclass(frozen=True)
class Output:
    """One output of a step (a key of ``StepResult.outputs``). The GitHub actions' and GitLab
    components' outputs are generated from these (scripts/generate_ci_files.py)."""

    name: str
    help: str


@dataclass(frozen=True)
class Step:
    """A step as the CLI and the runner see it. Each step module exports one as ``STEP``."""

    name: str
    help: str
    options: tuple[Option, ...]
    run: Callable[[StepContext], StepResult]
    description: str = ""
    shared: tuple[str, ...] = ()
    # Every key the step may put in its result's outputs, kebab-case.
    outputs: tuple[Output, ...] = ()

    @property
    def top_level_options(self) -> tuple[Option, ...]:
        """The global options plus the shared ones this step takes."""
        return GLOBAL_OPTIONS + tuple(SHARED_OPTIONS[name] for name in self.shared)


@dataclass
class StepContext:
    """Everything a step needs, resolved once by the runner."""

    step: str
    cwd: Path
    config: Config
    options: OptionValues
    platform: Platform
    run_context: RunContext
    env: Mapping[str, str] = field(default_factory=dict)

    @property
    def project_dir(self) -> Path:
        """The folder of the config file (or the working directory without one): relative
        paths in the config and the training command's working directory."""
        return self.config.base_dir

    @property
    def out_dir(self) -> Path:
        return self.options.out_dir

    @property
    def experiment_name(self) -> str:
        return self.options.experiment or self.options.model_name or self.project_dir.resolve().name

    def earlier(self, step: str) -> StepResult | None:
        """The result an earlier step wrote to this out-dir, or None when it has not run there.
        An unreadable or invalid file is a usage error naming it. The one way a step reads
        another step's result."""
        return earlier_result(self.out_dir, step)

    def earlier_output(self, step: str, key: str, *, statuses: tuple[str, ...] = ()) -> str | None:
        """One output of an earlier step, or None when the step has not run, did not set it,
        or (with ``statuses``) ended in another status."""
        result = self.earlier(step)
        if result is None or (statuses and result.status not in statuses):
            return None
        return result.outputs.get(key) or None

    @cached_property
    def store(self) -> TrackingStore:
        return resolve_store(
            self.options.tracking_uri,
            project_dir=self.project_dir,
            retry_timeout_s=self.options.retry_timeout,
        )
