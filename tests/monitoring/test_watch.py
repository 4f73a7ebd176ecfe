"""watch(): one drift check as a domain call, on files, without a step or a flag; and the
rule that errors below the steps speak of data, not of command-line flags."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mlops_ci
from mlops_ci.monitoring.data import TimeColumnNeeded
from mlops_ci.monitoring.detect import ColumnMismatch, UnknownFeatures
from mlops_ci.monitoring.watch import DriftRequest, RetrainPlan, watch
from mlops_ci.platforms.base import Published, RetrainRequest
from mlops_ci.platforms.local import LocalPlatform

PIPELINE = RetrainRequest("pipeline", reason="")


class Dispatcher(LocalPlatform):
    """The laptop platform, recording the retraining it is asked to start."""

    def __init__(self, folder: Path) -> None:
        super().__init__({}, cwd=folder, out_dir=folder)
        self.started: list[RetrainRequest] = []

    def request_retraining(self, request: RetrainRequest) -> Published:
        self.started.append(request)
        return Published("created", done=True, url="https://host/pipelines/1", kind="dispatch")


def frame(rows: int, *, shift: float = 0.0, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"x": rng.normal(shift, 1, rows), "colour": rng.choice(["red", "blue"], rows)})


@pytest.fixture
def files(tmp_path):
    paths = {}
    for name, data in (
        ("reference", frame(800)),
        ("same", frame(600, seed=1)),
        ("shifted", frame(600, shift=1.0, seed=2)),
        ("few", frame(20, seed=3)),
    ):
        paths[name] = tmp_path / f"{name}.csv"
        data.to_csv(paths[name], index=False)
    return paths


def request(tmp_path: Path, files, current: str, **fields) -> DriftRequest:
    return DriftRequest(
        current=(files[current],),
        reference=(files["reference"],),
        out_dir=tmp_path / "drift",
        project_dir=tmp_path,
        predictions=False,
        **fields,
    )


def test_drift_is_found_reported_and_retraining_started(tmp_path, files):
    platform = Dispatcher(tmp_path)
    plan = RetrainPlan(RetrainRequest("pipeline", reason="", extra={"MODEL": "m"}))
    outcome = watch(request(tmp_path, files, "shifted", retrain=plan), platform=platform)
    assert outcome.report is not None and outcome.report.drifted_features == ["x"]
    assert (outcome.current_rows, outcome.reference_rows) == (600, 800)
    assert outcome.paths["markdown"].is_file() and outcome.dispatched.done
    (started,) = platform.started
    assert started.reason == "drift in x" and started.extra == {"MODEL": "m"}


def test_no_drift_starts_nothing_unless_always(tmp_path, files):
    platform = Dispatcher(tmp_path)
    calm = watch(request(tmp_path, files, "same", retrain=RetrainPlan(PIPELINE)), platform=platform)
    assert not calm.report.drifted and calm.dispatched is None and platform.started == []
    always = watch(
        request(tmp_path, files, "same", retrain=RetrainPlan(PIPELINE, always=True)), platform=platform
    )
    assert always.dispatched.done and platform.started[0].reason == "scheduled retraining; no drift found"


def test_too_few_rows_is_not_tested(tmp_path, files):
    platform = Dispatcher(tmp_path)
    outcome = watch(request(tmp_path, files, "few"), platform=platform)
    assert outcome.report is None and outcome.current_rows == 20 and outcome.dispatched is None
    assert not (tmp_path / "drift").exists()
    scheduled = watch(
        request(tmp_path, files, "few", retrain=RetrainPlan(PIPELINE, always=True)), platform=platform
    )
    assert scheduled.report is None and platform.started[0].reason == "scheduled retraining"


def test_what_it_needs_and_its_errors_in_domain_words(tmp_path, files):
    with pytest.raises(ValueError, match="`platform`"):
        watch(request(tmp_path, files, "same", retrain=RetrainPlan(PIPELINE)))
    with pytest.raises(ValueError, match="`store`"):
        watch(request(tmp_path, files, "same", model_uri="models:/m@champion"))
    with pytest.raises(TimeColumnNeeded, match=r"^current: a time window needs a time column .* same\.csv$"):
        watch(request(tmp_path, files, "same", window_days=7, current_label="current"))
    with pytest.raises(UnknownFeatures) as unknown:
        watch(request(tmp_path, files, "same", features=("x", "size")))
    assert unknown.value.missing == "not in the reference: size; not in the current data: size"
    other = tmp_path / "other.csv"
    frame(200).rename(columns={"colour": "color"}).to_csv(other, index=False)
    with pytest.raises(
        ColumnMismatch, match=r"^reference and current data have different columns \(.*color\)$"
    ):
        watch(
            DriftRequest(
                current=(other,), reference=(files["reference"],), out_dir=tmp_path, project_dir=tmp_path
            )
        )


def raised_texts(path: Path) -> list[str]:
    """The string parts of every exception raised in ``path``."""
    texts = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Raise) and node.exc is not None:
            texts += [
                part.value
                for part in ast.walk(node.exc)
                if isinstance(part, ast.Constant) and isinstance(part.value, str)
            ]
    return texts


@pytest.mark.parametrize("package", ["monitoring", "report"])
def test_domain_errors_name_no_command_line_flag(package):
    folder = Path(mlops_ci.__file__).parent / package
    flags = {
        f"{path.name}: {text}"
        for path in sorted(folder.glob("*.py"))
        for text in raised_texts(path)
        if text.startswith("--") or " --" in text
    }
    assert flags == set()
