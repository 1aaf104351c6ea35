"""``mccompile diff``: what a config change does to the generated programs.

Both versions are compiled and rendered in memory (nothing is written). First
the settings that change, per workflow and job, with the derived ones that a
reviewer cares about (effective batch size, precision, processes); then the
unified diff of the generated files. ``manifest.json`` is left out: it holds
the config's sha256, which any edit changes. OLD is compiled under NEW's file
name (the generated files name their config), so that only the content counts.
"""

from __future__ import annotations

import difflib
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mccompile import ir
from mccompile.commands.build import MANIFEST, render_all
from mccompile.commands.plan import show
from mccompile.diagnostics import ConfigError, ExitCode, summary


class _RefusedError(Exception):
    """A problem with the command's arguments (no such revision, not a git repository)."""


def run_diff(configs: Sequence[str], rev: str | None, stat: bool = False) -> int:
    if rev is None and len(configs) != 2:
        return _usage("give OLD.yaml NEW.yaml, or --rev REV CONFIG")
    if rev is not None and len(configs) != 1:
        return _usage("with --rev, give one CONFIG")
    with tempfile.TemporaryDirectory(prefix="mccompile-diff-") as tmp:
        try:
            if rev is None:
                new_path, new_shown = Path(configs[1]), configs[1]
                old_path, old_shown = _renamed(Path(configs[0]), new_path.name, Path(tmp))
                old_shown = configs[0]
            else:
                new_path, new_shown = Path(configs[0]), configs[0]
                old_path, old_shown = _from_git(rev, new_path, Path(tmp))
        except _RefusedError as err:
            print(f"mccompile diff: error: {err}", file=sys.stderr)
            return ExitCode.CONFIG_ERROR
        old = _compile(old_path, old_shown)
        new = _compile(new_path, new_shown)
        if old is None or new is None:
            return ExitCode.CONFIG_ERROR
    text, same = render_diff(old, new, old_shown, new_shown, stat=stat)
    sys.stdout.write(text)
    return ExitCode.OK if same else ExitCode.DRIFT


def _usage(message: str) -> int:
    print(f"mccompile diff: error: {message}", file=sys.stderr)
    return ExitCode.CONFIG_ERROR


def _compile(path: Path, shown: str) -> ir.Config | None:
    from mccompile.frontend import compile_config

    try:
        config, diags = compile_config(path, shown)
    except ConfigError as err:
        for diag in err.diagnostics.sorted():
            print(diag.format(), file=sys.stderr)
        print(f"{shown}: {summary(err.diagnostics)}", file=sys.stderr)
        return None
    for diag in diags.sorted():
        print(diag.format(), file=sys.stderr)
    return config


def render_diff(
    old: ir.Config, new: ir.Config, old_shown: str, new_shown: str, stat: bool = False
) -> tuple[str, bool]:
    """The settings that change, then the diff of the generated files; and whether none do."""
    old_files = {p: d for p, d in render_all(old, []).items() if p != MANIFEST}
    new_files = {p: d for p, d in render_all(new, []).items() if p != MANIFEST}
    lines = [f"--- {old_shown}", f"+++ {new_shown}"]
    changes = settings_diff(old, new)
    changed = sorted(
        p for p in old_files.keys() | new_files.keys() if old_files.get(p) != new_files.get(p)
    )
    if not changes and not changed:
        return "\n".join([*lines, "", "no change: both compile to the same files", ""]), True
    lines.append("")
    lines.append("settings:" if changes else "settings: none change")
    lines += changes
    lines.append("")
    lines.append(
        f"generated files: {len(changed)} changed" if changed else "generated files: the same"
    )
    for path in changed:
        state = (
            "added" if path not in old_files else "removed" if path not in new_files else "changed"
        )
        lines.append(f"  {path} ({state})")
    out = "\n".join(lines) + "\n"
    if stat:
        return out, False
    for path in changed:
        before = _text(old_files.get(path))
        after = _text(new_files.get(path))
        out += "\n" + "".join(
            difflib.unified_diff(
                before,
                after,
                fromfile=f"a/{path}" if path in old_files else "/dev/null",
                tofile=f"b/{path}" if path in new_files else "/dev/null",
            )
        )
    return out, False


def _text(data: bytes | None) -> list[str]:
    if data is None:
        return []
    lines = data.decode("utf-8", "replace").splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n\\ No newline at end of file\n"
    return lines


