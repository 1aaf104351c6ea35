"""GRPO's reward functions: TRL's named rewards, the user's reward files, and their checks.

A reward is a TRL reward (``trl.rewards``), by name, with its arguments where it is a
factory, or a function of a Python file of the user's, which is copied into the bundle:
the file's syntax and the function's presence are checked from its AST, never imported.
"""

from __future__ import annotations

import ast
import keyword
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mccompile import ir
from mccompile.diagnostics import suggest
from mccompile.tasks.base import Checks, Where, value


@dataclass(frozen=True)
class NamedReward:
    """A reward of ``trl.rewards``: its function, or the factory that makes it."""

    function: str  # what the program imports from trl.rewards
    factory: bool
    args: tuple[tuple[str, str, Any], ...] = ()  # (name, "integer" | "number", default or REQUIRED)
    chat: bool = False  # reads completions as chat turns ([{"role", "content"}])
    columns: tuple[str, ...] = ()  # dataset columns it reads
    needs: str | None = None  # an extra package


REQUIRED = object()


NAMED: dict[str, NamedReward] = {
    "accuracy_reward": NamedReward(
        "accuracy_reward", False, chat=True, columns=("solution",), needs="math-verify"
    ),
    "reasoning_accuracy_reward": NamedReward(
        "reasoning_accuracy_reward", False, chat=True, columns=("solution",), needs="math-verify"
    ),
    "think_format_reward": NamedReward("think_format_reward", False, chat=True),
    "cosine_scaled_reward": NamedReward(
        "get_cosine_scaled_reward",
        True,
        (
            ("max_len", "integer", REQUIRED),
            ("min_value_wrong", "number", -1.0),
            ("max_value_wrong", "number", -0.5),
            ("min_value_correct", "number", 0.5),
            ("max_value_correct", "number", 1.0),
        ),
        chat=True,
        columns=("solution",),
        needs="math-verify",
    ),
    "repetition_penalty_reward": NamedReward(
        "get_repetition_penalty_reward",
        True,
        (("ngram_size", "integer", 3), ("max_penalty", "number", -1.0)),
    ),
    "soft_overlong_punishment": NamedReward(
        "get_soft_overlong_punishment",
        True,
        (("max_completion_len", "integer", REQUIRED), ("soft_punish_cache", "integer", REQUIRED)),
    ),
}


_TAKEN_MODULES = {
    "train",
    "prepare",
    "torch",
    "transformers",
    "datasets",
    "accelerate",
    "trl",
    "peft",
    "bitsandbytes",
    "vllm",
    "numpy",
    "math_verify",
}


@dataclass(frozen=True)
class Reward:
    """One reward function as the template writes it."""

    label: str  # its name in the logs (rewards/<label>/mean)
    origin: str  # "trl" or the bundled file's name
    function: str  # imported from trl.rewards or from the bundled module
    module: str  # trl.rewards or the bundled module
    factory: bool
    args: tuple[tuple[str, Any], ...]  # every factory argument, defaults written out
    chat: bool  # reads completions as chat turns
    columns: tuple[str, ...]  # dataset columns it needs


def entries(job: ir.Job) -> list[Any]:
    entries = value(job, "reward_functions")
    return list(entries) if isinstance(entries, list) else []


def rewards(job: ir.Job) -> list[Reward]:
    """The reward entries of a checked config, in order, with unique labels."""
    out: list[Reward] = []
    seen: dict[str, int] = {}
    for written in entries(job):
        entry = {"name": written} if isinstance(written, str) else written
        if "file" in entry:
            stem = Path(str(entry["file"])).stem
            base = str(entry["function"])
            reward = Reward(base, Path(str(entry["file"])).name, base, stem, False, (), False, ())
        else:
            base = str(entry["name"])
            spec = NAMED[base]
            args = tuple((n, entry.get(n, default)) for n, _, default in spec.args)
            reward = Reward(
                base, "trl", spec.function, "trl.rewards", spec.factory, args, spec.chat,
                spec.columns,
            )  # fmt: skip
        seen[base] = seen.get(base, 0) + 1
        if seen[base] > 1:
            reward = Reward(**{**reward.__dict__, "label": f"{base}_{seen[base]}"})
        out.append(reward)
    return out


def reward_files(job: ir.Job) -> dict[str, str]:
    """Bundled file name -> the path written in the config."""
    return {
        Path(str(e["file"])).name: str(e["file"])
        for e in entries(job)
        if isinstance(e, dict) and isinstance(e.get("file"), str)
    }


