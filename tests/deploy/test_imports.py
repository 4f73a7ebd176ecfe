"""`mlops-ci deploy --help` and `drift --help` stay instant: no heavy module imported."""

import subprocess
import sys


def test_new_steps_import_nothing_heavy():
    code = (
        "import sys\nfrom mlops_ci.cli import build_parser\nparser = build_parser()\n"
        "parser.parse_args(['deploy'])\nparser.parse_args(['drift'])\n"
        "import mlops_ci.steps.deploy, mlops_ci.steps.drift\n"
        "heavy = sorted(m for m in ('mlflow', 'pandas', 'numpy', 'scipy', 'kubernetes', 'kubernetes_validate',"
        " 'matplotlib', 'github', 'gitlab', 'jsonschema') if m in sys.modules)\n"
        "print(heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