def settings_diff(old: ir.Config, new: ir.Config) -> list[str]:
    """'  workflow W, job J: key: OLD -> NEW' for every setting that changes."""
    out: list[str] = []
    olds = {wf.id: wf for wf in old.workflows}
    news = {wf.id: wf for wf in new.workflows}
    for wid in [*olds, *(w for w in news if w not in olds)]:
        if wid not in news:
            out.append(f"  workflow {wid}: removed")
            continue
        if wid not in olds:
            out.append(f"  workflow {wid}: added")
            continue
        before, after = olds[wid], news[wid]
        rows: list[str] = []
        if [j.id for j in before.jobs] != [j.id for j in after.jobs]:
            order = " -> ".join(j.id for j in before.jobs)
            rows.append(f"    jobs: {order} -> {' -> '.join(j.id for j in after.jobs)}")
        if _options(before) != _options(after):
            rows.append(f"    options: {_options(before)} -> {_options(after)}")
        jobs_before = {j.id: j for j in before.jobs}
        jobs_after = {j.id: j for j in after.jobs}
        for jid, job in jobs_after.items():
            if jid not in jobs_before:
                rows.append(f"    job {jid}: added")
                continue
            changes = _job_changes(jobs_before[jid], job)
            if changes:
                rows.append(f"    job {jid}:")
                rows += [f"      {c}" for c in changes]
        rows += [f"    job {jid}: removed" for jid in jobs_before if jid not in jobs_after]
        if rows:
            out.append(f"  workflow {wid}:")
            out += rows
    return out


def _options(wf: ir.Workflow) -> str:
    shown = [f"{i.option}" + ("" if i.required else f"={i.default!r}") for i in wf.inputs]
    return ", ".join(shown) or "(none)"


def _job_changes(old: ir.Job, new: ir.Job) -> list[str]:
    before, after = _settings(old), _settings(new)
    rows = []
    if old.component != new.component:
        rows.append(f"component: {old.component} -> {new.component}")
    for key in [*before, *(k for k in after if k not in before)]:
        a, b = before.get(key, "(not set)"), after.get(key, "(not set)")
        if a != b:
            rows.append(f"{key}: {a} -> {b}")
    return rows


def _settings(job: ir.Job) -> dict[str, str]:
    """Every setting of a job as plan shows it, then the derived ones of a trainer."""
    out: dict[str, str] = {}
    for key, value in job.fields.items():
        if key == "distributed" and isinstance(value, ir.Lit) and isinstance(value.value, dict):
            for dk, dv in value.value.items():
                out[f"distributed.{dk}"] = repr(dv)
            continue
        out[key] = show(value)
    if job.kind == "train":
        out.update(derived(job))
    return out


def derived(job: ir.Job) -> dict[str, str]:
    """What follows from several settings: processes, effective batch size, precision."""

    def val(key: str) -> Any:
        return ir.lit(job.fields[key]) if key in job.fields else None

    dist = val("distributed") or {}
    procs = dist.get("num_processes")
    machines = dist.get("num_machines") or 1
    strategy = dist.get("strategy") or "none"
    if isinstance(procs, int):
        total: int | None = procs * machines
        processes = f"{total} ({strategy})"
    else:
        total = None
        each = "one per GPU, 1 without one"
        processes = f"{each} ({strategy})" if machines == 1 else f"{each}, x {machines} machines"
    batch, accum = val("per_device_train_batch_size"), val("gradient_accumulation_steps")
    effective = "unknown"
    if isinstance(batch, int) and isinstance(accum, int):
        if total is not None:
            effective = f"{batch * accum * total} ({batch} x {accum} x {total} processes)"
        else:
            effective = f"{batch * accum} x processes ({batch} x {accum} per process)"
    precision = "bf16" if val("bf16") is True else "fp16" if val("fp16") is True else "fp32"
    quant = val("quantization")
    if isinstance(quant, str):
        precision += f", weights {quant}"
    return {
        "(derived) processes": processes,
        "(derived) effective batch size": effective,
        "(derived) precision": precision,
    }


def _renamed(path: Path, name: str, tmp: Path) -> tuple[Path, str]:
    """A copy of OLD under NEW's file name: the generated files name their config."""
    try:
        data = path.read_bytes()
    except OSError:
        return path, str(path)  # the front end reports it
    copy = tmp / name
    copy.write_bytes(data)
    return copy, str(path)


def _from_git(rev: str, config: Path, tmp: Path) -> tuple[Path, str]:
    """The config as it was at ``rev``: ``git show REV:path``, path from the repository root."""
    if not config.is_file():
        raise _RefusedError(f"cannot read {config}")
    here = config.resolve().parent
    try:
        top = subprocess.run(
            ["git", "rev-parse", "--show-toplevel"],
            cwd=here,
            capture_output=True,
            text=True,
            check=False,
        )
    except OSError as exc:
        raise _RefusedError(f"cannot run git ({exc.strerror or exc})") from None
    if top.returncode != 0:
        raise _RefusedError(f"{config} is not in a git repository")
    root = Path(top.stdout.strip()).resolve()
    rel = config.resolve().relative_to(root).as_posix()
    shown = subprocess.run(
        ["git", "show", f"{rev}:{rel}"], cwd=root, capture_output=True, check=False
    )
    if shown.returncode != 0:
        reason = shown.stderr.decode("utf-8", "replace").strip().splitlines()
        raise _RefusedError(f"git show {rev}:{rel}: {reason[-1] if reason else 'failed'}")
    # the same file name, so that everything generated from it reads the same
    old = tmp / config.name
    old.write_bytes(shown.stdout)
    return old, f"{rev}:{rel}"
