"""Running our GitHub workflows with `act` and our GitLab pipelines with `gitlab-ci-local`,
on this machine, the way ../shared ENVIRONMENT notes describe (scripts/setup/30-ci-tools.sh
installs both).

Neither github.com nor gitlab.com can be reached, so the remote references in the example
pipelines are served locally, unchanged in the pipeline text:

- `uses: mlops-ci/mlops-ci/...@v1` and `include: project: mlops-ci/mlops-ci, ref: v1` get a
  copy of this repository's files (what a tag's tarball holds);
- `uses: actions/setup-python@v5` gets a stand-in that puts this machine's Python on PATH
  (GitHub's tool cache cannot be downloaded); `actions/upload-artifact@v4` and
  `actions/download-artifact@v4` get stand-ins that pass files between the jobs of a run
  through a folder; `actions/checkout@v4` act handles itself.

Every job installs mlops-ci anew (actions/install-core.sh); the runs share one uv cache
(UV_CACHE_DIR, what a runner whose jobs are all trusted may set) so that this takes seconds.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from tests.helpers import BASE_IMAGE, EXAMPLE, REPO, cli_env

VENV_BIN = Path(sys.executable).parent
TOOLS_BIN = REPO / ".tools" / "node_modules" / ".bin"
ACTION_REPO = "mlops-ci/mlops-ci"
ACTION_REF = "v1"
GITLAB_HOST = "gitlab.com"
# uv's cache for the jobs of the tests, kept between test sessions.
UV_CACHE = Path(tempfile.gettempdir()) / "mlops-ci-tests-uv-cache"


@dataclass
class PipelineRun:
    returncode: int
    log: str
    elapsed_s: float

    def assert_ok(self) -> None:
        assert self.returncode == 0, self.log[-6000:]


def tool_env(**extra: str) -> dict[str, str]:
    """The test interpreter's folder first on PATH (the "user's Python", with mlflow and
    scikit-learn), then Node 22 and the npm tools."""
    env = cli_env(**extra)
    env["PATH"] = os.pathsep.join([str(VENV_BIN), str(TOOLS_BIN), env["PATH"]])
    return env


def export_repository(destination: Path) -> Path:
    """The files of this repository a release tag would hold: tracked and new files, without
    ignored ones (.venv, .tools, caches)."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = REPO / name
        if source.is_file():
            target = destination / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return destination


SETUP_PYTHON_STANDIN = """\
name: setup-python (stand-in for the tests)
description: Like actions/setup-python, with this machine's Python instead of GitHub's tool cache.
inputs:
  python-version:
    description: ignored; the machine has one Python
    default: ""
  cache:
    description: ignored
    default: ""
  update-environment:
    description: put the Python on PATH
    default: "true"
outputs:
  python-path:
    description: the interpreter
    value: ${{{{ steps.python.outputs.python-path }}}}
  python-version:
    description: its version
    value: ${{{{ steps.python.outputs.python-version }}}}
runs:
  using: composite
  steps:
    - id: python
      shell: bash
      env:
        UPDATE_ENVIRONMENT: ${{{{ inputs.update-environment }}}}
      run: |
        echo "python-path={base_python}" >> "$GITHUB_OUTPUT"
        echo "python-version={version}" >> "$GITHUB_OUTPUT"
        if [ "$UPDATE_ENVIRONMENT" = true ]; then echo "{user_bin}" >> "$GITHUB_PATH"; fi
"""


def setup_python_standin(destination: Path) -> Path:
    """The user's Python is the test interpreter (it has what train.py imports); the action's
    own virtualenv is made from the base interpreter, as from a fresh setup-python."""
    destination.mkdir(parents=True, exist_ok=True)
    base = os.path.realpath(getattr(sys, "_base_executable", sys.executable))
    version = ".".join(map(str, sys.version_info[:3]))
    (destination / "action.yml").write_text(
        SETUP_PYTHON_STANDIN.format(base_python=base, version=version, user_bin=VENV_BIN)
    )
    return destination


