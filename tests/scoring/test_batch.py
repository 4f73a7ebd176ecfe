"""``score_batch`` end to end on a real converted model: outputs, lineage, and nothing
half-written when an input is bad."""

from __future__ import annotations

import hashlib
import json

import pandas as pd
import pytest

from mlops_ci.scoring import ScoringInputError
from mlops_ci.scoring.batch import ScoreRequest, score_batch
from tests.model_fixtures import census_pipeline
from tests.scoring.conftest import FEATURES, census_rows


def request(tmp_path, model, inputs, **extra):
    return ScoreRequest(
        model=str(model),
        inputs=tuple(inputs),
        output_dir=tmp_path / "out",
        cwd=tmp_path,
        keep_columns=("id",),
        workers=2,
        batch_rows=700,
        **extra,
    )


def snapshot(folder):
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def test_files_and_folders_score_into_mirrored_outputs_with_lineage(
    tmp_path, census_model_dir, census_inputs
):
    outcome = score_batch(request(tmp_path, census_model_dir, [census_inputs]), store=None)
    assert outcome.rows == 3500 and outcome.scorer == "onnx" and outcome.engine == "local"
    assert sorted(snapshot(tmp_path / "out")) == ["lineage.json", "more/rows2.parquet", "rows.csv"]
    csv = pd.read_csv(tmp_path / "out/rows.csv", keep_default_na=False)
    parquet = pd.read_parquet(tmp_path / "out/more/rows2.parquet")
    assert list(csv.columns) == ["id", "prediction", "probability_<=50K", "probability_>50K"]
    expected = census_rows(2000)
    assert csv["id"].tolist() == expected["id"].tolist()
    assert (csv["prediction"] == census_pipeline().predict(expected[FEATURES])).all()
    # The same rows in both files score the same, whatever the format.
    assert (parquet["prediction"].to_numpy() == csv["prediction"].head(1500).to_numpy()).all()

    lineage = json.loads((tmp_path / "out/lineage.json").read_text())
    assert lineage == json.loads(outcome.lineage_path.read_text())
    assert lineage["model"]["version"] == "7" and lineage["model"]["scorer"] == "onnx"
    onnx = (census_model_dir / "model.onnx").read_bytes()
    assert lineage["model"]["onnx_sha256"] == hashlib.sha256(onnx).hexdigest()
    sources = {item["path"]: item for item in lineage["inputs"]}
    for name, rows in (("rows.csv", 2000), ("more/rows2.parquet", 1500)):
        path = census_inputs / name
        assert sources[str(path)]["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
        assert sources[str(path)]["rows"] == rows
    outputs = {item["path"]: item for item in lineage["outputs"]}
    written = tmp_path / "out/rows.csv"
    assert outputs[str(written)]["sha256"] == hashlib.sha256(written.read_bytes()).hexdigest()
    assert lineage["rows"] == 3500 and lineage["engine"] == {"name": "local", "workers": 2, "batch_rows": 700}
    assert lineage["started_at"] <= lineage["finished_at"]


def test_a_bad_value_late_in_a_file_leaves_the_previous_outputs_untouched(tmp_path, census_model_dir):
    good = tmp_path / "in/rows.csv"
    good.parent.mkdir()
    census_rows(2000).to_csv(good, index=False)
    score_batch(request(tmp_path, census_model_dir, [good]), store=None)
    before = snapshot(tmp_path / "out")

    bad = census_rows(2000).astype({"age": object})
    bad.loc[1800, "age"] = "forty"
    bad.to_csv(good, index=False)
    with pytest.raises(ScoringInputError, match=r"cannot read .*rows.csv"):
        score_batch(request(tmp_path, census_model_dir, [good]), store=None)
    assert snapshot(tmp_path / "out") == before

    # A second input that fails in its second batch, after its first was written and the
    # first input scored completely.
    census_rows(2000).to_csv(good, index=False)
    late = census_rows(2000)
    late.loc[1200, "sex"] = None
    late.to_parquet(tmp_path / "in/late.parquet", row_group_size=500)
    with pytest.raises(ScoringInputError, match=r"late.parquet, rows 701-1400: column 'sex' has a missing"):
        score_batch(request(tmp_path, census_model_dir, [tmp_path / "in"]), store=None)
    assert snapshot(tmp_path / "out") == before


def test_a_missing_column_is_found_before_anything_is_written(tmp_path, census_model_dir):
    path = tmp_path / "rows.csv"
    census_rows(10).drop(columns=["sex"]).to_csv(path, index=False)
    with pytest.raises(ScoringInputError, match="lacks 1 column the model takes: sex"):
        score_batch(request(tmp_path, census_model_dir, [path]), store=None)
    assert not (tmp_path / "out").exists()


def test_a_model_without_onnx_scores_with_pyfunc_and_says_so(tmp_path, pyfunc_model, census_inputs):
    outcome = score_batch(
        request(tmp_path, pyfunc_model, [census_inputs / "rows.csv"], output_format="parquet"), store=None
    )
    assert outcome.scorer == "pyfunc" and outcome.prediction_columns == ("prediction",)
    out = pd.read_parquet(tmp_path / "out/rows.parquet")
    assert out["prediction"].tolist() == [">50K" if a >= 40 else "<=50K" for a in census_rows(2000)["age"]]
    lineage = json.loads(outcome.lineage_path.read_text())
    assert (
        lineage["model"]["scorer"] == "pyfunc"
        and "python_function" in lineage["model"]["onnx_fallback_reason"]
    )
