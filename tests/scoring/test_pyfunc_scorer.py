"""The pyfunc fallback scorer on a real pyfunc-only MLflow model."""

from __future__ import annotations

import pyarrow as pa
import pytest

from mlops_ci.scoring import ScoringInputError
from mlops_ci.scoring.pyfunc_scorer import PyfuncScorer
from tests.scoring.conftest import FEATURES, census_rows


def test_predictions_come_from_the_model_and_columns_from_its_signature(pyfunc_model):
    scorer = PyfuncScorer(str(pyfunc_model))
    assert scorer.input_columns == tuple(FEATURES)
    assert pa.types.is_string(scorer.read_types()["sex"]) and pa.types.is_integer(scorer.read_types()["age"])
    frame = census_rows(50)
    scored = scorer.score_batch(pa.RecordBatch.from_pandas(frame, preserve_index=False))
    assert list(scored) == ["prediction"]
    assert list(scored["prediction"]) == [">50K" if a >= 40 else "<=50K" for a in frame["age"]]


def test_rows_the_signature_refuses_are_a_usage_error(pyfunc_model):
    scorer = PyfuncScorer(str(pyfunc_model))
    frame = census_rows(3).drop(columns=["sex"])
    with pytest.raises(ScoringInputError, match="the model refused the rows"):
        scorer.score_frame(frame)
