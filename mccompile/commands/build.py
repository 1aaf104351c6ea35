"""``mccompile build``: render every file in memory, then write them safely.

OUT is replaced as a whole (built beside it, then swapped in), so an
interrupted build leaves the previous output intact. Files in OUT that the
previous manifest does not list were not written by mccompile: they are
refused without ``--force`` and never deleted.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

from mccompile import __version__, ir
from mccompile.codegen.generate import generate_workflow
from mccompile.commands import outtree
from mccompile.diagnostics import Diagnostic, ExitCode, Severity

MANIFEST = "manifest.json"


def render_all(config: ir.Config, only: list[str]) -> dict[str, bytes]:
    """Every output file, by its path relative to OUT."""
    files: dict[str, bytes] = {}
    for wf in config.workflows:
        if only and wf.id not in only:
            continue
        for name, text in generate_workflow(config, wf).items():
            files[f"{wf.id}/{name}"] = text.encode("utf-8")
    manifest = {
        "compiler": f"mccompile {__version__}",
        "config": config.file,
        "config_sha256": config.sha256,
        "workflows": [wf.id for wf in config.workflows if not only or wf.id in only],
        "files": {path: hashlib.sha256(data).hexdigest() for path, data in sorted(files.items())},
    }
    files[MANIFEST] = (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode("utf-8")
    return dict(sorted(files.items()))


def _ours(existing: dict[str, bytes]) -> set[str]:
    """Files the previous build wrote, by its manifest."""
    raw = existing.get(MANIFEST)
    if raw is None:
        return set()
    try:
        listed = json.loads(raw.decode("utf-8")).get("files", {})
    except (ValueError, UnicodeDecodeError, AttributeError):
        return set()
    return {MANIFEST, *(p for p in listed if isinstance(p, str))}


def run_build(config: ir.Config, args: argparse.Namespace) -> int:
    unknown = [w for w in args.workflow if w not in {wf.id for wf in config.workflows}]
    if unknown:
        names = ", ".join(wf.id for wf in config.workflows)
        print(
            f"{config.file}: error: no workflow '{unknown[0]}' (workflows: {names})",
            file=sys.stderr,
        )
        return ExitCode.CONFIG_ERROR
    files = render_all(config, args.workflow)
    out = Path(args.out)
    # a symlink to a folder is written through: the folder it names is OUT
    where = Path(os.path.realpath(out)) if out.is_symlink() else out
    if out.is_symlink() and not where.is_dir():
        print(
            f"{out}: error: is a symlink to {out.readlink()}, which is not a folder;"
            " it is unchanged",
            file=sys.stderr,
        )
        return ExitCode.CONFIG_ERROR
    tree = outtree.scan(where)
    existing = tree.files
    if args.check:
        return _check(out, files, existing, github=getattr(args, "format", "") == "github")
    foreign_files = set(existing) - _ours(existing)
    foreign = sorted(foreign_files | set(tree.others))
    if foreign and not args.force:
        shown = ", ".join(foreign[:5]) + (" ..." if len(foreign) > 5 else "")
        print(
            f"{out}: error: holds files mccompile did not write ({shown});"
            " choose an empty folder, or pass --force (they are kept)",
            file=sys.stderr,
        )
        return ExitCode.CONFIG_ERROR
    if out.exists() and not out.is_dir():
        print(f"{out}: error: exists and is not a folder", file=sys.stderr)
        return ExitCode.CONFIG_ERROR
    refused = outtree.refusal(tree, set(files))
    if refused is not None:
        print(f"{out}: error: {refused}; it is unchanged", file=sys.stderr)
        return ExitCode.CONFIG_ERROR
    try:
        _write(where, files, tree, keep=foreign_files - set(files))
    except OSError as exc:
        print(
            f"{out}: error: cannot write the output ({exc.strerror or exc}); it is unchanged",
            file=sys.stderr,
        )
        return ExitCode.CONFIG_ERROR
    print(f"wrote {len(files)} files to {out}")
    return ExitCode.OK


def _check(
    out: Path, files: dict[str, bytes], existing: dict[str, bytes], github: bool = False
) -> int:
    ours = _ours(existing) or set(existing)
    drift = [p for p, data in files.items() if existing.get(p) != data]
    stale = sorted(p for p in ours if p not in files)
    found = [(p, "missing" if p not in existing else "differs") for p in drift]
    found += [(p, "no longer generated") for p in stale]
    for path, state in found:
        print(f"{out / path}: {state}", file=sys.stderr)
        if github:  # an annotation on the file in the pull request
            drifted = Diagnostic(
                Severity.ERROR,
                "drift",
                f"{state} from what mccompile build writes; run mccompile build to update it",
                file=(out / path).as_posix(),
            )
            print(drifted.github())
    if drift or stale:
        print(f"{out}: out of date; run mccompile build to update it", file=sys.stderr)
        return ExitCode.DRIFT
    print(f"{out}: up to date")
    return ExitCode.OK


def _write(out: Path, files: dict[str, bytes], tree: outtree.Tree, keep: set[str]) -> None:
    """Build the new tree beside OUT (with the user's entries), then swap it in."""
    parent = out.resolve().parent
    parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.new-", dir=parent))
    staging.chmod(0o755)
    old = None
    try:
        for rel, data in files.items():
            target = staging / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
            if rel.endswith((".sh", ".sbatch")):
                target.chmod(0o755)
        if out.is_dir():
            outtree.carry_over(out, staging, tree, keep)
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=parent))
            old.rmdir()
            out.rename(old)
        staging.rename(out)
    except BaseException:
        if old is not None and not out.exists():
            old.rename(out)  # the previous output back in its place
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
