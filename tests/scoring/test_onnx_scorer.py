"""The ONNX scorer on a real converted census-income model: the same predictions as
scikit-learn, clearly named columns, bad values refused as usage errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from mlops_ci.scoring import ScoringInputError
from mlops_ci.scoring.onnx_scorer import OnnxScorer, output_columns
from mlops_ci.serving.settings import load_settings
from tests.model_fixtures import census_pipeline
from tests.scoring.conftest import FEATURES, census_rows


@pytest.fixture(scope="module")
def scorer(census_model_dir):
    settings = load_settings(census_model_dir)
    return OnnxScorer((census_model_dir / settings.model_file).read_bytes(), settings)


def test_outputs_are_named_prediction_and_probability_per_class(scorer):
    names = [c.name for c in output_columns(scorer.settings)]
    assert names == ["prediction", "probability_<=50K", "probability_>50K"]
    assert scorer.output_fields == [
        ("prediction", "string"),
        ("probability_<=50K", "float64"),
        ("probability_>50K", "float64"),
    ]
    assert scorer.input_columns == tuple(FEATURES)


def test_a_batch_scores_as_scikit_learn_does(scorer):
    frame = census_rows(500)
    batch = pa.RecordBatch.from_pandas(frame, preserve_index=False)
    scored = scorer.score_batch(batch)
    pipeline = census_pipeline()  # the fixture model's training, repeated: same data, same fit
    expected = pipeline.predict_proba(frame[FEATURES])
    assert (scored["prediction"] == pipeline.predict(frame[FEATURES])).all()
    assert np.abs(scored["probability_>50K"] - expected[:, 1]).max() < 1e-5
    assert scored["probability_<=50K"].dtype == np.float64
    # A pandas frame (what Spark hands over) scores identically.
    from_frame = scorer.score_frame(frame)
    assert all((from_frame[k] == scored[k]).all() for k in scored)


def test_integers_and_nulls_in_number_columns_are_accepted(scorer):
    frame = census_rows(4)
    frame["age"] = pd.array([30, None, 50, 60], dtype="Int64")
    table = pa.Table.from_pandas(frame, preserve_index=False)
    scored = scorer.score_batch(table.to_batches()[0])
    assert len(scored["prediction"]) == 4


def test_a_null_string_and_text_in_a_number_column_are_usage_errors(scorer):
    frame = census_rows(3)
    frame.loc[1, "sex"] = None
    with pytest.raises(ScoringInputError, match=r"column 'sex' has a missing \(null\) value.*row 1"):
        scorer.score_batch(pa.RecordBatch.from_pandas(frame, preserve_index=False))
    with pytest.raises(ScoringInputError, match=r"column 'sex' has a missing"):
        scorer.score_frame(frame)
    frame = census_rows(3).astype({"age": str})
    with pytest.raises(ScoringInputError, match=r"input 'age' takes FP32 numbers"):
        scorer.score_batch(pa.RecordBatch.from_pandas(frame, preserve_index=False))


def test_an_unloadable_model_is_a_usage_error(census_model_dir):
    from mlops_ci.errors import UsageError

    with pytest.raises(UsageError, match="ONNX Runtime cannot load the model"):
        OnnxScorer(b"not an onnx model", load_settings(census_model_dir))
