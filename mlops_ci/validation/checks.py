"""The checks and slices declared under ``validate:`` in ``mlops-ci.yaml``.

```yaml
validate:
  checks:
    - metric: accuracy             # a built-in metric, or module:function from the project
      rule: no-regression          # no-regression | non-inferiority | superiority | floor | ceiling
      margin: 0.0                  # comparisons: how much worse (or better) counts, in metric units
    - metric: roc-auc
      rule: non-inferiority
      margin: 0.01
      alpha: 0.05                  # this check's alpha (no-regression checks use the validation's alpha)
      blocking: true               # false: report a warning instead of blocking
    - metric: accuracy
      rule: floor                  # absolute: the candidate's interval must clear it
      threshold: 0.80
  slices:
    - column: sex                  # one segment per value
    - column: age
      bins: [0, 30, 45, 60, 100]   # edges, or a number of quantile bins
      checks: [accuracy no-regression]   # by name; default: every check
      blocking: false
```

The JSON Schema catches unknown keys and wrong types (with the key named); the rest —
which rule takes a margin, whether a metric exists — is checked here, also naming the key.
"""

from __future__ import annotations

import difflib
import importlib
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlops_ci.errors import SettingError

# The names of mlops_ci.stats' built-in metrics, kept here so that listing the CLI's options
# does not import numpy (a test checks that the two lists agree).
BUILTIN_METRICS = (
    "accuracy",
    "balanced-accuracy",
    "precision",
    "recall",
    "f1",
    "precision-macro",
    "recall-macro",
    "f1-macro",
    "roc-auc",
    "log-loss",
    "brier",
    "mae",
    "mse",
    "rmse",
    "r2",
    "mape",
)
RULES = ("no-regression", "non-inferiority", "superiority", "floor", "ceiling")
COMPARISON_RULES = RULES[:3]
INPUTS = ("labels", "scores", "values")

CHECK_SCHEMA: dict[str, Any] = {
    "type": "array",
    "description": "Statistical checks of the candidate (default: no-regression on the primary metric).",
    "items": {
        "type": "object",
        "additionalProperties": False,
        "required": ["metric"],
        "properties": {
            "name": {"type": "string", "description": "Name in reports (default: '<metric> <rule>')."},
            "metric": {
                "type": "string",
                "description": "A built-in metric (accuracy, balanced-accuracy, precision, recall, f1, "
                "precision-macro, recall-macro, f1-macro, roc-auc, log-loss, brier, mae, mse, rmse, r2, mape) "
                "or module:function importable from the project folder.",
            },
            "rule": {"enum": list(RULES), "default": "no-regression"},
            "margin": {"type": "number", "minimum": 0, "description": "Comparisons: margin in metric units."},
            "threshold": {"type": "number", "description": "floor/ceiling: the bound in metric units."},
            "alpha": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1},
            "blocking": {"type": "boolean", "default": True},
            "higher-is-better": {"type": "boolean", "description": "Custom metrics: the direction."},
            "input": {
                "enum": list(INPUTS),
                "description": "Custom metrics: what the function receives as predictions.",
            },
            "per-row": {
                "type": "boolean",
                "description": "Custom metrics: the function returns one value per row (the metric is "
                "their mean; fast) instead of one number.",
            },
        },
    },
}

SLICE_SCHEMA: dict[str, Any] = {
    "type": "array",
    "description": "Segments of the holdout on which the checks run again.",
    "items": {
        "type": "object",
        "additionalProperties": False,
        "required": ["column"],
        "properties": {
            "column": {"type": "string"},
            "bins": {
                "anyOf": [
                    {"type": "integer", "minimum": 2},
                    {"type": "array", "items": {"type": "number"}, "minItems": 2},
                ],
                "description": "Numeric columns: bin edges, or a number of quantile bins.",
            },
            "checks": {"type": "array", "items": {"type": "string"}, "description": "Check names to run."},
            "blocking": {"type": "boolean", "default": False},
            "min-rows": {"type": "integer", "minimum": 1},
        },
    },
}


@dataclass(frozen=True)
class CheckSpec:
    name: str
    metric: str
    rule: str
    margin: float | None
    threshold: float | None
    alpha: float | None
    blocking: bool
    custom: Any = None  # a stats.Metric for module:function metrics

    @property
    def comparison(self) -> bool:
        return self.rule in COMPARISON_RULES

    @property
    def evidence_of_harm(self) -> bool:
        """Fails only on evidence (no-regression): these form the Holm family."""
        return self.rule == "no-regression"


@dataclass(frozen=True)
class SliceSpec:
    column: str
    bins: int | tuple[float, ...] | None
    checks: tuple[str, ...]
    blocking: bool
    min_rows: int | None


