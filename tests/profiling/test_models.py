"""The model under test: looked for in a fixed order (the model given, the packaged folder,
the registered model, else only an endpoint), and named from what is known about it."""

from __future__ import annotations

from mlops_ci.profiling.models import describe
from mlops_ci.profiling.request import ModelChoice, PackagedModel

SETTINGS = "model-settings.json"


def test_the_model_given_comes_first(make_request, finder_for, tmp_path, census_model_dir, other_lr_dir):
    packaged = PackagedModel(other_lr_dir / SETTINGS, name="census", version="7")
    request = make_request(ModelChoice(model=str(census_model_dir), packaged=packaged, endpoint="http://x"))
    found = finder_for(request).candidate(None, tmp_path)
    assert found.model_dir == census_model_dir and found.source == str(census_model_dir)


def test_then_the_packaged_folder_with_its_registry_name(
    make_request, finder_for, tmp_path, census_model_dir
):
    packaged = PackagedModel(census_model_dir / SETTINGS, uri="models:/census/7", name="census", version="7")
    request = make_request(ModelChoice(packaged=packaged, endpoint="http://x"))
    found = finder_for(request).candidate(None, tmp_path)
    assert found.model_dir == census_model_dir and found.source == f"{census_model_dir} (mlops-ci package)"
    assert (found.name, found.version, found.uri, found.label) == (
        "census",
        "7",
        "models:/census/7",
        "census v7",
    )
    assert found.registered


def test_a_packaged_folder_that_is_gone_is_passed_over(make_request, finder_for, tmp_path):
    gone = PackagedModel(tmp_path / "gone" / SETTINGS, name="census", version="7")
    request = make_request(ModelChoice(packaged=gone, endpoint="http://x"))
    found = finder_for(request).candidate(None, tmp_path)
    assert found.model_dir is None and found.source == "http://x" and not found.registered
    assert finder_for(make_request(ModelChoice(packaged=gone))).candidate(None, tmp_path) is None


def test_a_registry_uri_names_the_model(census_model_dir):
    found = describe(census_model_dir, source="s", uri="models:/census/3")
    assert (found.name, found.version, found.uri) == ("census", "3", "models:/census/3")
    plain = describe(census_model_dir, source="s")
    assert plain.settings.name and plain.label == (plain.name or "s")


def test_no_champion_uri_is_the_reason_without_asking_the_registry(
    make_request, finder_for, tmp_path, census_model_dir
):
    from mlops_ci.profiling.request import ChampionChoice

    request = make_request(ModelChoice(champion=ChampionChoice(None, "no champion: set model-name")))
    candidate = describe(census_model_dir, source="s")
    assert finder_for(request).champion(candidate, tmp_path) == (None, "no champion: set model-name")