UPLOAD_ARTIFACT_STANDIN = """\
name: upload-artifact (stand-in for the tests)
description: Copies the files of `path` (globs, one per line) to a folder the run's jobs share.
inputs:
  name:
    description: the artifact's name
    default: artifact
  path:
    description: globs of files
    required: true
  include-hidden-files:
    description: ignored (hidden files are copied)
    default: "false"
  retention-days:
    description: ignored
    default: ""
runs:
  using: composite
  steps:
    - shell: bash
      env:
        NAME: ${{{{ inputs.name }}}}
        PATTERNS: ${{{{ inputs.path }}}}
      run: |
        mkdir -p "{store}/$NAME"
        while IFS= read -r pattern; do
          for file in $pattern; do if [ -f "$file" ]; then cp "$file" "{store}/$NAME/"; fi; done
        done <<< "$PATTERNS"
"""

DOWNLOAD_ARTIFACT_STANDIN = """\
name: download-artifact (stand-in for the tests)
description: Copies an artifact the stand-in upload-artifact kept into `path`.
inputs:
  name:
    description: the artifact's name
    default: artifact
  path:
    description: where to put its files
    default: "."
runs:
  using: composite
  steps:
    - shell: bash
      env:
        NAME: ${{{{ inputs.name }}}}
        DESTINATION: ${{{{ inputs.path }}}}
      run: |
        mkdir -p "$DESTINATION"
        cp -R "{store}/$NAME/." "$DESTINATION/"
"""


def artifact_standins(work: Path) -> tuple[Path, Path]:
    """upload-artifact and download-artifact stand-ins sharing a folder, empty at the start
    of a run."""
    store = work / "artifacts"
    shutil.rmtree(store, ignore_errors=True)
    store.mkdir(parents=True)
    folders = []
    for name, text in (("upload", UPLOAD_ARTIFACT_STANDIN), ("download", DOWNLOAD_ARTIFACT_STANDIN)):
        folder = work / f"{name}-artifact"
        folder.mkdir(exist_ok=True)
        (folder / "action.yml").write_text(text.format(store=store))
        folders.append(folder)
    return folders[0], folders[1]


def run_act(
    project: Path,
    *,
    workflow: Path,
    event: str,
    payload: dict,
    work: Path,
    release: Path,
    variables: dict[str, str],
    action_cache: Path,
    env: dict[str, str] | None = None,
    secrets: dict[str, str] | None = None,
    timeout: float = 420,
) -> PipelineRun:
    """Run ``workflow`` of ``project`` with act on this host (no containers). Runs that share
    ``action_cache`` share the runner's tool cache, as jobs on one self-hosted runner do."""
    event_file = work / "event.json"
    event_file.write_text(json.dumps(payload))
    standin = setup_python_standin(work / "setup-python")
    upload, download = artifact_standins(work)
    args = [
        str(VENV_BIN / "act"),
        event,
        "--workflows",
        str(workflow),
        "--eventpath",
        str(event_file),
        "--platform",
        "ubuntu-latest=-self-hosted",
        "--action-cache-path",
        str(action_cache),
        "--no-cache-server",
        "--local-repository",
        f"actions/setup-python@v5={standin}",
        "--local-repository",
        f"actions/upload-artifact@v4={upload}",
        "--local-repository",
        f"actions/download-artifact@v4={download}",
        "--local-repository",
        f"{ACTION_REPO}@{ACTION_REF}={release}",
    ]
    for key, value in variables.items():
        args += ["--var", f"{key}={value}"]
    for key, value in {"UV_CACHE_DIR": str(UV_CACHE), **(env or {})}.items():
        args += ["--env", f"{key}={value}"]
    for key, value in (secrets or {}).items():
        args += ["--secret", f"{key}={value}"]
    return _run(args, cwd=project, timeout=timeout)


