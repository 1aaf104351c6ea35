"""The command line: build, validate, plan, diff, import, schema."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from mccompile import __version__
from mccompile.diagnostics import ConfigError, Diagnostic, Diagnostics, ExitCode, summary, to_json

FORMATS = ("text", "json", "github")


def _add_format(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--format",
        choices=FORMATS,
        default="text",
        help="how diagnostics are printed: text (file:line:col: severity: message, on stderr;"
        " the default), json (a JSON list of {file, line, col, severity, code, message,"
        " suggestion} on stdout, for editors; other output goes to stderr) or github"
        " (::error file=...,line=...,col=...::message lines on stdout, which annotate a"
        " pull request in GitHub Actions)",
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mccompile",
        description="Compile a declarative fine-tuning config into standalone training programs.",
        epilog="Exit status: 0 ok; 1 build --check found drift, or diff found a difference;"
        " 2 the config has errors (or the command line is wrong). pre-commit hooks"
        " (.pre-commit-hooks.yaml): mccompile-validate checks the changed configs;"
        " mccompile-check runs build --check, with args: [CONFIG, --out, OUT].",
    )
    parser.add_argument("--version", action="version", version=f"mccompile {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

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
        help="write nothing; exit 1 if OUT differs from what would be written (for CI and"
        " the mccompile-check pre-commit hook)",
    )
    build.add_argument(
        "--force",
        action="store_true",
        help="write into an OUT that holds files mccompile did not write (they are kept)",
    )
    _add_format(build)

    validate = sub.add_parser(
        "validate",
        help="check configs and report every mistake",
        description="Check one or more configs: every mistake is reported at file:line:col;"
        " exit 2 if there are errors.",
    )
    validate.add_argument("configs", nargs="+", metavar="CONFIG", help="a YAML config")
    _add_format(validate)

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
        " H100, H200, A100-40GB, A100-80GB, L4, A10G, T4, 4090, RTX-3090...) and what to"
        " change if not",
    )
    _add_format(plan)

    diff = sub.add_parser(
        "diff",
        help="what a config change does to the generated programs",
        description="Compare two versions of a config: first the settings that change, per"
        " workflow and job (with the derived ones: effective batch size, precision,"
        " processes), then the unified diff of the generated files (built in memory;"
        " nothing is written). 'diff OLD NEW' compares two files; 'diff --rev REV CONFIG'"
        " compares CONFIG with its version at git revision REV (git show REV:path, the path"
        " relative to the root of CONFIG's repository). Exit 0 if both compile to the same"
        " files, 1 if they differ, 2 on config errors.",
    )
    diff.add_argument("configs", nargs="+", metavar="CONFIG", help="OLD NEW, or CONFIG with --rev")
    diff.add_argument("--rev", metavar="REV", help="the git revision of the old config")
    diff.add_argument(
        "--stat", action="store_true", help="settings and the changed files only, no file diff"
    )

    imp = sub.add_parser(
        "import",
        help="turn an Axolotl or LLaMA-Factory config into a mccompile config",
        description="Write a mccompile config (loaders, a trainer, a workflow) that trains"
        " what the peer's config trains: a comment beside each setting names the peer key"
        " and line it came from, the peer's defaults that differ from mccompile's are written"
        " out, and every peer key without a counterpart is a warning at its line:col and a"
        " '# not imported:' comment. A value the peer itself would refuse is an error (exit"
        " 2). Check the result with 'mccompile validate'.",
    )
    imp.add_argument("peer", choices=("axolotl", "llama-factory"), help="the peer's format")
    imp.add_argument("peer_config", metavar="PEER.yaml", help="the peer's YAML config")
    imp.add_argument(
        "-o", "--out", metavar="CONFIG", help="write the config here (default: stdout)"
    )
    _add_format(imp)

    sub.add_parser(
        "schema",
        help="print the JSON Schema of the config language",
        description="Print the JSON Schema (draft 2020-12), for editors: add"
        " '# yaml-language-server: $schema=<path>' to a config.",
    )
    return parser


def _gpu_memory(text: str) -> tuple[str, int]:
    from mccompile.plan.gpus import GPUS, parse_gpu_memory

    parsed = parse_gpu_memory(text)
    if parsed is None:
        names = ", ".join(sorted(GPUS))
        if text.strip().replace(".", "", 1).isdigit():
            raise argparse.ArgumentTypeError(
                f"{text!r} has no unit: write {text.strip()}GB or {text.strip()}GiB,"
                f" or a GPU's name ({names})"
            )
        raise argparse.ArgumentTypeError(f"{text!r}: a size like 80GB or 40GiB, or one of {names}")
    return parsed


def print_diagnostics(items: Sequence[Diagnostic], fmt: str = "text") -> None:
    if fmt == "json":
        sys.stdout.write(to_json(items))
    elif fmt == "github":
        for diag in items:
            print(diag.github())
    else:
        for diag in items:
            print(diag.format(), file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return ExitCode.CONFIG_ERROR
    if args.command == "schema":
        from mccompile.frontend.schema import schema_text

        sys.stdout.write(schema_text())
        return ExitCode.OK
    if args.command == "diff":
        from mccompile.commands.diff import run_diff

        return run_diff(args.configs, args.rev, stat=args.stat)
    if args.command == "validate":
        return _validate(args.configs, args.format)
    if args.command == "import":
        return _import(args.peer, args.peer_config, args.out, args.format)
    from mccompile.frontend import compile_config

    # with --format json, stdout holds the JSON alone: the rest goes to stderr
    info = sys.stderr if args.format == "json" else sys.stdout
    try:
        config, diags = compile_config(args.config, args.config)
    except ConfigError as err:
        print_diagnostics(err.diagnostics.sorted(), args.format)
        tail = "; nothing was built" if args.command == "build" else ""
        print(f"{args.config}: {summary(err.diagnostics)}{tail}", file=sys.stderr)
        return ExitCode.CONFIG_ERROR
    print_diagnostics(diags.sorted(), args.format)
    if args.command == "plan":
        from mccompile.commands.plan import render_plan

        info.write(render_plan(config, args.gpu_memory))
        return ExitCode.OK
    from mccompile.commands.build import run_build

    if info is sys.stdout:
        return run_build(config, args)
    stdout, sys.stdout = sys.stdout, sys.stderr
    try:
        return run_build(config, args)
    finally:
        sys.stdout = stdout


def _validate(paths: Sequence[str], fmt: str) -> int:
    from mccompile.frontend import compile_config

    collected: list[Diagnostic] = []  # --format json: one list for every config
    failed = False
    for path in paths:
        try:
            config, diags = compile_config(path, path)
        except ConfigError as err:
            failed = True
            _emit(err.diagnostics, fmt, collected)
            print(f"{path}: {summary(err.diagnostics)}", file=sys.stderr)
            continue
        _emit(diags, fmt, collected)
        names = ", ".join(w.id for w in config.workflows)
        count = len(config.workflows)
        plural = "s" if count != 1 else ""
        out = sys.stderr if fmt == "json" else sys.stdout
        print(f"{path}: {summary(diags)} ({count} workflow{plural}: {names})", file=out)
    if fmt == "json":
        print_diagnostics(collected, fmt)
    return ExitCode.CONFIG_ERROR if failed else ExitCode.OK


def _import(peer: str, path: str, out: str | None, fmt: str) -> int:
    from pathlib import Path

    from mccompile.importers import import_peer

    if out is not None and Path(out).resolve() == Path(path).resolve():
        print(f"{out}: is the peer's config itself; write the import elsewhere", file=sys.stderr)
        return ExitCode.CONFIG_ERROR
    diags = Diagnostics(path)
    text = import_peer(peer, path, diags)
    print_diagnostics(diags.sorted(), fmt)
    if text is None:
        print(f"{path}: {summary(diags)}; nothing was written", file=sys.stderr)
        return ExitCode.CONFIG_ERROR
    if out is None:
        if fmt == "json":
            print(text, end="", file=sys.stderr)
        else:
            sys.stdout.write(text)
        return ExitCode.OK
    try:
        Path(out).write_text(text, encoding="utf-8")
    except OSError as exc:
        print(f"{out}: cannot write: {exc.strerror or exc}", file=sys.stderr)
        return ExitCode.CONFIG_ERROR
    print(
        f"{path}: {summary(diags)}; wrote {out} (check it: mccompile validate {out})",
        file=sys.stderr,
    )
    return ExitCode.OK


def _emit(diags: Diagnostics, fmt: str, collected: list[Diagnostic]) -> None:
    if fmt == "json":
        collected += diags.sorted()
    else:
        print_diagnostics(diags.sorted(), fmt)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
