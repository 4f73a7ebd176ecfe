"""The training call checks every input before it touches MLflow, and says what is wrong in
domain words (the step adds the flag)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mlops_ci.errors import SettingError
from mlops_ci.platforms import RunContext
from mlops_ci.tracking.store import TrackingStore
from mlops_ci.tracking.training import TrainOutcome, TrainRequest, train


def request(project: Path, **changes) -> TrainRequest:
    fields = dict(
        command="python train.py",
        params={},
        data=(),
        seed=42,
        code=(),
        project_dir=project,
        log_dir=project / ".mlops-ci",
        # Nothing listens here: a check that reached MLflow would fail differently.
        store=TrackingStore(uri="http://127.0.0.1:9", artifact_root=None, retry_timeout_s=0),
        experiment="e",
        run_context=RunContext(platform="local"),
        env={"PATH": os.environ["PATH"]},
    )
    return TrainRequest(**{**fields, **changes})


@pytest.mark.parametrize(
    ("changes", "setting", "message"),
    [
        ({"code": ("*.nothing",)}, "code", r"^code patterns \*.nothing match no file in "),
        ({"data": (Path("missing.csv"),)}, "data", r"^data path .*missing.csv does not exist$"),
        ({"command": None}, "command", r"^no training command$"),
        ({"command": "python train.py {C}"}, "params", r"no parameter 'C'"),
    ],
)
def test_bad_inputs_name_the_setting_not_a_flag(tmp_path, changes, setting, message):
    (tmp_path / "train.py").write_text("print('hi')\n")
    if "data" in changes:
        changes = {"data": tuple(tmp_path / p for p in changes["data"])}
    with pytest.raises(SettingError, match=message) as raised:
        train(request(tmp_path, **changes))
    assert raised.value.setting == setting
    assert "--" not in str(raised.value) and "train." not in str(raised.value)


def test_the_outcome_says_whether_there_is_a_model():
    common = dict(run_id="r", experiment_id="1", fingerprint="f", tracking_uri="u")
    assert TrainOutcome("reused", **common).reused and TrainOutcome("reused", **common).has_model
    assert TrainOutcome("trained", **common).has_model and not TrainOutcome("trained", **common).reused
    assert not TrainOutcome("command-failed", failure="failed with exit code 1", **common).has_model
    assert not TrainOutcome("no-model", **common).has_model
