"""What a profile is asked to do: typed, checked and frozen before anything is measured.

Whoever builds a ``ProfileRequest`` (the profile step, from its options and from earlier
steps' results) has already parsed every value; nothing here reads options or files."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # numpy and the load generators stay unimported until a profile runs
    from mlops_ci.profiling.recommend import Objective

SERVER_MODES = ("auto", "container", "serve", "endpoint", "none")
REGRESSION_POLICIES = ("block", "warn", "off")


@dataclass(frozen=True)
class PackagedModel:
    """The model folder an earlier `mlops-ci package` wrote, and where it lives in the registry."""

    settings_path: Path
    uri: str | None = None
    name: str | None = None
    version: str | None = None


@dataclass(frozen=True)
class ChampionChoice:
    """The model to compare with (``uri``) and how it was chosen, or ``uri`` None and why
    there is none."""

    uri: str | None
    reason: str


@dataclass(frozen=True)
class ModelChoice:
    """Where the candidate can come from, in the order it is looked for: ``model``, the
    packaged folder, /model in ``image``, the registered model, else only ``endpoint``."""

    model: str | None = None
    image: str | None = None
    endpoint: str | None = None
    packaged: PackagedModel | None = None
    registered_uri: str | None = None
    # The registered model name, for models converted on the fly.
    model_name: str | None = None
    champion: ChampionChoice = ChampionChoice(None, "no champion")


@dataclass(frozen=True)
class ServerSettings:
    """What to load end to end and what to send it."""

    mode: str = "auto"  # one of SERVER_MODES
    engine: str = "auto"
    env: Mapping[str, str] = field(default_factory=dict)
    ready_path: str = "/v2/health/ready"
    ready_timeout_s: float = 60.0
    retry_timeout_s: float = 60.0
    body: bytes | None = None  # a JSON request body instead of one built from the input example
    infer_path: str | None = None
    request_rows: int = 1


@dataclass(frozen=True)
class SweepSettings:
    """The in-process and end-to-end grids, each list sorted and without repeats."""

    threads: tuple[int, ...] = (1, 2)
    batch_sizes: tuple[int, ...] = (1, 8, 64, 512)
    concurrency: tuple[int, ...] = (1, 4, 16, 64)
    cpus: tuple[float, ...] = (0.5, 1.0, 2.0)
    memory_ladder: tuple[int, ...] = (64 * 2**20, 128 * 2**20, 256 * 2**20)
    memory_search: bool = True
    duration_s: float = 5.0
    warmup_s: float = 0.5
    inprocess_duration_s: float = 1.0
    load_generator: str = "auto"


@dataclass(frozen=True)
class ComparisonSettings:
    """How candidate and champion are compared, and what a slower candidate means."""

    policy: str = "block"  # one of REGRESSION_POLICIES
    threshold: float = 1.2
    on: str = "in-process"
    duration_s: float = 6.0
    rounds: int = 20
    batch_size: int = 1
    alpha: float = 0.05
    n_resamples: int = 2000
    seed: int = 0


@dataclass(frozen=True)
class ProfileRequest:
    models: ModelChoice
    objective: Objective
    out_dir: Path  # the profile is written to <out_dir>/profile
    cwd: Path
    server: ServerSettings = ServerSettings()
    sweeps: SweepSettings = SweepSettings()
    comparison: ComparisonSettings = ComparisonSettings()
    store_profile: bool = True
    commit: str | None = None  # recorded with a stored profile
    env: Mapping[str, str] = field(default_factory=dict)
    # The settings as they were given, recorded in the report.
    settings: Mapping[str, Any] = field(default_factory=dict)
