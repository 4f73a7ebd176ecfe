"""Domain errors about a setting, reworded to say where the user gives it: the domain raises
``SettingError`` naming the setting (``checks[0].metric``, ``holdout``); the step knows its
options, so it can name the config key and the flag."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

from mlops_ci.errors import SettingError, UsageError
from mlops_ci.steps.base import Step

_ROOT = re.compile(r"[A-Za-z0-9_-]+")


def where_to_set(step: Step, error: SettingError) -> UsageError:
    """``error`` with a hint that names the setting as the user gives it: ``; set
    validate.holdout in mlops-ci.yaml or pass --holdout`` (the config key alone for a
    setting only the config file can hold, such as ``validate.checks``)."""
    match = _ROOT.match(error.setting)
    root = match.group(0) if match else error.setting
    own = {option.name: option for option in step.options}
    option = own.get(root) or {option.name: option for option in step.top_level_options}.get(root)
    if option is None:
        return UsageError(str(error))
    key = f"{step.name}.{root}" if root in own else root
    hint = f"set {key} in mlops-ci.yaml" + (f" or pass {option.flag_name}" if option.cli else "")
    return UsageError(f"{error}; {hint}")


@contextmanager
def settings_of(step: Step) -> Iterator[None]:
    """Reword every ``SettingError`` raised inside with ``where_to_set``."""
    try:
        yield
    except SettingError as exc:
        raise where_to_set(step, exc) from None
