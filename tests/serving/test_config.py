"""The server's limits are settings like the others: a flag, an MLOPS_CI_SERVE_* variable,
a documented default and a lower bound."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from mlops_ci.serving.config import (
    SETTINGS,
    ConfigError,
    ServerConfig,
    add_server_arguments,
    config_from_args,
)

LIMITS = {
    "header-timeout": 10.0,
    "write-timeout": 10.0,
    "write-buffer-bytes": 256 * 1024,
    "max-header-bytes": 64 * 1024,
    "max-headers": 100,
    "max-url-bytes": 8 * 1024,
    "max-connections": 1024,
    "max-buffered-bytes": 256 * 1024 * 1024,
}


def parse(argv: list[str], env: dict[str, str]) -> ServerConfig:
    parser = argparse.ArgumentParser()
    add_server_arguments(parser)
    return config_from_args(parser.parse_args(argv), env, model_dir=Path("/model"))


@pytest.mark.parametrize("name", list(LIMITS))
def test_limit_defaults_flags_and_environment(name):
    dest = name.replace("-", "_")
    setting = next(s for s in SETTINGS if s.name == name)
    assert setting.default == LIMITS[name] == getattr(ServerConfig(model_dir=Path("/m")), dest)
    env_var = "MLOPS_CI_SERVE_" + dest.upper()
    assert setting.env_var == env_var
    assert getattr(parse([], {}), dest) == LIMITS[name]
    assert getattr(parse([], {env_var: "5000"}), dest) == 5000
    assert getattr(parse([f"--{name}", "6000"], {env_var: "5000"}), dest) == 6000  # the flag wins


@pytest.mark.parametrize("name", list(LIMITS))
def test_limit_lower_bounds(name):
    setting = next(s for s in SETTINGS if s.name == name)
    assert getattr(parse([f"--{name}", str(setting.minimum)], {}), setting.dest) == setting.minimum
    below = setting.minimum - (0.05 if setting.kind is float else 1)
    with pytest.raises(ConfigError, match=f"--{name} must be at least"):
        parse([f"--{name}", str(below)], {})
