"""The decision rules, checked by simulating many holdouts.

Each scenario draws S independent holdouts from a known population and runs the decision
once per holdout; the holdouts are one batched call (``y_true`` of shape (rows, S)), so the
bootstrap is vectorised across them. The calibration claims (false blocks of equal
models, interval coverage) are checked against the DESIGN rate with tests/calibration.py:
alpha/2 for no-regression (one tail of the two-sided interval), nominal coverage, with
enough holdouts that a doubled false-block rate or a 90 % interval labelled 95 % fails with
probability >= 99 % (each check prints its rate, bound and power). The other rates keep a
sampling tolerance at alpha (binomial quantile). The seeds are fixed, so the outcome is
deterministic.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import binom, norm

from mlops_ci import stats
from tests.calibration import check_coverage, check_rate

ALPHA = 0.05
SURE = 0.999  # the binomial quantile behind every tolerance


def max_count(trials: int, rate: float) -> int:
    """The largest count of events still consistent with a true rate of ``rate``."""
    return int(binom.ppf(SURE, trials, rate))


def min_count(trials: int, rate: float) -> int:
    return int(binom.ppf(1 - SURE, trials, rate))


def holdouts_labels(
    seed: int, rows: int, sims: int, acc_candidate: float, acc_baseline: float, discordant: float
):
    """Binary holdouts (24 % positives): each row falls in one of four cells of (candidate
    right?, baseline right?) with probabilities giving the two true accuracies and the
    share of rows where exactly one model is right."""
    rng = np.random.default_rng(seed)
    both = (acc_candidate + acc_baseline - discordant) / 2
    only_c, only_b = acc_candidate - both, acc_baseline - both
    cells = rng.choice(4, size=(rows, sims), p=[both, only_c, only_b, 1 - both - only_c - only_b])
    y = (rng.random((rows, sims)) < 0.24).astype(int)
    right_c, right_b = np.isin(cells, (0, 1)), np.isin(cells, (0, 2))
    return y, np.where(right_c, y, 1 - y), np.where(right_b, y, 1 - y)


def holdouts_regression(seed: int, rows: int, sims: int, candidate_scale: float = 1.0, rho: float = 0.7):
    """Regression holdouts: correlated normal errors (sd 5); the candidate's errors are
    ``candidate_scale`` times larger, so its true MAE is that many times the baseline's."""
    rng = np.random.default_rng(seed)
    y = rng.normal(50, 10, (rows, sims))
    e_base = rng.normal(0, 5, (rows, sims))
    e_cand = rho * e_base + np.sqrt(1 - rho**2) * rng.normal(0, 5, (rows, sims))
    return y, y + candidate_scale * e_cand, y + e_base


def rate(decisions: np.ndarray, value: str = "fail") -> tuple[int, float]:
    count = int(np.sum(decisions == value))
    return count, count / len(decisions)


@pytest.mark.parametrize("rows", [500, 5000])
def test_no_regression_blocks_equal_classifiers_at_alpha_over_2(rows):
    # 2000 holdouts: bound 3.65 %, power 0.998 against a doubled rate (5 %).
    sims = 2000
    y, cand, base = holdouts_labels(
        seed=rows, rows=rows, sims=sims, acc_candidate=0.85, acc_baseline=0.85, discordant=0.1
    )
    result = stats.compare(y, cand, base, "accuracy", rule="no-regression", alpha=ALPHA, random_state=1)
    blocked, share = rate(result.decision)
    check_rate(
        f"no-regression, equal accuracy, {rows} rows, false blocks",
        blocked,
        sims,
        design=ALPHA / 2,
        broken=ALPHA,
    )


def test_no_regression_catches_a_3_point_worse_classifier_on_5000_rows():
    sims = 300
    y, cand, base = holdouts_labels(
        seed=7, rows=5000, sims=sims, acc_candidate=0.82, acc_baseline=0.85, discordant=0.15
    )
    result = stats.compare(y, cand, base, "accuracy", rule="no-regression", alpha=ALPHA, random_state=1)
    blocked, share = rate(result.decision)
    print(f"no-regression, candidate 3 points worse, 5000 rows: blocked {share:.1%}")
    assert share >= 0.90


def _warned(result) -> np.ndarray:
    return np.array([any("holdout is too small" in w for w in notes) for notes in result.warnings])


@pytest.mark.parametrize(("rows", "margin"), [(5000, 0.02), (5000, 0.0163)])
def test_non_inferiority_blocks_equal_classifiers_at_most_alpha_when_the_holdout_is_large_enough(
    rows, margin
):
    """Where the tool's own MDE says the holdout resolves the margin (no warning), equal
    models are blocked at most alpha of the time. 0.0163 is about the median MDE itself, so some
    holdouts are warned about and some are not."""
    sims = 500
    y, cand, base = holdouts_labels(
        seed=11, rows=rows, sims=sims, acc_candidate=0.85, acc_baseline=0.85, discordant=0.1
    )
    result = stats.compare(
        y, cand, base, "accuracy", rule="non-inferiority", margin=margin, alpha=ALPHA, random_state=1
    )
    warned = _warned(result)
    assert (warned == (result.mde > margin)).all()
    large_enough = ~warned
    blocked, share = rate(result.decision[large_enough])
    print(
        f"non-inferiority margin {margin}, {rows} rows: large enough in {large_enough.mean():.0%}, "
        f"blocked {share:.1%} of those"
    )
    assert large_enough.sum() >= 200
    assert blocked <= max_count(int(large_enough.sum()), ALPHA)


