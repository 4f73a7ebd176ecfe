"""Loading and validating ``mlops-ci.yaml``.

The file holds global settings at the top level and one section per step::

    experiment: census-income
    model-name: census-income
    train:
      command: python train.py --C {C}
      data: [data/train.csv]
      params: {C: 1.0}

Every key is optional. An unknown key or a value of the wrong type is a usage error that
names the key and the file, so a typo never silently falls back to a default.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlops_ci.errors import UsageError
from mlops_ci.options import Option

DEFAULT_CONFIG_NAME = "mlops-ci.yaml"
SCHEMA_ID = "https://mlops-ci.dev/schemas/config/v1.json"


@dataclass(frozen=True)
class Config:
    """A validated config file, or the empty config when there is none."""

    path: Path | None = None
    data: Mapping[str, Any] = field(default_factory=dict)
    base_dir: Path = field(default_factory=Path.cwd)

    @property
    def origin(self) -> str:
        return str(self.path) if self.path else "(no config file)"

    def section(self, name: str) -> Mapping[str, Any]:
        return self.data.get(name) or {}


def config_schema(
    global_options: Sequence[Option], step_options: Mapping[str, Sequence[Option]]
) -> dict[str, Any]:
    """The JSON Schema of the whole config file, generated from the option definitions."""
    properties: dict[str, Any] = {o.name: o.json_schema() for o in global_options}
    for step, options in step_options.items():
        properties[step] = {
            "type": "object",
            "description": f"Settings of `mlops-ci {step}`.",
            "additionalProperties": False,
            "properties": {o.name: o.json_schema() for o in options},
        }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "mlops-ci.yaml",
        "type": "object",
        "additionalProperties": False,
        "properties": properties,
    }


def load_config(path: Path | None, *, cwd: Path, schema: Mapping[str, Any]) -> Config:
    """Load and validate a config file.

    ``path`` None means "the default file if it exists": ``mlops-ci.yaml`` in ``cwd``. A path
    given explicitly must exist.
    """
    if path is None:
        candidate = cwd / DEFAULT_CONFIG_NAME
        if not candidate.is_file():
            return Config(path=None, data={}, base_dir=cwd)
        path = candidate
    elif not path.is_absolute():
        path = cwd / path
    if not path.is_file():
        raise UsageError(f"config file {path} does not exist; fix --config or MLOPS_CI_CONFIG")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read config file {path}: {exc}") from None
    data = _parse_yaml(text, path)
    validate_config(data, schema, origin=str(path))
    return Config(path=path, data=data, base_dir=path.parent)


def _parse_yaml(text: str, path: Path) -> Mapping[str, Any]:
    import yaml

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise UsageError(f"{path}{where}: {problem}; fix the YAML syntax") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UsageError(f"{path} must be a mapping of settings, got a {type(data).__name__}")
    return data


def validate_config(data: Mapping[str, Any], schema: Mapping[str, Any], *, origin: str) -> None:
    """Raise a UsageError naming the first problem (key and file) if ``data`` is invalid."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(
        validator.iter_errors(data), key=lambda e: (len(e.absolute_path), list(map(str, e.absolute_path)))
    )
    if errors:
        raise UsageError(_describe(errors[0], origin))


def _describe(error: Any, origin: str) -> str:
    path = ".".join(str(part) for part in error.absolute_path)
    if error.validator == "additionalProperties":
        known = sorted(error.schema.get("properties", {}))
        unknown = sorted(set(error.instance) - set(known))
        key = unknown[0]
        full = f"{path}.{key}" if path else key
        hint = difflib.get_close_matches(key, known, n=1)
        suggestion = f"did you mean '{hint[0]}'?" if hint else f"known keys: {', '.join(known)}"
        return f"unknown key '{full}' in {origin}; {suggestion}"
    where = f"'{path}'" if path else "the top level"
    if error.validator in ("type", "anyOf"):
        expected = _expected(error.schema)
        return f"{where} in {origin} must be {expected}, got {error.instance!r}"
    if error.validator == "enum":
        choices = ", ".join(map(str, error.validator_value))
        return f"{where} in {origin} must be one of {choices}; got {error.instance!r}"
    if error.validator == "required":
        return f"{where} in {origin}: {error.message}"
    return f"{where} in {origin}: {error.message}"


def _expected(schema: Mapping[str, Any]) -> str:
    names = {
        "string": "a string",
        "integer": "an integer",
        "number": "a number",
        "boolean": "true or false",
        "object": "a mapping",
        "array": "a list",
        "null": "empty",
    }
    if "anyOf" in schema:
        return " or ".join(_expected(s) for s in schema["anyOf"])
    types = schema.get("type", "object")
    if isinstance(types, list):
        return " or ".join(names.get(t, t) for t in types)
    return names.get(types, types)