def _check_name(c: Checks, name: str, at: tuple[Any, ...], suggest: Any) -> bool:
    if name in NAMED:
        return True
    plain = name.removeprefix("get_")
    hint = suggest(plain, NAMED) if plain not in NAMED else f" (did you mean '{plain}'?)"
    c.error(
        "reward",
        f"unknown TRL reward '{name}'{hint}; the TRL rewards are {', '.join(NAMED)}, or give"
        " {file: ./rewards.py, function: NAME}",
        at,
    )
    return False


def _check_named_entry(c: Checks, entry: dict[str, Any], at: tuple[Any, ...], suggest: Any) -> None:
    name = entry["name"]
    if not isinstance(name, str):
        c.error("reward", "'name' of a reward is a TRL reward's name", (*at, "name"))
        return
    if not _check_name(c, name, (*at, "name"), suggest):
        return
    spec = NAMED[name]
    known = {n: (kind, default) for n, kind, default in spec.args}
    for key, arg in entry.items():
        if key == "name":
            continue
        if key not in known:
            takes = f"takes {', '.join(known)}" if known else "takes no arguments"
            c.error(
                "reward",
                f"unknown argument '{key}' of reward '{name}'{suggest(key, known)}"
                f" ({name} {takes})",
                (*at, key),
            )
            continue
        kind = known[key][0]
        ok = isinstance(arg, int) if kind == "integer" else isinstance(arg, (int, float))
        if not ok or isinstance(arg, bool):
            word = "an integer" if kind == "integer" else "a number"
            c.error("type", f"'{key}' of reward '{name}' must be {word}, got {arg!r}", (*at, key))
    for key, (_kind, default) in known.items():
        if default is REQUIRED and key not in entry:
            c.error("reward", f"reward '{name}' needs '{key}'", (*at, "name"))
    penalty = entry.get("max_penalty")
    if isinstance(penalty, (int, float)) and penalty > 0:
        c.error("range", "max_penalty is a penalty: 0 or below", (*at, "max_penalty"))
    top, cache = entry.get("max_completion_len"), entry.get("soft_punish_cache")
    if isinstance(top, int) and isinstance(cache, int) and not 0 <= cache <= top:
        c.error(
            "range",
            "soft_punish_cache must be between 0 and max_completion_len",
            (*at, "soft_punish_cache"),
        )


def _check_file_entry(
    c: Checks,
    entry: dict[str, Any],
    at: tuple[Any, ...],
    root: Path,
    names: dict[str, str],
    suggest: Any,
) -> None:
    for key in entry:
        if key not in ("file", "function"):
            hint = suggest(key, ["file", "function"])
            extra = "; a TRL reward is written {name: ...}" if key == "name" else ""
            c.error(
                "reward",
                f"unknown key '{key}' in a reward file entry{hint} (it takes file and"
                f" function){extra}",
                (*at, key),
            )
    for key in ("file", "function"):
        if not isinstance(entry.get(key), str):
            what = "missing" if key not in entry else "must be text in"
            c.error("reward", f"'{key}' {what} the reward entry (file: and function:)", at)
            return
    file, function = entry["file"], entry["function"]
    path = Path(file)
    where_file = (*at, "file")
    if path.suffix != ".py" or not _plain_name(path.stem) or path.is_absolute():
        c.error(
            "reward-file",
            f"reward file '{file}': a relative path to a .py file whose name is a Python"
            " identifier (the program imports it)",
            where_file,
        )
        return
    if path.stem in _TAKEN_MODULES or path.stem in sys.stdlib_module_names:
        c.error(
            "reward-file",
            f"reward file '{file}': the module name '{path.stem}' is taken (by the program or a"
            " module it imports); rename the file",
            where_file,
        )
        return
    if names.get(path.name, file) != file:
        c.error(
            "reward-file",
            f"reward files '{names[path.name]}' and '{file}' share the name {path.name};"
            " the bundle holds them side by side",
            where_file,
        )
        return
    names[path.name] = file
    full = root / path
    try:
        source = full.read_text(encoding="utf-8")
    except FileNotFoundError:
        c.error(
            "reward-file", f"reward file '{file}' does not exist (beside the config)", where_file
        )
        return
    except (OSError, UnicodeDecodeError) as exc:
        c.error("reward-file", f"cannot read reward file '{file}': {exc}", where_file)
        return
    try:
        tree = ast.parse(source, filename=path.name)
    except SyntaxError as exc:
        c.error(
            "reward-file",
            f"reward file '{file}' has a syntax error at {path.name}:{exc.lineno}:"
            f"{exc.offset or 0}: {exc.msg}",
            where_file,
        )
        return
    defined = _top_level(tree)
    where_function = (*at, "function")
    if function not in defined:
        functions = [n for n, node in defined.items() if node is not None]
        listed = f" (its functions: {', '.join(functions)})" if functions else ""
        c.error(
            "reward-file",
            f"reward file '{file}' defines no function '{function}'"
            f"{suggest(function, defined) or listed}",
            where_function,
        )
        return
    if not _plain_name(function):
        c.error(
            "reward-file", f"reward function '{function}': name an ASCII identifier", where_function
        )
        return
    node = defined[function]
    if isinstance(node, ast.AsyncFunctionDef):
        c.error(
            "reward-file",
            f"reward function '{function}' ({path.name}:{node.lineno}) is async; the program"
            " calls its rewards one after the other: write a plain def",
            where_function,
        )
    elif node is not None and node.args.kwarg is None:
        c.error(
            "reward-file",
            f"reward function '{function}' ({path.name}:{node.lineno}) must take **kwargs: TRL"
            " calls it with prompts, completions, completion_ids and every other column",
            where_function,
        )


