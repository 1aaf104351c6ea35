"""task: grpo — online RL with GRPO (TRL's GRPOTrainer) and reward functions a config names.

A reward is a TRL reward (``trl.rewards``), by name, with its arguments where it is a
factory, or a function of a Python file of the user's, which is copied into the bundle:
the file's syntax and the function's presence are checked from its AST, never imported.
"""

from __future__ import annotations

import ast
import keyword
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mccompile import ir
from mccompile.tasks.base import Checks, Where, bool_field, number_field, text_field, value

NAME = "grpo"
DESCRIPTION = "online reinforcement learning with GRPO and reward functions"
TEMPLATE = "grpo.py.jinja"
REQUIREMENTS = ("trl",)
IMPORTS: tuple[str, ...] = ()

LOSS_TYPES = ("grpo", "dr_grpo", "dapo", "bnpo", "cispo", "sapo", "luspo", "vespo")
SCALE_REWARDS = ("group", "batch", "none")
# TRL 1.16 supports vLLM 0.22 to 0.31 (its vllm extra), and math-verify from 0.5.2
PINS = {"vllm": "vllm>=0.22,<=0.31", "math-verify": "math-verify>=0.5.2"}


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
# names a reward file's module may not take: the program's own files and what it imports
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


_NAMES = "A TRL reward: " + ", ".join(NAMED) + "."


def _int_field(description: str, default: Any, minimum: int = 1) -> dict[str, Any]:
    return {
        "description": description,
        "anyOf": [{"type": "integer", "minimum": minimum}, {"$ref": "#/$defs/expression"}],
        "default": default,
    }


def _enum_field(description: str, choices: tuple[str, ...], default: str) -> dict[str, Any]:
    return {
        "description": description,
        "anyOf": [{"enum": list(choices)}, {"$ref": "#/$defs/expression"}],
        "default": default,
    }


FIELDS: dict[str, Any] = {
    "prompt_column": text_field(
        "GRPO: the column of prompts: text, or chat turns ({role, content}); every other column"
        " reaches the reward functions as a keyword argument.",
        "prompt",
    ),
    "reward_functions": {
        "description": "GRPO: the rewards, each the name of a TRL reward (a mapping with its"
        " arguments where it is a factory: {name: soft_overlong_punishment, max_completion_len:"
        " 256, soft_punish_cache: 32}) or {file: ./rewards.py, function: NAME}.",
        "anyOf": [
            {
                "type": "array",
                "minItems": 1,
                "items": {
                    "anyOf": [
                        {"type": "string", "description": _NAMES},
                        {
                            "type": "object",
                            "properties": {
                                "name": {"type": "string", "description": _NAMES},
                                "file": {"type": "string"},
                                "function": {"type": "string"},
                            },
                        },
                    ]
                },
            },
            {"type": "null"},
        ],
        "default": None,
    },
    "reward_weights": {
        "description": "GRPO: one weight per reward function (null: each weighs 1.0).",
        "anyOf": [{"type": "array", "items": {"type": "number"}}, {"type": "null"}],
        "default": None,
    },
    "num_generations": _int_field("GRPO: completions sampled per prompt (a group).", 8, 2),
    "max_completion_length": _int_field("GRPO: longest completion, in tokens.", 512),
    "temperature": number_field("GRPO: sampling temperature.", 1.0, exclusiveMinimum=0),
    "top_p": number_field(
        "GRPO: nucleus sampling share (1.0: off).", 1.0, exclusiveMinimum=0, maximum=1
    ),
    "beta": number_field(
        "GRPO: weight of the KL penalty to the reference model (0.0: no reference model).",
        0.0,
        minimum=0,
    ),
    "loss_type": _enum_field("GRPO: the loss formulation (TRL's).", LOSS_TYPES, "dapo"),
    "num_iterations": _int_field("GRPO: optimization passes over each generated batch.", 1),
    "epsilon": number_field("GRPO: clipping range of the policy ratio.", 0.2, exclusiveMinimum=0),
    "scale_rewards": _enum_field(
        "GRPO: scale advantages by the reward std of the group, the batch, or none.",
        SCALE_REWARDS,
        "group",
    ),
    "generation_batch_size": {
        "description": "GRPO: completions generated at once (null: per_device_train_batch_size x"
        " processes x gradient_accumulation_steps).",
        "anyOf": [{"type": ["integer", "null"], "minimum": 1}, {"$ref": "#/$defs/expression"}],
        "default": None,
    },
    "use_vllm": bool_field("GRPO: generate with vLLM (CUDA; needs vllm).", False),
    "vllm_mode": _enum_field(
        "GRPO: colocate (vLLM in the training processes) or server (trl vllm-serve).",
        ("colocate", "server"),
        "colocate",
    ),
}