def test_non_inferiority_on_a_small_holdout_warns_and_blames_the_holdout_not_the_model():
    sims = 400
    y, cand, base = holdouts_labels(
        seed=12, rows=500, sims=sims, acc_candidate=0.85, acc_baseline=0.85, discordant=0.1
    )
    result = stats.compare(
        y, cand, base, "accuracy", rule="non-inferiority", margin=0.01, alpha=ALPHA, random_state=1
    )
    assert _warned(result).all()
    blocked, share = rate(result.decision)
    print(f"non-inferiority margin 0.01, 500 rows: blocked {share:.1%} of equal models (burden of proof)")
    assert share > 0.5
    reasons = result.reason[result.decision == "fail"]
    blamed = np.array(
        ["too small to tell" in r and "does not mean the candidate is worse" in r for r in reasons]
    )
    # The rest had the whole interval below -margin: by chance, at most alpha/2 nominally.
    assert all("worse than the baseline by more than the margin" in r for r in reasons[~blamed])
    assert (~blamed).sum() <= max_count(sims, ALPHA)
    assert (result.n_required > 5000).all()


@pytest.mark.parametrize("rows", [500, 5000])
def test_no_regression_blocks_equal_regressors_at_alpha_over_2(rows):
    # 2000 holdouts: bound 3.65 %, power 0.998 against a doubled rate (5 %).
    sims = 2000
    y, cand, base = holdouts_regression(seed=rows + 1, rows=rows, sims=sims)
    result = stats.compare(y, cand, base, "mae", rule="no-regression", alpha=ALPHA, random_state=2)
    blocked, share = rate(result.decision)
    check_rate(
        f"no-regression, equal MAE, {rows} rows, false blocks", blocked, sims, design=ALPHA / 2, broken=ALPHA
    )


def test_no_regression_catches_a_worse_regressor_on_5000_rows():
    sims = 400
    # MAE 5 % worse (0.2 on about 4.0) with errors only moderately correlated.
    y, cand, base = holdouts_regression(seed=3, rows=5000, sims=sims, candidate_scale=1.05, rho=0.5)
    result = stats.compare(y, cand, base, "mae", rule="no-regression", alpha=ALPHA, random_state=2)
    blocked, share = rate(result.decision)
    print(f"no-regression, MAE 5% worse, 5000 rows: blocked {share:.1%}")
    assert share >= 0.90


def test_non_inferiority_for_a_regression_metric():
    sims = 400
    y, cand, base = holdouts_regression(seed=4, rows=5000, sims=sims)
    large = stats.compare(
        y, cand, base, "mae", rule="non-inferiority", margin=0.25, alpha=ALPHA, random_state=2
    )
    enough = ~_warned(large)
    blocked, share = rate(large.decision[enough])
    print(
        f"non-inferiority MAE margin 0.25, 5000 rows: large enough in {enough.mean():.0%}, blocked {share:.1%}"
    )
    assert enough.sum() >= 300 and blocked <= max_count(int(enough.sum()), ALPHA)
    y, cand, base = holdouts_regression(seed=5, rows=500, sims=sims)
    small = stats.compare(
        y, cand, base, "mae", rule="non-inferiority", margin=0.25, alpha=ALPHA, random_state=2
    )
    assert _warned(small).all()
    assert all("too small to tell" in r for r in small.reason[small.decision == "fail"])


# 1000 holdouts per coverage check: bound >= 92.7 %, power 0.998 against a 90 % interval
# labelled 95 %.
COVERAGE_SIMS = 1000


def _coverage(label: str, result, truth: float, sims: int) -> None:
    low, high = result.confidence_interval
    covered = int(np.sum((low <= truth) & (truth <= high)))
    check_coverage(f"95% interval, {label}", covered, sims, nominal=0.95, broken=0.90)


def test_interval_coverage_accuracy_difference_is_near_nominal():
    sims = COVERAGE_SIMS
    y, cand, base = holdouts_labels(
        seed=13, rows=500, sims=sims, acc_candidate=0.83, acc_baseline=0.85, discordant=0.12
    )
    result = stats.paired_bootstrap(y, cand, base, "accuracy", random_state=3)
    _coverage("accuracy difference", result, -0.02, sims)


def test_interval_coverage_mae_difference_is_near_nominal():
    sims = COVERAGE_SIMS
    y, cand, base = holdouts_regression(seed=14, rows=500, sims=sims, candidate_scale=1.1)
    truth = 5 * np.sqrt(2 / np.pi) * 0.1  # E|N(0, 5)| times the extra 10 %
    result = stats.paired_bootstrap(y, cand, base, "mae", random_state=3)
    _coverage("MAE difference", result, truth, sims)


def test_interval_coverage_roc_auc_difference_is_near_nominal():
    """Scores = 1.2 * label + noise; the candidate's noise is 1.25 times the baseline's, so
    the true AUCs are Phi(1.2 / (sd * sqrt 2))."""
    sims, rows = COVERAGE_SIMS, 200
    rng = np.random.default_rng(15)
    y = (rng.random((rows, sims)) < 0.4).astype(int)
    noise = rng.normal(0, 1, (rows, sims))
    base = 1.2 * y + noise
    cand = 1.2 * y + 1.25 * (0.6 * noise + 0.8 * rng.normal(0, 1, (rows, sims)))
    truth = norm.cdf(1.2 / (1.25 * np.sqrt(2))) - norm.cdf(1.2 / np.sqrt(2))
    result = stats.paired_bootstrap(y, cand, base, "roc-auc", n_resamples=1000, random_state=3)
    _coverage("ROC AUC difference", result, truth, sims)
