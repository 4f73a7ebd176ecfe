"""Parsing the declared checks: defaults, errors that name the key, the schema, custom metrics."""

from __future__ import annotations

import numpy as np
import pytest

from mlops_ci import stats
from mlops_ci.config import load_config
from mlops_ci.errors import SettingError, UsageError
from mlops_ci.runner import full_config_schema
from mlops_ci.validation import checks as checks_mod
from tests.validation.helpers import parse


def test_builtin_metric_names_match_the_stats_library():
    assert stats.metric_names() == checks_mod.BUILTIN_METRICS


def test_default_policy_is_no_regression_on_the_primary_metric():
    (spec,) = parse([])
    assert (spec.metric, spec.rule, spec.margin, spec.blocking) == ("accuracy", "no-regression", 0.0, True)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (
            [{"metric": "acuracy"}],
            r"^checks\[0\].metric 'acuracy' is not a built-in metric; did you mean 'accuracy'\?",
        ),
        ([{"metric": "roc-auc", "rule": "non-inferiority"}], r"non-inferiority needs a positive `margin`"),
        ([{"metric": "accuracy", "rule": "floor"}], r"rule floor needs `threshold`"),
        (
            [{"metric": "accuracy", "rule": "floor", "margin": 0.1, "threshold": 0.8}],
            r"takes `threshold`, not `margin`",
        ),
        ([{"metric": "accuracy", "threshold": 0.8}], r"rule no-regression takes `margin`, not `threshold`"),
        ([{"metric": "accuracy"}, {"metric": "accuracy"}], r"two checks are named 'accuracy no-regression'"),
        (
            [{"metric": "accuracy", "alpha": 0.01}],
            r"blocking no-regression checks share the family-wise alpha",
        ),
        (["accuracy"], r"^checks\[0\] must be a mapping"),
        ([{"metric": "nosuchmodule:f", "higher-is-better": True}], r"cannot import nosuchmodule"),
        ([{"metric": "m:f"}], r"custom metric m:f needs `higher-is-better"),
    ],
)
def test_check_configuration_errors_name_the_key(raw, message):
    with pytest.raises(SettingError, match=message) as raised:
        parse(raw)
    # The domain names the setting; the step says it lives under validate: in mlops-ci.yaml.
    assert raised.value.setting.startswith("checks") and "validate." not in str(raised.value)


def test_schema_rejects_unknown_keys_in_checks(tmp_path):
    path = tmp_path / "mlops-ci.yaml"
    path.write_text("validate:\n  checks:\n    - metric: accuracy\n      margn: 0.01\n")
    with pytest.raises(
        UsageError, match=r"unknown key 'validate.checks.0.margn' in .*; did you mean 'margin'\?"
    ):
        load_config(None, cwd=tmp_path, schema=full_config_schema())
    path.write_text("validate:\n  checks:\n    - metric: accuracy\n      rule: worse\n")
    with pytest.raises(UsageError, match=r"'validate.checks.0.rule' in .* must be one of no-regression"):
        load_config(None, cwd=tmp_path, schema=full_config_schema())
    path.write_text("validate:\n  slices:\n    - column: age\n      bins: 1\n")
    with pytest.raises(UsageError, match=r"validate.slices.0.bins"):
        load_config(None, cwd=tmp_path, schema=full_config_schema())


def test_the_example_config_is_valid():
    from tests.helpers import EXAMPLE

    config = load_config(None, cwd=EXAMPLE, schema=full_config_schema())
    specs = parse(config.section("validate")["checks"])
    assert [s.rule for s in specs] == [
        "no-regression",
        "no-regression",
        "non-inferiority",
        "floor",
        "no-regression",
    ]
    slices = checks_mod.parse_slices(config.section("validate")["slices"], specs)
    assert slices[1].bins == (17.0, 30.0, 45.0, 60.0, 91.0)


def test_custom_metric_from_the_project(tmp_path):
    (tmp_path / "business.py").write_text(
        "import numpy as np\n"
        "def cost(y_true, y_pred):\n"
        "    return np.where((y_pred == 'no') & (y_true == 'yes'), 5.0, (y_pred != y_true) * 1.0)\n"
    )
    (spec,) = checks_mod.parse_checks(
        [{"metric": "business:cost", "higher-is-better": False, "per-row": True}],
        primary_metric="accuracy",
        project_dir=tmp_path,
        task="classification",
    )
    y = np.array(["yes", "no", "yes", "no"])
    assert spec.custom(y, np.array(["no", "no", "yes", "yes"])) == pytest.approx((5 + 0 + 0 + 1) / 4)
    assert spec.custom.higher_is_better is False
