"""What the step tests read back from MLflow and the out-dir."""

from __future__ import annotations

import json
import re
from pathlib import Path

from tests.helpers import run_cli


def runs_of(client, experiment: str) -> list:
    exp = client.get_experiment_by_name(experiment)
    return client.search_runs([exp.experiment_id]) if exp else []


def outputs(project: Path, step: str) -> dict:
    return json.loads((project / ".mlops-ci" / f"{step}.json").read_text())["outputs"]


def assert_bad_input(
    project: Path,
    env: dict[str, str],
    client,
    experiment: str,
    args: list[str],
    config: str | None,
    message: str,
) -> None:
    """A bad input exits 2 with one line matching ``message`` and creates nothing."""
    if config is not None:
        (project / "mlops-ci.yaml").write_text(config)
    result = run_cli(args, cwd=project, env=env)
    assert result.returncode == 2, result.stdout + result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert re.search(message, result.stderr), result.stderr
    assert not (project / ".mlops-ci" / "train.json").exists()
    assert runs_of(client, experiment) == []
    assert client.search_registered_models(f"name = '{experiment}'") == []
