"""The profile in a few figures (what deploy reads and what is stored with the version) and one line."""

from __future__ import annotations

from mlops_ci.profiling.recommend import Objective, recommend
from mlops_ci.profiling.report import ProfileReport
from mlops_ci.profiling.summary import RECOMMENDATION_KEYS, figures, number, summary_line
from mlops_ci.profiling.sweep import Sweep
from tests.profiling.samples import point


def test_numbers_keep_the_digits_that_matter():
    assert [number(v) for v in (None, 3.0, 1234.56, 45.67, 4.567, 0.04567)] == [
        "",
        "3",
        "1235",
        "45.7",
        "4.57",
        "0.0457",
    ]


def test_without_a_recommendation_its_figures_are_there_and_empty():
    report = ProfileReport(model={"name": "census"}, objective=Objective(slo_p99_ms=100, target_rps=None))
    out = figures(report, "none")
    assert all(out[key] == "" for key in RECOMMENDATION_KEYS)
    assert out["server"] == "none" and out["model_name"] == "census" and out["slo_p99_ms"] == "100"
    assert "slo_met" not in out and "target_rps" not in out
    assert summary_line(report, "none", ["x"]) == "x failed; census: "


def test_a_recommendation_gives_the_figures_and_the_line():
    sweep = Sweep("container", "wrk")
    sweep.points = [point(1.0, 4, 2000, 6)]
    objective = Objective(slo_p99_ms=50, target_rps=3000)
    report = ProfileReport(
        model={"name": "census", "version": "2"},
        objective=objective,
        sweep=sweep,
        recommendation=recommend(sweep, objective),
    )
    out = figures(report, "container")
    assert (out["replicas"], out["throughput_rps"], out["p99_ms"], out["slo_met"]) == (
        "3",
        "2000",
        "6",
        "true",
    )
    assert out["load_generator"] == "wrk" and out["target_rps"] == "3000"
    line = summary_line(report, "container", [])
    assert line.startswith(
        "census v2: 2,000 req/s per replica at p99 6.00 ms (1 CPU, container); recommend CPU"
    )
    assert "3 replica(s) for 3,000 req/s at p99 <= 50 ms" in line
