"""Which server a profile loads and whether it compares with a champion, decided before
anything is measured; what cannot work is refused in profiling's words."""

from __future__ import annotations

from dataclasses import replace

import pytest

from mlops_ci.errors import ExitCode
from mlops_ci.profiling.errors import EngineUnavailable, NoRequestBody, NothingToProfile
from mlops_ci.profiling.loadgen import AsyncioGenerator
from mlops_ci.profiling.models import ModelUnderTest
from mlops_ci.profiling.plan import choose_champion, make_plan
from mlops_ci.profiling.request import ChampionChoice, ComparisonSettings, ModelChoice

ENDPOINT = "http://127.0.0.1:9"


def plan_for(make_request, finder_for, tmp_path, models, **server):
    request = make_request(models, **server)
    return make_plan(request, finder_for(request), tmp_path)


def test_a_model_is_served_by_mlops_ci_serve_unless_told_otherwise(
    make_request, finder_for, tmp_path, census_model_dir
):
    plan = plan_for(make_request, finder_for, tmp_path, ModelChoice(model=str(census_model_dir)))
    assert plan.server == "serve" and plan.image is None and not plan.notes
    assert plan.candidate.model_dir == census_model_dir and isinstance(plan.generator, AsyncioGenerator)
    none = plan_for(make_request, finder_for, tmp_path, ModelChoice(model=str(census_model_dir)), mode="none")
    assert none.server == "none"


def test_an_image_without_an_engine_falls_back_to_serve_with_a_note(
    make_request, finder_for, tmp_path, census_model_dir
):
    models = ModelChoice(model=str(census_model_dir), image="localhost/census:1")
    plan = plan_for(make_request, finder_for, tmp_path, models)
    assert plan.server == "serve" and plan.image is None
    assert (
        len(plan.notes) == 1 and "image localhost/census:1 not run (no Docker engine answers" in plan.notes[0]
    )
    with pytest.raises(EngineUnavailable) as raised:
        plan_for(make_request, finder_for, tmp_path, models, mode="container", engine="docker")
    assert raised.value.exit_code == ExitCode.EXTERNAL and "no Docker engine answers" in raised.value.why
    assert "--" not in str(raised.value)


def test_an_endpoint_needs_a_model_or_a_request_body(make_request, finder_for, tmp_path, census_model_dir):
    with_model = plan_for(
        make_request, finder_for, tmp_path, ModelChoice(model=str(census_model_dir), endpoint=ENDPOINT)
    )
    assert with_model.server == "endpoint" and with_model.endpoint == ENDPOINT
    with pytest.raises(NoRequestBody) as raised:
        plan_for(make_request, finder_for, tmp_path, ModelChoice(endpoint=ENDPOINT))
    assert raised.value.endpoint == ENDPOINT and raised.value.exit_code == ExitCode.USAGE
    assert "--" not in str(raised.value)
    only = plan_for(make_request, finder_for, tmp_path, ModelChoice(endpoint=ENDPOINT), body=b"{}")
    assert only.server == "endpoint" and only.candidate.model_dir is None


def test_nothing_to_profile_names_the_out_dir_not_a_flag(make_request, finder_for, tmp_path):
    with pytest.raises(NothingToProfile) as raised:
        plan_for(make_request, finder_for, tmp_path, ModelChoice())
    assert raised.value.out_dir == tmp_path / ".mlops-ci" and raised.value.exit_code == ExitCode.USAGE
    assert "run `mlops-ci package` first" in str(raised.value) and "--" not in str(raised.value)


def test_the_latency_is_compared_only_with_a_policy_a_model_and_a_champion(
    make_request, finder_for, tmp_path, census_model_dir, other_lr_dir
):
    candidate = ModelUnderTest(census_model_dir, source="here")
    champion = ChampionChoice(str(other_lr_dir), "--champion")
    request = make_request(ModelChoice(champion=champion))
    found, note = choose_champion(request, finder_for(request), candidate, tmp_path)
    assert (
        found is not None and found.model_dir == other_lr_dir and note == f"Champion model: {other_lr_dir}."
    )
    off = replace(request, comparison=ComparisonSettings(policy="off"))
    assert choose_champion(off, finder_for(off), candidate, tmp_path) == (
        None,
        "not compared (latency-regression: off)",
    )
    endpoint_only = ModelUnderTest(None, source=ENDPOINT)
    found, note = choose_champion(request, finder_for(request), endpoint_only, tmp_path)
    assert found is None and "only an endpoint" in note
    nobody = make_request(ModelChoice(champion=ChampionChoice(None, "validate says this is the first model")))
    assert choose_champion(nobody, finder_for(nobody), candidate, tmp_path) == (
        None,
        "validate says this is the first model",
    )
