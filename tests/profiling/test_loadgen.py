"""Both load generators against a real server subprocess."""

from __future__ import annotations

import subprocess

import pytest

from mlops_ci.profiling.errors import GeneratorUnavailable
from mlops_ci.profiling.loadgen import AsyncioGenerator, WrkGenerator, find_generator
from mlops_ci.profiling.payload import Request, v2_request
from tests.helpers import free_port, require_tool, wait_http
from tests.model_fixtures import serving_command


@pytest.fixture(scope="module")
def census_server(census_model_dir, tmp_path_factory):
    port = free_port()
    log = tmp_path_factory.mktemp("server") / "server.log"
    with log.open("wb") as handle:
        process = subprocess.Popen(
            serving_command(census_model_dir, port), stdout=handle, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(url + "/v2/health/ready", timeout_s=60, process=process)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def generator_named(name: str):
    """Both generators always appear as tests: wrk skips on a machine without it and fails
    under CI (scripts/setup/40-wrk.sh installs it)."""
    if name == "python":
        return AsyncioGenerator()
    require_tool("wrk", install="scripts/setup/40-wrk.sh installs it (apt-get install wrk)")
    found = find_generator("wrk")
    assert isinstance(found, WrkGenerator)
    return found


@pytest.mark.parametrize("name", ["python", "wrk"])
def test_generators_measure_a_real_server_and_count_errors(name, census_server, census_model_dir):
    from mlops_ci.serving.settings import load_settings

    generator = generator_named(name)

    request = v2_request(load_settings(census_model_dir))
    good = generator.run(census_server, request, concurrency=4, duration_s=1.0)
    assert good.requests > 0 and good.errors == 0 and good.rps > 0
    assert 0 < good.p50_ms <= good.p99_ms <= good.max_ms
    # A request the server refuses (unknown model: 404) is an error, not throughput.
    wrong = generator.run(
        census_server, Request("POST", "/v2/models/nope/infer", request.body), concurrency=2, duration_s=1.0
    )
    assert wrong.requests > 0 and wrong.error_rate == 1.0 and wrong.rps == 0
    ceiling = generator.ceiling(census_server, concurrency=4, duration_s=1.0)
    assert ceiling.errors == 0 and ceiling.requests > 0


@pytest.mark.slow
@pytest.mark.parametrize("name", ["python", "wrk"])
def test_generators_reach_a_throughput_and_the_ceiling_exceeds_a_real_request(
    name, census_server, census_model_dir
):
    """Throughput, a timing claim: in the slow stage (scripts/test), where a loaded
    machine makes it a benchmark result rather than a unit-test flake."""
    from mlops_ci.serving.settings import load_settings

    generator = generator_named(name)
    request = v2_request(load_settings(census_model_dir))
    good = generator.run(census_server, request, concurrency=4, duration_s=1.0)
    ceiling = generator.ceiling(census_server, concurrency=4, duration_s=1.0)
    print(f"{name}: {good.rps:.0f} req/s on /infer, ceiling {ceiling.rps:.0f} req/s")
    assert good.requests > 50 and good.rps > 50
    assert ceiling.rps > good.rps


def test_connection_errors_are_counted_not_raised():
    result = AsyncioGenerator().run(
        f"http://127.0.0.1:{free_port()}", Request("GET", "/"), concurrency=2, duration_s=0.3
    )
    assert result.requests == 0 and result.errors > 0 and result.error_kinds.get("connect")


def test_asyncio_sequence_returns_every_sample(census_server, census_model_dir):
    from mlops_ci.serving.settings import load_settings

    result = AsyncioGenerator().sequence(census_server, v2_request(load_settings(census_model_dir)), count=25)
    assert result.samples_s is not None and result.samples_s.size == 25 and result.errors == 0


def test_wrk_is_required_only_when_asked():
    assert isinstance(find_generator("auto", {"PATH": "/nonexistent"}), AsyncioGenerator)
    with pytest.raises(GeneratorUnavailable, match="wrk is not installed") as raised:
        find_generator("wrk", {"PATH": "/nonexistent"})
    # In profiling's words: which flag to change is the caller's to say.
    assert raised.value.exit_code == 2 and raised.value.name == "wrk" and "--" not in str(raised.value)
