"""A domain error about a setting is reworded by the step to say where the user gives it."""

from __future__ import annotations

import pytest

from mlops_ci.errors import SettingError, UsageError
from mlops_ci.steps import register, train, validate
from mlops_ci.steps.setting_errors import settings_of, where_to_set


@pytest.mark.parametrize(
    ("step", "setting", "hint"),
    [
        (train.STEP, "data", "; set train.data in mlops-ci.yaml or pass --data"),
        (train.STEP, "params", "; set train.params in mlops-ci.yaml or pass --param"),
        (validate.STEP, "holdout", "; set holdout in mlops-ci.yaml or pass --holdout"),
        (validate.STEP, "checks[0].metric", "; set validate.checks in mlops-ci.yaml"),
        (register.STEP, "model-name", "; set model-name in mlops-ci.yaml or pass --model-name"),
    ],
)
def test_the_hint_names_the_config_key_and_the_flag(step, setting, hint):
    reworded = where_to_set(step, SettingError("the problem", setting=setting))
    assert type(reworded) is UsageError and str(reworded) == "the problem" + hint


def test_a_setting_the_step_does_not_have_keeps_the_domain_words():
    assert str(where_to_set(train.STEP, SettingError("the problem", setting="holdout"))) == "the problem"


def test_only_setting_errors_are_reworded():
    with (
        pytest.raises(UsageError, match="^data path x does not exist; set train.data in"),
        settings_of(train.STEP),
    ):
        raise SettingError("data path x does not exist", setting="data")
    with pytest.raises(UsageError, match="^other$"), settings_of(train.STEP):
        raise UsageError("other")