# keys that are code of the program (reward_functions()), not a constant of its settings block
NOT_SETTINGS = ("reward_functions",)

SETTING_GROUPS: dict[str, list[str]] = {
    "Data": ["prompt_column", "validation_split"],
    "GRPO": [
        "reward_weights",
        "num_generations",
        "max_completion_length",
        "temperature",
        "top_p",
        "beta",
        "loss_type",
        "num_iterations",
        "epsilon",
        "scale_rewards",
        "generation_batch_size",
        "use_vllm",
        "vllm_mode",
    ],
    # no group_by_length: GRPO's sampler repeats each prompt num_generations times
    "Speed": [
        "use_liger_kernel",
        "torch_compile",
        "dataloader_num_workers",
        "dataset_num_proc",
        "ddp_timeout",
    ],
}


def data_format(job: ir.Job) -> str:
    return "prompt"


def hidden(fmt: str) -> tuple[str, ...]:
    return ("reward_weights",)  # shown where the config gives them


# -- reward entries -----------------------------------------------------------------------


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


def _entries(job: ir.Job) -> list[Any]:
    entries = value(job, "reward_functions")
    return list(entries) if isinstance(entries, list) else []


def rewards(job: ir.Job) -> list[Reward]:
    """The reward entries of a checked config, in order, with unique labels."""
    out: list[Reward] = []
    seen: dict[str, int] = {}
    for written in _entries(job):
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
        for e in _entries(job)
        if isinstance(e, dict) and isinstance(e.get("file"), str)
    }


def bundle_files(job: ir.Job, root: str) -> dict[str, str]:
    """The files copied beside the program: each reward file, by its name."""
    return {
        name: (Path(root) / path).read_text(encoding="utf-8")
        for name, path in sorted(reward_files(job).items())
    }


def extra_requirements(job: ir.Job) -> tuple[str, ...]:
    needs: list[str | None] = []
    for entry in _entries(job):
        name = entry if isinstance(entry, str) else entry.get("name")
        if isinstance(name, str) and name in NAMED and NAMED[name].needs:
            needs.append(NAMED[name].needs)
    if value(job, "use_vllm") is True:
        needs.append("vllm")
    return tuple(PINS[n] for n in dict.fromkeys(n for n in needs if n))


# -- the program model --------------------------------------------------------------------


@dataclass(frozen=True)
class GRPOProgram:
    """What grpo.py.jinja reads as ``p.task``."""

    name: str
    rewards: tuple[Reward, ...]
    trl_imports: tuple[str, ...]  # from trl.rewards import ...
    file_imports: tuple[tuple[str, tuple[str, ...]], ...]  # (module, functions)
    weights: tuple[float, ...] | None  # written out when the config gives none
    chat_rewards: bool  # some reward reads chat turns
    columns: tuple[str, ...]  # columns the named rewards read
    vllm: bool  # use_vllm is true, or set at run time
    vllm_server: bool
    check_batch: bool  # the generation batch is checked at run time (unknown at compile time)


def program_model(job: ir.Job, values: Mapping[str, Any], ref: Mapping[str, str]) -> GRPOProgram:
    found = rewards(job)
    files: dict[str, list[str]] = {}
    for r in found:
        if r.origin != "trl":
            files.setdefault(r.module, [])
            if r.function not in files[r.module]:
                files[r.module].append(r.function)
    given = values.get("reward_weights")
    return GRPOProgram(
        name=NAME,
        rewards=tuple(found),
        trl_imports=tuple(sorted({r.function for r in found if r.origin == "trl"})),
        file_imports=tuple((m, tuple(sorted(f))) for m, f in sorted(files.items())),
        weights=None if given is not None else tuple(1.0 for _ in found),
        chat_rewards=any(r.chat for r in found),
        columns=tuple(dict.fromkeys(c for r in found for c in r.columns)),
        vllm=values.get("use_vllm") is not False,
        vllm_server=values.get("vllm_mode") != "colocate",
        check_batch=not _batch_known(job),
    )


