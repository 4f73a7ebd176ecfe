import io
import json
import os
import sys
import time

import pytest

from mlops_ci.errors import SettingError, UsageError
from mlops_ci.tracking.command import prepare_command, run_command

ENV = {"PATH": os.path.dirname(sys.executable) + os.pathsep + os.defpath}


def prepare(command, tmp_path, params=None, seed=7, env=None):
    return prepare_command(
        command, params=params or {}, seed=seed, project_dir=tmp_path, env=env if env is not None else ENV
    )


def test_placeholders_are_replaced_per_argument(tmp_path):
    cmd = prepare(
        "python train.py --C {C} --seed={seed} '{{literal}}' '$(not a shell)'", tmp_path, params={"C": 0.5}
    )
    assert cmd.argv[1:] == ("train.py", "--C", "0.5", "--seed=7", "{literal}", "$(not a shell)")


def test_child_environment(tmp_path):
    cmd = prepare(
        "python x.py", tmp_path, params={"C": 1}, env={**ENV, "MLOPS_CI_GITHUB_TOKEN": "secret", "HOME": "/h"}
    )
    assert "MLOPS_CI_GITHUB_TOKEN" not in cmd.env
    assert cmd.env["HOME"] == "/h"
    assert cmd.env["MLOPS_CI_SEED"] == "7" and cmd.env["PYTHONHASHSEED"] == "7"
    assert json.loads(cmd.env["MLOPS_CI_PARAMS"]) == {"C": 1}


@pytest.mark.parametrize(
    ("command", "message"),
    [
        (None, "no training command"),
        ("   ", "no training command"),
        ("python 'unclosed", "cannot be parsed .*check its quoting"),
        ("python t.py --C {C}", "uses {C} but there is no parameter 'C'"),
        ("no-such-program-xyz train.py", "'no-such-program-xyz' was not found on PATH"),
        ("./missing.sh", "'./missing.sh' does not exist"),
    ],
)
def test_bad_commands(tmp_path, command, message):
    with pytest.raises(SettingError, match=message) as raised:
        prepare(command, tmp_path)
    # The domain names the setting, never a flag or a config key: the step adds those.
    assert raised.value.setting in ("command", "params") and "--" not in str(raised.value)


def test_script_that_is_not_executable(tmp_path):
    (tmp_path / "train.sh").write_text("#!/bin/sh\n")
    with pytest.raises(UsageError, match="is not executable"):
        prepare("./train.sh", tmp_path)


def test_seed_must_fit_pythonhashseed(tmp_path):
    with pytest.raises(SettingError, match="the seed must be at most") as raised:
        prepare("python x.py", tmp_path, seed=2**33)
    assert raised.value.setting == "seed"


def test_output_is_streamed_and_logged(tmp_path):
    script = tmp_path / "t.py"
    script.write_text("import sys\nprint('hello')\nprint('oops', file=sys.stderr)\nsys.exit(3)\n")
    stream = io.BytesIO()
    log = tmp_path / "out" / "train.log"
    outcome = run_command(
        prepare("python t.py", tmp_path), log_path=log, timeout_s=60, on_abort=lambda: None, stream=stream
    )
    assert outcome.returncode == 3 and not outcome.succeeded
    assert "failed with exit code 3" in outcome.describe()
    assert log.read_bytes() == stream.getvalue()
    assert b"hello" in log.read_bytes() and b"oops" in log.read_bytes()


def test_timeout_stops_the_whole_process_group(tmp_path):
    marker = tmp_path / "grandchild-alive"
    (tmp_path / "grandchild.py").write_text(f"import time\ntime.sleep(3)\nopen({str(marker)!r}, 'w')\n")
    (tmp_path / "t.py").write_text(
        "import subprocess, sys, time\nsubprocess.Popen([sys.executable, 'grandchild.py'])\ntime.sleep(60)\n"
    )
    started = time.monotonic()
    outcome = run_command(
        prepare("python t.py", tmp_path),
        log_path=tmp_path / "log",
        timeout_s=1,
        on_abort=lambda: None,
        stream=io.BytesIO(),
    )
    assert outcome.timed_out and time.monotonic() - started < 15
    assert outcome.describe() == "timed out and was stopped"
    time.sleep(4)
    assert not marker.exists()


def test_data_is_a_placeholder_and_a_variable_only_when_there_is_data(tmp_path):

    data = tmp_path / "snapshot" / "train.csv"
    cmd = prepare_command(
        "python train.py --data {data}", params={}, seed=1, project_dir=tmp_path, env=ENV, data=data
    )
    assert cmd.argv[-1] == str(data) and cmd.env["MLOPS_CI_DATA"] == str(data)
    without = prepare("python train.py", tmp_path)
    assert "MLOPS_CI_DATA" not in without.env
    with pytest.raises(SettingError, match="uses {data} but there is no parameter 'data'"):
        prepare("python train.py --data {data}", tmp_path)
