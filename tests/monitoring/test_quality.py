"""The labels join (both sides of each rule) and the request ids the request log carries."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from mlops_ci.errors import UsageError
from mlops_ci.monitoring.data import REQUEST_ID, load
from mlops_ci.monitoring.quality import (
    LABEL,
    DuplicateLabels,
    MissingColumn,
    QualityRequest,
    check_quality,
    join,
    read_labels,
)
from mlops_ci.serving.requestlog import RequestLog


def write_log(path, records):
    """A request log written by the serving container's writer."""
    log = RequestLog(str(path), model="m", version="1", max_bytes=10**9, keep=1)
    for request_id, x, prediction in records:
        rows = len(x)
        log.submit(
            "v2_infer",
            rows,
            0.001,
            {"x": np.asarray(x, dtype=np.float64)},
            {"label": np.asarray(prediction, dtype=np.int64)},
            request_id=request_id,
        )
    log.close()
    return path


def test_request_ids_are_logged_and_read_per_row(tmp_path):
    path = write_log(
        tmp_path / "requests.jsonl", [("a", [1.0], [1]), ("b", [2.0, 3.0], [0, 1]), (None, [4.0], [0])]
    )
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert [r.get("id") for r in records] == ["a", "b", None]
    frame = load([path], label="log", ids=True).frame
    assert frame[REQUEST_ID].tolist()[:3] == ["a", "b/0", "b/1"]
    assert frame[REQUEST_ID].isna().tolist() == [False, False, False, True]
    # Without ids=True (drift) the id is no column to compare.
    assert REQUEST_ID not in load([path], label="log").frame.columns


def labels_csv(tmp_path, rows, name="labels.csv"):
    path = tmp_path / name
    pd.DataFrame(rows, columns=["request_id", "label"]).to_csv(path, index=False)
    return path


def test_join_counts_matched_and_unmatched_on_both_sides(tmp_path):
    logged = pd.DataFrame({REQUEST_ID: ["1", "2", "3", None, "5", "5"], "prediction": [1, 0, 1, 1, 0, 1]})
    labels, missing = read_labels(
        [labels_csv(tmp_path, [(1, 1), (2, 1), (9, 0), (3, None)])],
        id_column="request_id",
        label_column="label",
    )
    assert missing == 1
    joined = join(logged, labels, missing_labels=missing)
    assert joined.frame[REQUEST_ID].tolist() == ["1", "2"]
    assert joined.frame[LABEL].tolist() == [1, 1]
    assert joined.counts() == {
        "logged": 6,
        "labelled": 3,
        "matched": 2,
        "without_id": 1,
        "unlabelled": 1,  # "3": its label row is empty
        "unmatched_labels": 1,  # 9
        "ambiguous": 2,  # "5" logged twice
        "missing_labels": 1,
    }


def test_a_join_where_everything_matches_counts_nothing_unmatched(tmp_path):
    logged = pd.DataFrame({REQUEST_ID: ["1", "2"], "prediction": [1, 0]})
    labels, _ = read_labels(
        [labels_csv(tmp_path, [(1, 1), (2, 0)])], id_column="request_id", label_column="label"
    )
    joined = join(logged, labels)
    assert joined.matched == 2
    assert joined.unlabelled == joined.unmatched_labels == joined.without_id == joined.ambiguous == 0


def test_duplicate_ids_in_one_labels_file_name_the_file(tmp_path):
    path = labels_csv(tmp_path, [(1, 1), (1, 0)], name="late.csv")
    with pytest.raises(DuplicateLabels, match=r"late\.csv labels 1 request id\(s\) more than once \(1\)"):
        read_labels([path], id_column="request_id", label_column="label")


def test_duplicate_ids_across_labels_files_name_both(tmp_path):
    first = labels_csv(tmp_path, [(1, 1)], name="monday.csv")
    second = labels_csv(tmp_path, [(1, 0)], name="tuesday.csv")
    with pytest.raises(
        DuplicateLabels, match=r"tuesday\.csv labels request id\(s\) monday\.csv labels already"
    ):
        read_labels([first, second], id_column="request_id", label_column="label")


def test_distinct_ids_across_files_are_one_set_of_labels(tmp_path):
    first = labels_csv(tmp_path, [(1, 1)], name="monday.csv")
    second = labels_csv(tmp_path, [(2, 0)], name="tuesday.csv")
    labels, _ = read_labels([first, second], id_column="request_id", label_column="label")
    assert labels[REQUEST_ID].tolist() == ["1", "2"]


def test_a_missing_column_names_the_file_and_the_column(tmp_path):
    path = labels_csv(tmp_path, [(1, 1)])
    with pytest.raises(MissingColumn, match=r"labels\.csv has no label column 'truth'") as caught:
        read_labels([path], id_column="request_id", label_column="truth")
    assert caught.value.role == "label"


def _request(tmp_path, log, labels, **kwargs):
    return QualityRequest(requests=(log,), labels=(labels,), **kwargs)


@pytest.mark.parametrize(("rows", "tested"), [(199, False), (200, True)])
def test_min_rows_below_skips_and_at_it_tests(tmp_path, rows, tested):
    log = write_log(tmp_path / "requests.jsonl", [(f"r{i}", [float(i)], [i % 2]) for i in range(rows)])
    labels = labels_csv(tmp_path, [(f"r{i}", i % 2) for i in range(rows)])
    outcome = check_quality(_request(tmp_path, log, labels, expected=0.9, min_rows=200))
    assert outcome.joined.matched == rows
    if tested:
        assert outcome.assessment is not None and outcome.skip_reason is None
        assert outcome.assessment.live == 1.0 and not outcome.assessment.decayed
    else:
        assert outcome.assessment is None
        assert outcome.skip_reason.startswith("only 199 labelled predictions joined")


def test_roc_auc_is_computed_on_the_logged_probabilities(tmp_path):
    rng = np.random.default_rng(5)
    truth = rng.integers(0, 2, 400)
    # Informative scores: the positive class scores higher on average.
    score = np.clip(0.3 + 0.4 * truth + rng.normal(0, 0.2, 400), 0, 1)
    log = RequestLog(str(tmp_path / "requests.jsonl"), model="m", version="1", max_bytes=10**9, keep=1)
    for i in range(400):
        log.submit(
            "v2_infer",
            1,
            0.001,
            {"x": np.array([1.0])},
            {"probabilities": np.array([[1 - score[i], score[i]]])},
            request_id=f"r{i}",
        )
    log.close()
    labels = labels_csv(tmp_path, [(f"r{i}", int(truth[i])) for i in range(400)])
    outcome = check_quality(
        _request(tmp_path, tmp_path / "requests.jsonl", labels, metric="roc-auc", expected=0.99)
    )
    a = outcome.assessment
    assert a.metric == "roc-auc" and 0.8 < a.live < 0.99 and a.decayed
    # The same log has no label output: accuracy cannot be computed on it.
    with pytest.raises(UsageError, match="has no prediction to compute accuracy on"):
        check_quality(_request(tmp_path, tmp_path / "requests.jsonl", labels, expected=0.9))
