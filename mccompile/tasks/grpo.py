"""task: grpo — online RL with GRPO (TRL's GRPOTrainer) and reward functions a config names.

Its keys, its program model and its checks of batches and vLLM; the reward entries (TRL's
named rewards and the user's reward files) are in :mod:`mccompile.tasks.grpo_rewards`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mccompile import ir
from mccompile.tasks.base import Checks, Where, bool_field, number_field, text_field, value
from mccompile.tasks.grpo_rewards import (
    NAMED,
    Reward,
    check_overlong,
    check_rewards,
    entries,
    reward_files,
    rewards,
)

NAME = "grpo"
DESCRIPTION = "online reinforcement learning with GRPO and reward functions"
TEMPLATE = "grpo.py.jinja"
REQUIREMENTS = ("trl",)
IMPORTS: tuple[str, ...] = ()

LOSS_TYPES = ("grpo", "dr_grpo", "dapo", "bnpo", "cispo", "sapo", "luspo", "vespo")
SCALE_REWARDS = ("group", "batch", "none")
# TRL 1.16 supports vLLM 0.22 to 0.31 (its vllm extra), and math-verify from 0.5.2
PINS = {"vllm": "vllm>=0.22,<=0.31", "math-verify": "math-verify>=0.5.2"}


# names a reward file's module may not take: the program's own files and what it imports


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


def bundle_files(job: ir.Job, root: str) -> dict[str, str]:
    """The files copied beside the program: each reward file, by its name."""
    return {
        name: (Path(root) / path).read_text(encoding="utf-8")
        for name, path in sorted(reward_files(job).items())
    }


def extra_requirements(job: ir.Job) -> tuple[str, ...]:
    needs: list[str | None] = []
    for entry in entries(job):
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
    count = check_rewards(c, job, where)
    if count is None:
        return
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
    check_overlong(c, job, where)


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
