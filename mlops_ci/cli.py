"""The `mlops-ci` command: parse flags, call one library function, map the result to an
exit code. Nothing else lives here."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import traceback
from collections.abc import Sequence
from typing import NoReturn

from mlops_ci import __version__
from mlops_ci.errors import ExitCode, MlopsCiError
from mlops_ci.options import add_arguments
from mlops_ci.platforms.masking import RedactingFilter, redact
from mlops_ci.result import StepResult
from mlops_ci.serving.config import add_server_arguments
from mlops_ci.steps import GLOBAL_OPTIONS, SHARED_OPTIONS, all_steps

ISSUES_URL = "https://github.com/mlops-ci/mlops-ci/issues"
KEY_DEPENDENCIES = (
    "mlflow",
    "scikit-learn",
    "onnx",
    "onnxruntime",
    "skl2onnx",
    "docker",
    "PyGithub",
    "python-gitlab",
)


class Parser(argparse.ArgumentParser):
    """argparse with errors on one line (argparse's default prints the usage first)."""

    def error(self, message: str) -> NoReturn:
        self.exit(ExitCode.USAGE, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


class VersionAction(argparse.Action):
    """`--version` with the versions of the key dependencies, read without importing them."""

    def __init__(self, option_strings: Sequence[str], dest: str = argparse.SUPPRESS, **kwargs) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None) -> NoReturn:
        print(version_text())
        parser.exit()


def version_text() -> str:
    from importlib import metadata

    parts = []
    for name in KEY_DEPENDENCIES:
        try:
            parts.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            parts.append(f"{name} (not installed)")
    python = ".".join(map(str, sys.version_info[:3]))
    return f"mlops-ci {__version__} (Python {python})\n" + "\n".join("  " + p for p in parts)


def build_parser() -> Parser:
    parser = Parser(
        prog="mlops-ci",
        description="CI/CD for machine-learning models: train, register, validate, package, "
        "profile, deploy and gate, on GitHub Actions, GitLab CI or a laptop.",
        epilog="Every flag can also be set in mlops-ci.yaml (same name, in the step's section) or "
        "as an environment variable MLOPS_CI_<NAME>. Exit codes: 0 passed, 1 a blocking check "
        "failed, 2 usage or configuration error, 3 an external service failed, 4 internal error.",
    )
    parser.add_argument("--version", action=VersionAction, help="show versions and exit")
    common = argparse.ArgumentParser(add_help=False)
    group = common.add_argument_group("common options")
    group.add_argument(
        "--config",
        metavar="PATH",
        help="config file (default: mlops-ci.yaml if present; env MLOPS_CI_CONFIG)",
    )
    group.add_argument(
        "--debug", action="store_true", default=None, help="verbose logs and tracebacks (env MLOPS_CI_DEBUG)"
    )
    add_arguments(group, GLOBAL_OPTIONS)

    commands = parser.add_subparsers(dest="subcommand", metavar="<command>", parser_class=Parser)
    commands.required = True
    for step in all_steps().values():
        sub = commands.add_parser(
            step.name, help=step.help, description=step.description or step.help, parents=[common]
        )
        group = sub.add_argument_group(f"{step.name} options")
        add_arguments(group, [SHARED_OPTIONS[name] for name in step.shared])
        add_arguments(group, step.options)
    from mlops_ci.commands.report import report_options

    report = commands.add_parser(
        "report",
        help="render the gate's PR/MR comment from the step results, without posting it",
        description="Apply the gate policy (the gate: section of mlops-ci.yaml, or the flags) to the "
        "step results in --out-dir and print the comment the gate would post. Talks to no service.",
        parents=[common],
    )
    add_arguments(report.add_argument_group("report options"), report_options())
    serve = commands.add_parser(
        "serve",
        help="serve a model locally without a container (V2, /invocations, /metrics)",
        description="Serve a model with mlops_ci.serving, as the image would: a folder made by "
        "`mlops-ci package`, an .onnx file, or a model URI converted on the fly (default: the last "
        "`mlops-ci package`, else the last `mlops-ci register`). Stops on Ctrl-C or SIGTERM.",
        parents=[common],
    )
    serve.add_argument("model", nargs="?", help="folder with model-settings.json, .onnx file or model URI")
    add_server_arguments(serve.add_argument_group("server options"), defaults={"host": "127.0.0.1"})
    schema = commands.add_parser("schema", help="print the JSON Schema of mlops-ci.yaml or of step results")
    schema.add_argument("which", choices=("config", "step-result"))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    debug = bool(args.__dict__.get("debug")) or _env_flag("MLOPS_CI_DEBUG") or _env_flag("RUNNER_DEBUG")
    _configure_logging(debug)
    try:
        if args.subcommand == "schema":
            return _print_schema(args.which)
        if args.subcommand == "report":
            from mlops_ci.commands.report import run_report

            return run_report(vars(args))
        if args.subcommand == "serve":
            from mlops_ci.commands.serve import serve_command

            return serve_command(vars(args))
        from mlops_ci.runner import run_step

        result = run_step(args.subcommand, vars(args))
    except MlopsCiError as exc:
        if debug:
            _print_traceback()
        print(redact(f"mlops-ci {args.subcommand}: error: {exc}"), file=sys.stderr)
        return int(exc.exit_code)
    except KeyboardInterrupt:
        print(f"mlops-ci {args.subcommand}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - a bug: one line, exit 4, traceback with --debug
        if debug:
            _print_traceback()
        first_line = (str(exc).splitlines() or [""])[0][:300]
        print(
            redact(
                f"mlops-ci {args.subcommand}: internal error: {type(exc).__name__}: {first_line}; rerun "
                f"with --debug and report it at {ISSUES_URL}"
            ),
            file=sys.stderr,
        )
        return int(ExitCode.INTERNAL)
    print_result(result)
    return int(ExitCode.CHECK_FAILED if result.status == "failed" else ExitCode.PASSED)


def print_result(result: StepResult, stream=None) -> None:
    stream = stream or sys.stdout
    print(f"{result.step}: {result.status} - {result.summary}", file=stream)
    for key, value in result.outputs.items():
        print(f"  {key}: {value}", file=stream)
    for check in result.checks:
        print(f"  [{check.status}] {check.name}: {check.message}", file=stream)


def _print_schema(which: str) -> int:
    if which == "config":
        from mlops_ci.runner import full_config_schema

        schema = full_config_schema()
    else:
        from mlops_ci.result import step_result_schema

        schema = step_result_schema()
    print(json.dumps(schema, indent=2))
    return 0


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def _print_traceback() -> None:
    print(redact(traceback.format_exc()), file=sys.stderr, end="")


def _configure_logging(debug: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    # Tokens registered with mlops_ci.platforms.masking never reach the log.
    handler.addFilter(RedactingFilter())
    root = logging.getLogger("mlops_ci")
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if debug else logging.INFO)
    root.propagate = False
