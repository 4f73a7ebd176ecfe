import subprocess
import sys

from tests.helpers import REPO, cli_env, run_cli


def test_help_does_not_import_heavy_libraries():
    code = (
        "import sys\nfrom mlops_ci.cli import build_parser\nparser = build_parser()\n"
        "parser.format_help()\nparser.parse_args(['train'])\n"
        "heavy = sorted(m for m in ('mlflow', 'sklearn', 'pandas', 'onnx', 'onnxruntime', 'docker',"
        " 'github', 'gitlab', 'skl2onnx', 'jsonschema') if m in sys.modules)\n"
        "print(heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_help_and_version(tmp_path):
    help_run = run_cli(["--help"], cwd=tmp_path, env=cli_env())
    assert help_run.returncode == 0 and "train" in help_run.stdout and "register" in help_run.stdout
    version = run_cli(["--version"], cwd=tmp_path, env=cli_env())
    assert version.returncode == 0 and version.stdout.startswith("mlops-ci ")
    assert "mlflow" in version.stdout and "onnxruntime" in version.stdout


def test_unknown_flag_is_one_line_and_exit_2(tmp_path):
    result = run_cli(["train", "--no-such-flag"], cwd=tmp_path, env=cli_env())
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "unrecognized arguments: --no-such-flag" in result.stderr


def test_schema_command_prints_both_schemas(tmp_path):
    import json

    config = json.loads(run_cli(["schema", "config"], cwd=tmp_path, env=cli_env()).stdout)
    assert config["properties"]["train"]["properties"]["seed"]["type"] == "integer"
    result = json.loads(run_cli(["schema", "step-result"], cwd=tmp_path, env=cli_env()).stdout)
    assert result["properties"]["schema"]["const"] == "mlops-ci/step-result/v1"


def test_readme_starts_with_the_two_commands():
    readme = (REPO / "README.md").read_text()
    first_block = readme.split("```")[1]
    assert "./scripts/demo" in first_block and "./scripts/test" in first_block