def printed_outputs(log: str, step: str) -> dict[str, str]:
    """The outputs `mlops-ci <step>` printed under its result line (act deletes the job's
    workspace, result files included, when the job ends)."""
    lines = [line.split("]   | ", 1)[1] for line in log.splitlines() if "]   | " in line]
    result_line = re.compile(rf"{step}: (passed|failed|skipped|error) - ")
    start = next(i for i, line in enumerate(lines) if result_line.match(line))
    outputs = {}
    for line in lines[start + 1 :]:
        if not line.startswith("  "):
            break
        if line.startswith("  ["):  # a check's line: "  [passed] name: message"
            continue
        key, _, value = line.strip().partition(":")  # an empty output prints as "key:"
        outputs[key] = value.strip()
    return outputs


def prepare_gitlab_project(project: Path, release: Path) -> None:
    """gitlab-ci-local wants an `origin` remote; `include: project:` files it finds in its
    include cache are used as they are, so the release's files go there."""
    subprocess.run(
        ["git", "remote", "add", "origin", f"https://{GITLAB_HOST}/acme/{project.name}.git"],
        cwd=project,
        check=True,
    )
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=project, capture_output=True, text=True).stdout
    subprocess.run(["git", "update-ref", "refs/remotes/origin/main", head.strip()], cwd=project, check=True)
    subprocess.run(
        ["git", "symbolic-ref", "refs/remotes/origin/HEAD", "refs/remotes/origin/main"],
        cwd=project,
        check=True,
    )
    includes = project / ".gitlab-ci-local" / "includes" / GITLAB_HOST / ACTION_REPO / ACTION_REF
    shutil.copytree(release / "gitlab-templates", includes / "gitlab-templates")


def run_gitlab_ci_local(
    project: Path,
    *,
    variables: dict[str, str],
    args: tuple[str, ...] = (),
    tmp: Path | None = None,
    timeout: float = 420,
) -> PipelineRun:
    """Every job in a shell on this host (`--force-shell-executor`: the components name an
    image). Jobs keep their temporary files (mlops-ci's virtualenv) under ``tmp``."""
    command = [str(TOOLS_BIN / "gitlab-ci-local"), "--force-shell-executor", *args]
    for key, value in {"UV_CACHE_DIR": str(UV_CACHE), **variables}.items():
        command += ["--variable", f"{key}={value}"]
    return _run(command, cwd=project, timeout=timeout, env=tool_env(TMPDIR=str(tmp)) if tmp else None)


def _run(args: list[str], *, cwd: Path, timeout: float, env: dict[str, str] | None = None) -> PipelineRun:
    started = time.monotonic()
    done = subprocess.run(
        args,
        cwd=cwd,
        env=env or tool_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout,
    )
    return PipelineRun(done.returncode, done.stdout, time.monotonic() - started)


# What gitlab-ci-local leaves out of a job's environment and a real runner sets.
GITLAB_RUNNER = {"GITLAB_CI": "true"}


def example_copy(tmp_path: Path, name: str) -> Path:
    """The example project as its own repository, with experiment and model names no other
    test uses on the shared server."""
    project = tmp_path / "census-income"
    shutil.copytree(
        EXAMPLE,
        project,
        ignore=shutil.ignore_patterns(".mlops-ci", "__pycache__"),
    )
    config = project / "mlops-ci.yaml"
    settings = yaml.safe_load(config.read_text().replace("census-income", name))
    settings.setdefault("package", {})["base-image"] = BASE_IMAGE
    config.write_text(yaml.safe_dump(settings, sort_keys=False))
    return commit_all(project)


def commit_all(project: Path) -> Path:
    git = ["git", "-c", "user.name=Test", "-c", "user.email=test@example.com"]
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=project, check=True)
    subprocess.run([*git, "add", "-A"], cwd=project, check=True)
    subprocess.run([*git, "commit", "-q", "-m", "Model pipeline\n\nFirst model."], cwd=project, check=True)
    return project