def parse_checks(
    raw: Sequence[Any], *, primary_metric: str, project_dir: Path, task: str | None
) -> list[CheckSpec]:
    """Check specs from the config; the default policy when there are none."""
    from mlops_ci import stats

    if not raw:
        return [
            CheckSpec(
                f"{primary_metric} no-regression", primary_metric, "no-regression", 0.0, None, None, True
            )
        ]
    specs: list[CheckSpec] = []
    for i, item in enumerate(raw):
        where = f"checks[{i}]"
        if not isinstance(item, Mapping):
            raise SettingError(f"{where} must be a mapping with at least `metric`", setting=where)
        metric = str(item["metric"])
        rule = item.get("rule", "no-regression")
        custom = None
        if ":" in metric:
            custom = _load_custom(metric, item, where, project_dir, task)
        else:
            if "higher-is-better" in item or "input" in item or "per-row" in item:
                raise SettingError(
                    f"{where}: higher-is-better, input and per-row are for custom metrics (module:function)",
                    setting=where,
                )
            try:
                stats.get_metric(metric)
            except ValueError:
                hint = difflib.get_close_matches(metric, stats.metric_names(), n=1)
                suggestion = f"did you mean '{hint[0]}'?" if hint else "or give module:function for your own"
                raise SettingError(
                    f"{where}.metric '{metric}' is not a built-in metric; {suggestion}", setting=where
                ) from None
        margin, threshold = item.get("margin"), item.get("threshold")
        if rule in COMPARISON_RULES:
            if threshold is not None:
                raise SettingError(f"{where}: rule {rule} takes `margin`, not `threshold`", setting=where)
            if rule == "non-inferiority" and not margin:
                raise SettingError(
                    f"{where}: non-inferiority needs a positive `margin` (how much worse is still acceptable, "
                    "in metric units, e.g. 0.01)",
                    setting=where,
                )
            margin = float(margin or 0.0)
        else:
            if margin is not None:
                raise SettingError(f"{where}: rule {rule} takes `threshold`, not `margin`", setting=where)
            if threshold is None:
                raise SettingError(
                    f"{where}: rule {rule} needs `threshold` (the bound in metric units)", setting=where
                )
            threshold = float(threshold)
        specs.append(
            CheckSpec(
                name=str(item.get("name") or f"{metric} {rule}"),
                metric=metric,
                rule=rule,
                margin=margin,
                threshold=threshold,
                alpha=None if item.get("alpha") is None else float(item["alpha"]),
                blocking=bool(item.get("blocking", True)),
                custom=custom,
            )
        )
    names = [s.name for s in specs]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise SettingError(
            f"checks: two checks are named '{duplicates[0]}'; give one a `name`", setting="checks"
        )
    for i, spec in enumerate(specs):
        if spec.blocking and spec.evidence_of_harm and spec.alpha is not None:
            raise SettingError(
                f"checks[{i}].alpha: blocking no-regression checks share the family-wise alpha "
                "(Holm–Bonferroni across them); set the validation's alpha instead",
                setting=f"checks[{i}]",
            )
    return specs


def _load_custom(
    metric: str, item: Mapping[str, Any], where: str, project_dir: Path, task: str | None
) -> Any:
    from mlops_ci import stats

    module_name, _, function_name = metric.partition(":")
    if "higher-is-better" not in item:
        raise SettingError(
            f"{where}: custom metric {metric} needs `higher-is-better: true|false`", setting=where
        )
    path = str(project_dir)
    added = path not in sys.path
    if added:
        sys.path.insert(0, path)
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # noqa: BLE001 - any import failure of user code is a config problem
        raise SettingError(
            f"{where}.metric: cannot import {module_name} from {project_dir}: {type(exc).__name__}: {exc}",
            setting=where,
        ) from None
    finally:
        if added:
            sys.path.remove(path)
    function = getattr(module, function_name, None)
    if not callable(function):
        raise SettingError(f"{where}.metric: {module_name} has no function {function_name}", setting=where)
    default_input = "values" if task == "regression" else "labels"
    return stats.custom_metric(
        function,
        name=metric,
        higher_is_better=bool(item["higher-is-better"]),
        input=item.get("input", default_input),
        task="regression" if item.get("input", default_input) == "values" else "classification",
        per_row=bool(item.get("per-row", False)),
    )


def parse_slices(raw: Sequence[Any], checks: Sequence[CheckSpec]) -> list[SliceSpec]:
    names = {c.name for c in checks}
    specs = []
    for i, item in enumerate(raw or ()):
        where = f"slices[{i}]"
        if not isinstance(item, Mapping):
            raise SettingError(f"{where} must be a mapping with `column`", setting=where)
        wanted = tuple(item.get("checks") or ())
        unknown = [n for n in wanted if n not in names]
        if unknown:
            hint = difflib.get_close_matches(unknown[0], sorted(names), n=1)
            suggestion = f"did you mean '{hint[0]}'?" if hint else f"checks are: {', '.join(sorted(names))}"
            raise SettingError(f"{where}.checks names no check '{unknown[0]}'; {suggestion}", setting=where)
        bins = item.get("bins")
        if isinstance(bins, list):
            edges = tuple(float(b) for b in bins)
            if list(edges) != sorted(set(edges)):
                raise SettingError(
                    f"{where}.bins must be strictly increasing edges, got {bins}", setting=where
                )
            bins = edges
        specs.append(
            SliceSpec(
                column=str(item["column"]),
                bins=bins,
                checks=wanted,
                blocking=bool(item.get("blocking", False)),
                min_rows=item.get("min-rows"),
            )
        )
    return specs
