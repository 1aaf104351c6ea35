"""The command line: build, validate, plan, schema."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from mccompile import __version__
from mccompile.errors import ConfigError, Diagnostics, ExitCode


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mccompile",
        description="Compile a declarative fine-tuning config into standalone training programs.",
    )
    parser.add_argument("--version", action="version", version=f"mccompile {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    build = sub.add_parser(
        "build",
        help="write the programs of a config",
        description="Write train.py / prepare.py, accelerate_config.yaml, launch.sh,"
        " requirements.txt and README.md per workflow, and manifest.json, into OUT.",
    )
    build.add_argument("config", metavar="CONFIG", help="the YAML config")
    build.add_argument("-o", "--out", required=True, metavar="OUT", help="output folder")
    build.add_argument(
        "--workflow",
        action="append",
        default=[],
        metavar="ID",
        help="build only this workflow (repeatable; default: every workflow)",
    )
    build.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 if OUT differs from what would be written",
    )
    build.add_argument(
        "--force",
        action="store_true",
        help="write into an OUT that holds files mccompile did not write (they are kept)",
    )

    validate = sub.add_parser(
        "validate",
        help="check a config and report every mistake",
        description="Check a config:"
        " every mistake is reported at file:line:col; exit 2 if there are errors.",
    )
    validate.add_argument("config", metavar="CONFIG", help="the YAML config")

    plan = sub.add_parser(
        "plan",
        help="show what a config resolves to",
        description="Show each workflow's jobs in run order, every setting with its default"
        " filled in, and the options the generated program takes.",
    )
    plan.add_argument("config", metavar="CONFIG", help="the YAML config")
    plan.add_argument(
        "--gpu-memory",
        type=_gpu_memory,
        default=None,
        metavar="SIZE",
        help="say whether each trainer fits a GPU of this memory (80GB, 40GiB, or a name:"
        " H100, H200, A100-40GB, A100-80GB, L4, A10G, T4, RTX4090...) and what to change if not",
    )

    sub.add_parser(
        "schema",
        help="print the JSON Schema of the config language",
        description="Print the JSON Schema (draft 2020-12), for editors: add"
        " '# yaml-language-server: $schema=<path>' to a config.",
    )
    return parser


def _gpu_memory(text: str) -> tuple[str, int]:
    from mccompile.resources import GPUS, parse_gpu_memory

    parsed = parse_gpu_memory(text)
    if parsed is None:
        names = ", ".join(sorted(GPUS))
        raise argparse.ArgumentTypeError(f"{text!r}: a size like 80GB or 40GiB, or one of {names}")
    return parsed


def _print_diagnostics(diags: Diagnostics) -> None:
    for diag in diags.sorted():
        print(diag.format(), file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "schema":
        from mccompile.schema import schema_path

        sys.stdout.write(schema_path().read_text(encoding="utf-8"))
        return ExitCode.OK
    from mccompile.frontend import compile_config

    try:
        config, diags = compile_config(args.config, args.config)
    except ConfigError as err:
        _print_diagnostics(err.diagnostics)
        errors = sum(1 for d in err.diagnostics.items if d.severity.value == "error")
        print(f"{args.config}: {errors} error(s); nothing was built", file=sys.stderr)
        return ExitCode.CONFIG_ERROR
    _print_diagnostics(diags)
    if args.command == "validate":
        names = ", ".join(w.id for w in config.workflows)
        print(f"{args.config}: ok ({len(config.workflows)} workflow(s): {names})")
        return ExitCode.OK
    if args.command == "plan":
        from mccompile.plan import render_plan

        sys.stdout.write(render_plan(config, args.gpu_memory))
        return ExitCode.OK
    from mccompile.build import run_build

    return run_build(config, args)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
