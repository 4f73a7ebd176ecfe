"""Statistics for deciding whether a challenger model may replace the champion.

A public API in the style of ``scipy.stats``: functions take the data first and
keyword-only options after, take an explicit seed (``random_state``), and return frozen
result objects with ``statistic``, ``pvalue``, ``confidence_interval`` (a ``(low, high)``
named tuple), the decision and its reason. Argument errors are ``ValueError``/``TypeError``
naming the parameter. Degenerate data (one class, constant predictions, too few rows) gives
a ``"skip"`` decision with a reason, never a crash or a NaN verdict.

>>> from mlops_ci import stats
>>> result = stats.compare(y, candidate_labels, champion_labels, "accuracy",
...                        rule="no-regression", alpha=0.05, random_state=0)
>>> result.decision, result.confidence_interval, result.reason

Contents:

* ``paired_bootstrap`` / ``bootstrap_metric`` — percentile or BCa intervals, vectorised
  (resamples are count matrices; label metrics resample cell counts exactly), seeded;
  ``bootstrap_models`` for several metrics and models on shared resamples.
* ``decide`` / ``compare`` / ``check_threshold`` — the decision rules no-regression,
  non-inferiority, superiority, floor and ceiling (see ``decision``).
* ``holm_bonferroni`` — family-wise error over several checks.
* ``minimum_detectable_difference`` / ``required_sample_size`` — what a holdout can resolve.
* ``mcnemar`` (exact), ``delong``, ``wilcoxon_signed_rank``, ``paired_t`` — classical
  paired tests.
* ``get_metric`` / ``metric_names`` / ``custom_metric`` — the vectorised metrics.
"""

from mlops_ci.stats._results import ConfidenceInterval, HolmResult, TestResult
from mlops_ci.stats.bootstrap import (
    BootstrapResult,
    ModelBootstrap,
    bootstrap_metric,
    bootstrap_models,
    paired_bootstrap,
)
from mlops_ci.stats.decision import (
    ABSOLUTE_RULES,
    COMPARISON_RULES,
    RULES,
    RuleResult,
    check_threshold,
    compare,
    decide,
    holm_bonferroni,
)
from mlops_ci.stats.metrics import Metric, custom_metric, get_metric, metric_names
from mlops_ci.stats.paired import delong, mcnemar, paired_t, per_row_losses, wilcoxon_signed_rank
from mlops_ci.stats.power import minimum_detectable_difference, required_sample_size

__all__ = [
    "ABSOLUTE_RULES",
    "COMPARISON_RULES",
    "RULES",
    "BootstrapResult",
    "ModelBootstrap",
    "ConfidenceInterval",
    "HolmResult",
    "Metric",
    "RuleResult",
    "TestResult",
    "bootstrap_metric",
    "bootstrap_models",
    "check_threshold",
    "compare",
    "custom_metric",
    "decide",
    "delong",
    "get_metric",
    "holm_bonferroni",
    "mcnemar",
    "metric_names",
    "minimum_detectable_difference",
    "paired_bootstrap",
    "paired_t",
    "per_row_losses",
    "required_sample_size",
    "wilcoxon_signed_rank",
]