def _batch_known(job: ir.Job) -> bool:
    """Whether the compile-time checks decided the generation batch."""
    keys = ("num_generations", "per_device_train_batch_size", "gradient_accumulation_steps")
    literal = all(isinstance(job.fields.get(k, ir.Lit(None)), ir.Lit) for k in keys)
    generation = job.fields.get("generation_batch_size", ir.Lit(None))
    return literal and isinstance(generation, ir.Lit) and _processes(job) is not None


# -- checks -------------------------------------------------------------------------------


def check(c: Checks, job: ir.Job, where: Where) -> None:
    from mccompile.diagnostics import suggest

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
        return
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
    weights = value(job, "reward_weights")
    if isinstance(weights, list) and len(weights) != count:
        c.error(
            "reward-weights",
            f"reward_weights has {len(weights)} weights for {count} reward functions;"
            " give one weight per function",
            where("reward_weights"),
        )
    _check_batches(c, job, where)
    if "vllm_mode" in job.explicit and value(job, "use_vllm") is False:
        c.warning("no-effect", "vllm_mode has no effect without use_vllm: true", where("vllm_mode"))
    for key in ("max_seq_length", "group_by_length"):
        if key in job.explicit:
            c.warning(
                "no-effect",
                f"{key} has no effect with task: grpo (completions end at max_completion_length)",
                where(key),
            )
    _check_overlong(c, job, where)


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


def _check_named_entry(
    c: Checks, entry: dict[str, Any], at: tuple[Any, ...], suggest: Any
) -> None:
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


def _processes(job: ir.Job) -> int | None:
    """Processes of the run, where the config fixes them."""
    dist = value(job, "distributed") or {}
    if dist.get("strategy", "auto") == "none":
        return 1
    procs, machines = dist.get("num_processes"), dist.get("num_machines", 1)
    return procs * machines if isinstance(procs, int) and isinstance(machines, int) else None


def _check_batches(c: Checks, job: ir.Job, where: Where) -> None:
    group = value(job, "num_generations")
    batch = value(job, "per_device_train_batch_size")
    accumulation = value(job, "gradient_accumulation_steps")
    generation = value(job, "generation_batch_size")
    procs = _processes(job)
    if not isinstance(group, int):
        return
    if not isinstance(job.fields.get("generation_batch_size", ir.Lit(None)), ir.Lit):
        return  # set at run time: the program checks it
    shown = "1 process" if procs == 1 else f"{procs} processes"
    if isinstance(generation, int):
        if generation % group:
            c.error(
                "batch",
                f"generation_batch_size {generation} is not a multiple of num_generations"
                f" {group}: a generation batch holds whole groups",
                where("generation_batch_size"),
            )
        if isinstance(batch, int) and procs is not None and generation % (batch * procs):
            c.error(
                "batch",
                f"generation_batch_size {generation} is not a multiple of the global batch"
                f" (per_device_train_batch_size {batch} x {shown} = {batch * procs})",
                where("generation_batch_size"),
            )
    elif isinstance(batch, int) and isinstance(accumulation, int) and procs is not None:
        total = batch * procs * accumulation
        if total % group:
            c.error(
                "batch",
                f"the generation batch (per_device_train_batch_size {batch} x {shown} x"
                f" gradient_accumulation_steps {accumulation} = {total} completions) is not a"
                f" multiple of num_generations {group}: each prompt's {group} completions must"
                " fit in one batch; change one of them, or set generation_batch_size",
                where("num_generations"),
            )
    has_eval = "eval_dataset" in job.explicit or "validation_split" in job.explicit
    evaluation = value(job, "per_device_eval_batch_size")
    known = isinstance(evaluation, int) and procs is not None
    if has_eval and known and (evaluation * procs) % group:
        c.error(
            "batch",
            f"the evaluation batch (per_device_eval_batch_size {evaluation} x {shown}) is not a"
            f" multiple of num_generations {group}",
            where("per_device_eval_batch_size"),
        )


def _check_overlong(c: Checks, job: ir.Job, where: Where) -> None:
    longest = value(job, "max_completion_length")
    for i, entry in enumerate(_entries(job)):
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
