"""Declarative options: one definition per setting drives the CLI flag, the environment
variable, the config key and its JSON Schema.

A setting named ``retry-timeout`` is the flag ``--retry-timeout``, the environment variable
``MLOPS_CI_RETRY_TIMEOUT`` (how action inputs and CI variables reach the CLI without ever
touching a shell) and the key ``retry-timeout`` in ``mlops-ci.yaml``. Precedence, highest
first: flag, environment, config file, built-in default.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlops_ci.errors import UsageError

KINDS = ("str", "int", "float", "bool", "path", "paths", "list", "map")
ENV_PREFIX = "MLOPS_CI_"


@dataclass(frozen=True)
class Option:
    """One setting of a step (or of every step, for the global options)."""

    name: str
    help: str
    kind: str = "str"
    # The flag when it differs from --<name>, e.g. --param for the map `params`.
    flag: str | None = None
    default: Any = None
    choices: tuple[str, ...] = ()
    metavar: str | None = None
    # The environment variable when it is not MLOPS_CI_<NAME>: deploy's --target would
    # otherwise share MLOPS_CI_TARGET with the label column's --target.
    env: str | None = None
    # Further environment variables read after the first, e.g. MLFLOW_TRACKING_URI.
    env_aliases: tuple[str, ...] = ()
    # False for structured values that only the config file can express (lists of checks).
    cli: bool = True
    # JSON Schema of a structured value; generated from ``kind`` when not given.
    schema: Mapping[str, Any] | None = None
    # The range of a number, declared once: the CLI, the environment and the config file's
    # JSON Schema all check it, and every message has the same wording (``range_text``).
    # ``minimum``/``maximum`` include the bound; ``above``/``below`` exclude it.
    minimum: float | None = None
    maximum: float | None = None
    above: float | None = None
    below: float | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"option {self.name}: unknown kind {self.kind!r}")

    def range_text(self) -> str:
        """The allowed range in words, e.g. "greater than 0 and less than 1"."""
        parts = [
            f"{words} {bound:g}"
            for words, bound in (
                ("at least", self.minimum),
                ("greater than", self.above),
                ("at most", self.maximum),
                ("less than", self.below),
            )
            if bound is not None
        ]
        return " and ".join(parts)

    def in_range(self, value: float) -> bool:
        return not (
            (self.minimum is not None and value < self.minimum)
            or (self.above is not None and value <= self.above)
            or (self.maximum is not None and value > self.maximum)
            or (self.below is not None and value >= self.below)
        )

    @property
    def dest(self) -> str:
        return self.name.replace("-", "_")

    @property
    def flag_name(self) -> str:
        return self.flag or "--" + self.name

    @property
    def env_var(self) -> str:
        return self.env or ENV_PREFIX + self.name.upper().replace("-", "_")

    def json_schema(self) -> dict[str, Any]:
        if self.schema is not None:
            schema = dict(self.schema)
        else:
            schema = _KIND_SCHEMAS[self.kind]()
            if self.choices:
                schema["enum"] = list(self.choices)
            bounds = {
                "minimum": self.minimum,
                "maximum": self.maximum,
                "exclusiveMinimum": self.above,
                "exclusiveMaximum": self.below,
            }
            schema.update({key: bound for key, bound in bounds.items() if bound is not None})
        schema.setdefault("description", self.help)
        if self.default is not None and not callable(self.default):
            schema.setdefault("default", _jsonable(self.default))
        return schema


_SCALAR = {"type": ["string", "number", "boolean"]}
_KIND_SCHEMAS = {
    "str": lambda: {"type": "string"},
    "path": lambda: {"type": "string"},
    "int": lambda: {"type": "integer"},
    "float": lambda: {"type": "number"},
    "bool": lambda: {"type": "boolean"},
    # A single string is accepted where a list is expected: `data: data/train.csv`.
    # Numbers are list items too (`batch-sizes: [1, 64]`); they are read as their text.
    "list": lambda: {
        "anyOf": [{"type": ["string", "number"]}, {"type": "array", "items": {"type": ["string", "number"]}}]
    },
    "paths": lambda: {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]},
    "map": lambda: {"type": "object", "additionalProperties": dict(_SCALAR)},
}


def _jsonable(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple):
        return list(value)
    return value


def add_arguments(parser: argparse.ArgumentParser, options: Iterable[Option]) -> None:
    """Add one flag per CLI option. Values stay raw strings; `resolve` parses them so that
    flags and environment variables share one parser and one error format."""
    for option in options:
        if not option.cli:
            continue
        flag = option.flag_name
        text = _help_text(option)
        if option.kind == "bool":
            parser.add_argument(
                flag, dest=option.dest, action=argparse.BooleanOptionalAction, default=None, help=text
            )
        elif option.kind in ("list", "paths", "map"):
            metavar = option.metavar or ("KEY=VALUE" if option.kind == "map" else "VALUE")
            parser.add_argument(
                flag, dest=option.dest, action="append", default=None, metavar=metavar, help=text
            )
        else:
            parser.add_argument(
                flag, dest=option.dest, default=None, metavar=option.metavar or option.kind.upper(), help=text
            )


def _help_text(option: Option) -> str:
    parts = [option.help.rstrip(".")]
    if option.choices:
        parts.append("one of: " + ", ".join(option.choices))
    if option.range_text():
        parts.append(option.range_text())
    if option.default not in (None, (), [], {}) and not callable(option.default):
        default = option.default
        if isinstance(default, (list, tuple)):
            default = ", ".join(map(str, default))
        parts.append(f"default: {default}")
    if option.kind in ("list", "paths", "map"):
        parts.append("repeatable")
    parts.append("env " + ", ".join((option.env_var, *option.env_aliases)))
    return "; ".join(parts).replace("%", "%%")


def resolve(
    options: Iterable[Option],
    *,
    flags: Mapping[str, Any],
    env: Mapping[str, str],
    config: Mapping[str, Any],
    config_dir: Path,
    cwd: Path,
) -> dict[str, Any]:
    """Merge flag, environment, config and default values into one dict keyed by ``dest``.

    Paths from the config file are relative to the config file's folder; paths from flags
    and the environment are relative to the working directory. Maps merge key by key, with
    the same precedence; every other kind is replaced whole.
    """
    values: dict[str, Any] = {}
    for option in options:
        layers: list[Any] = []  # lowest precedence first
        if option.name in config:
            layers.append(_from_config(option, config[option.name], config_dir))
        env_layer = _from_env(option, env, cwd)
        if env_layer is not None:
            layers.append(env_layer)
        raw_flag = flags.get(option.dest)
        if raw_flag is not None:
            layers.append(_from_flag(option, raw_flag, cwd))
        values[option.dest] = _merge(option, layers, cwd)
    return values


def _merge(option: Option, layers: list[Any], cwd: Path) -> Any:
    if not layers:
        default = option.default
        if option.kind == "map":
            return dict(default or {})
        if option.kind == "list":
            return list(default or ())
        if option.kind == "paths":
            return [_absolute(item, cwd) for item in default or ()]
        if option.kind == "path" and default is not None:
            return _absolute(default, cwd)
        return default
    if option.kind == "map":
        merged: dict[str, Any] = dict(option.default or {})
        for layer in layers:
            merged.update(layer)
        return merged
    return layers[-1]


def _from_config(option: Option, value: Any, config_dir: Path) -> Any:
    # Types were checked against the schema when the file was loaded.
    if option.kind == "path":
        return _absolute(value, config_dir)
    if option.kind == "paths":
        items = [value] if isinstance(value, str) else list(value)
        return [_absolute(item, config_dir) for item in items]
    if option.kind == "list":
        items = value if isinstance(value, list) else [value]
        # (a structured list, e.g. validate's checks, keeps its mappings as they are)
        return [
            str(item) if isinstance(item, (int, float)) and not isinstance(item, bool) else item
            for item in items
        ]
    if option.kind == "map":
        return dict(value)
    if option.kind == "float" and isinstance(value, int):
        return float(value)
    return value


def _from_env(option: Option, env: Mapping[str, str], cwd: Path) -> Any:
    for name in (option.env_var, *option.env_aliases):
        raw = env.get(name)
        # An empty variable is how an unset action input arrives: treat it as unset.
        if raw is not None and raw.strip() != "":
            return _parse_text(option, raw, f"environment variable {name}", cwd, from_env=True)
    return None


def _from_flag(option: Option, raw: Any, cwd: Path) -> Any:
    where = option.flag_name
    if option.kind == "bool":
        return bool(raw)
    if option.kind == "map":
        return _parse_map(list(raw), where)
    if option.kind in ("list", "paths"):
        items = [item for value in raw for item in _split_list(value)]
        return [_absolute(item, cwd) for item in items] if option.kind == "paths" else items
    return _parse_text(option, raw, where, cwd, from_env=False)


def _parse_text(option: Option, raw: str, where: str, cwd: Path, *, from_env: bool) -> Any:
    kind = option.kind
    text = raw.strip()
    if kind == "bool":
        lowered = text.lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise UsageError(f"{where} must be true or false, got {raw!r}")
    if kind == "map":
        return _parse_map(text.splitlines(), where)
    if kind in ("list", "paths"):
        items = _split_list(text)
        return [_absolute(item, cwd) for item in items] if kind == "paths" else items
    if kind == "int":
        try:
            value: Any = int(text)
        except ValueError:
            raise UsageError(f"{where} must be an integer, got {raw!r}") from None
    elif kind == "float":
        try:
            value = float(text)
        except ValueError:
            raise UsageError(f"{where} must be a number, got {raw!r}") from None
    elif kind == "path":
        value = _absolute(text, cwd)
    else:
        value = raw if not from_env else raw.strip("\n")
    if option.choices and value not in option.choices:
        raise UsageError(f"{where} must be one of {', '.join(option.choices)}; got {raw!r}")
    if kind in ("int", "float") and not option.in_range(value):
        raise UsageError(f"{where} must be {option.range_text()}, got {raw!r}")
    return value


def alpha_option(help: str, *, default: float = 0.05, name: str = "alpha") -> Option:
    """A significance level or error rate: a number strictly between 0 and 1."""
    return Option(name, help, kind="float", default=default, above=0, below=1)


def _split_list(text: str) -> list[str]:
    """Lists arrive one per line (a multi-line action input) or comma-separated."""
    items: list[str] = []
    for line in text.splitlines():
        items.extend(part.strip() for part in line.split(","))
    return [item for item in items if item]


def _parse_map(lines: Iterable[str], where: str) -> dict[str, str]:
    result: dict[str, str] = {}
    for line in lines:
        line = line.strip()
        if not line:
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"{where} takes KEY=VALUE, got {line!r}")
        result[key.strip()] = value.strip()
    return result


def _absolute(value: str | Path, base: Path) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else (base / path)


@dataclass(frozen=True)
class OptionValues(Mapping[str, Any]):
    """Resolved values with attribute access: ``values.retry_timeout``."""

    values: Mapping[str, Any] = field(default_factory=dict)

    def __getattr__(self, name: str) -> Any:
        try:
            return self.values[name]
        except KeyError:
            raise AttributeError(name) from None

    def __getitem__(self, key: str) -> Any:
        return self.values[key]

    def __iter__(self):
        return iter(self.values)

    def __len__(self) -> int:
        return len(self.values)