def _plain_name(name: str) -> bool:
    """An ASCII identifier that is not a keyword: usable as written in an import."""
    return name.isascii() and name.isidentifier() and not keyword.iskeyword(name)


def _top_level(tree: ast.Module) -> dict[str, ast.FunctionDef | ast.AsyncFunctionDef | None]:
    """Names bound at the top of a module: functions (their node), other bindings (None)."""
    out: dict[str, ast.FunctionDef | ast.AsyncFunctionDef | None] = {}
    for stmt in tree.body:
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
            out[stmt.name] = stmt
        elif isinstance(stmt, ast.ClassDef):
            out[stmt.name] = None
        elif isinstance(stmt, (ast.Assign, ast.AnnAssign)):
            targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
            for target in targets:
                if isinstance(target, ast.Name):
                    out[target.id] = None
        elif isinstance(stmt, (ast.Import, ast.ImportFrom)):
            for alias in stmt.names:
                out[(alias.asname or alias.name).split(".")[0]] = None
    return out


def check_overlong(c: Checks, job: ir.Job, where: Where) -> None:
    longest = value(job, "max_completion_length")
    for i, entry in enumerate(entries(job)):
        if not (isinstance(entry, dict) and entry.get("name") == "soft_overlong_punishment"):
            continue
        top, cache = entry.get("max_completion_len"), entry.get("soft_punish_cache")
        if not (isinstance(longest, int) and isinstance(top, int) and isinstance(cache, int)):
            continue
        if top - cache >= longest:
            c.warning(
                "no-effect",
                f"soft_overlong_punishment never punishes: completions end at"
                f" max_completion_length {longest}, within max_completion_len -"
                f" soft_punish_cache = {top - cache}",
                (*where("reward_functions"), i, "max_completion_len"),
            )


def check_rewards(c: Checks, job: ir.Job, where: Where) -> int | None:
    """Check each reward entry; the number of entries (None where there is no list)."""
    entries_value = job.fields.get("reward_functions")
    base = where("reward_functions")
    if not isinstance(entries_value, ir.Lit) or entries_value.value is None:
        if isinstance(entries_value, ir.Lit):
            c.error(
                "missing-key",
                f"task: grpo needs reward_functions in component '{job.component}' (a list of TRL"
                f" reward names, or {{file: ./rewards.py, function: NAME}})",
                where("task"),
            )
        else:
            c.error("literal", "reward_functions must be written in the config", base)
        return None
    root = c.base.resolve()
    names: dict[str, str] = {}
    count = 0
    for i, entry in enumerate(entries_value.value):
        at = (*base, i)
        count += 1
        if isinstance(entry, str):
            _check_name(c, entry, at, suggest)
            if entry in NAMED and any(d is REQUIRED for _, _, d in NAMED[entry].args):
                need = ", ".join(f"{n}: N" for n, _, d in NAMED[entry].args if d is REQUIRED)
                c.error(
                    "reward",
                    f"reward '{entry}' is a factory with arguments to give: write"
                    f" {{name: {entry}, {need}}}",
                    at,
                )
        elif isinstance(entry, dict):
            if "file" in entry or "function" in entry:
                _check_file_entry(c, entry, at, root, names, suggest)
            elif "name" in entry:
                _check_named_entry(c, entry, at, suggest)
            else:
                c.error(
                    "reward",
                    "a reward entry needs 'name' (a TRL reward) or 'file' and 'function'",
                    at,
                )
        else:
            c.error("reward", "a reward entry is a name or a mapping", at)
    return count
