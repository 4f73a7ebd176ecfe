"""`mlops-ci deploy --strategy canary|shadow` through the CLI and the runner: the options
become a request (steps, analysis settings), bad values exit 2 naming the flag, and the
outcome's decisions become outputs and checks. The rollouts themselves are tested in
test_canary_docker.py and test_canary_kubernetes.py."""

from __future__ import annotations

import pytest

from mlops_ci.deploy.outcome import CheckRecord, DeployOutcome, StepDecision
from mlops_ci.runner import run_step
from mlops_ci.steps.deploy import to_result
from tests.helpers import cli_env, run_cli

IMAGE = "ghcr.io/acme/census-income:9f2c1ab"


def test_decisions_become_outputs_and_checks():
    decisions = (
        StepDecision(10, 1, "promote", "no evidence", {"canary_requests": 120}),
        StepDecision(50, 1, "hold", "not enough"),
        StepDecision(50, 2, "abort", "canary errors 5.00% vs 0.00% (p=1e-07)"),
    )
    outcome = DeployOutcome(
        "docker",
        "rolled-back",
        False,
        "canary 50% aborted",
        (
            CheckRecord("canary 10%", True, "no evidence", {"windows": [decisions[0].to_dict()]}),
            CheckRecord("canary 50%", False, decisions[2].reason),
        ),
        strategy="canary",
        decisions=decisions,
        proxy_endpoint="http://svc-proxy:8080 on network mlops-ci-svc; http://127.0.0.1:5 on the host",
    )
    result = to_result(outcome)
    assert result.status == "failed"
    assert result.outputs["strategy"] == "canary"
    assert result.outputs["canary-decisions"] == "10%:promote 50%:hold 50%:abort"
    assert result.outputs["proxy-endpoint"].startswith("http://svc-proxy:8080")
    assert [(c.name, c.status) for c in result.checks] == [("canary 10%", "passed"), ("canary 50%", "failed")]
    assert result.checks[0].details["windows"][0] == {"percent": 10, "window": 1, "canary_requests": 120}
    # A replace deployment reports none of them.
    plain = to_result(DeployOutcome("docker", "deployed", True, "x serves as svc"))
    assert not {"strategy", "canary-decisions", "proxy-endpoint"} & set(plain.outputs)


def test_a_kubernetes_canary_is_rendered_through_the_step(tmp_path):
    result = run_step(
        "deploy",
        {
            "target": "kubernetes",
            "name": "m",
            "image": IMAGE,
            "strategy": "canary",
            "canary_steps": ["20", "60"],
            "gateway": "public",
        },
        env={},
        cwd=tmp_path,
    )
    assert (result.status, result.outputs["action"], result.outputs["strategy"]) == (
        "passed",
        "rendered",
        "canary",
    )
    assert [a.rsplit("/", 1)[1] for a in result.artifacts] == [
        "m.canary-20.yaml",
        "m.canary-60.yaml",
        "m.yaml",
    ]


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (
            ["--target", "registry", "--strategy", "canary"],
            "--strategy canary moves traffic: use it with --target docker or kubernetes",
        ),
        (
            ["--target", "kubernetes", "--strategy", "canary", "--canary-steps", "50,10", "--gateway", "g"],
            "--canary-steps must be ascending percentages from 1 to 100, got '50,10'",
        ),
        (
            ["--target", "kubernetes", "--strategy", "canary", "--canary-steps", "ten", "--gateway", "g"],
            "--canary-steps must be whole percentages such as 10,50,100, got 'ten'",
        ),
        (
            ["--target", "kubernetes", "--strategy", "canary"],
            "--gateway is needed for a canary or shadow on Kubernetes",
        ),
        (["--target", "docker", "--strategy", "canary", "--canary-window", "0.5"], "--canary-window"),
        (["--target", "docker", "--strategy", "sideways"], "--strategy"),
    ],
)
def test_bad_progressive_settings_exit_2_naming_the_flag(tmp_path, flags, message):
    done = run_cli(["deploy", "--name", "m", "--image", IMAGE, *flags], cwd=tmp_path, env=cli_env())
    assert done.returncode == 2, done.stderr
    assert message in done.stderr, done.stderr
