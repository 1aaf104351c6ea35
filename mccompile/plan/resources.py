"""The resource plan of a trainer, before launch: parameters, batch, tokens, GPU memory.

``mccompile plan`` and the bundle README show it. The arithmetic is in plan/parameters.py
(parameter counts, exact), plan/memory.py (bytes per part) and plan/activations.py
(the activation estimate); this module reads a trainer job into that arithmetic, suggests
what to change when it does not fit a GPU, and writes the plan as text.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from mccompile import ir
from mccompile.plan.activations import activation_bytes
from mccompile.plan.architectures import Architecture, known
from mccompile.plan.gpus import GPUS, parse_gpu_memory
from mccompile.plan.memory import (
    CUDA_CONTEXT_BYTES,
    FRAGMENTATION,
    GiB,
    MemoryPlan,
    Setup,
    bnb4_bytes,
    estimate_memory,
    trainable_parameters,
)
from mccompile.plan.parameters import count_parameters, find_architecture, lora_trainable, modules

__all__ = [
    "GPUS",
    "GiB",
    "Setup",
    "TrainerPlan",
    "activation_bytes",
    "bnb4_bytes",
    "count_parameters",
    "estimate_memory",
    "find_architecture",
    "format_markdown",
    "format_plan",
    "lora_trainable",
    "modules",
    "parse_gpu_memory",
    "plan_config",
    "plan_trainer",
    "setup_from_job",
]





@dataclass
class Suggestion:
    change: str
    allocated: int
    total: int
    fits: bool
    cpu_memory: int = 0  # CPU memory the offloaded parts need, per process


@dataclass
class TrainerPlan:
    """The resource plan of one trainer: plain data, for any formatter."""

    job: str
    model: str
    architecture: str | None  # where the architecture came from; None: unknown
    unknown: str | None = None  # why the size cannot be known
    total_params: int | None = None
    trainable_params: int | None = None
    per_device_batch: int | None = None
    accumulation: int | None = None
    processes: int | str | None = None
    machines: int = 1
    max_seq_length: int | None = None
    packing: bool | str = False  # true, false or auto
    # packed or padding-free rows with attn_implementation null: the bytes per GPU more when
    # the GPU has no variable-length kernel (sdpa over each joined batch)
    without_varlen: int | None = None
    strategy: str = "none"
    memory: dict[int, dict[str, Any]] = field(default_factory=dict)  # world -> memory plan
    gpu_memory: tuple[str, int] | None = None
    fits: bool | None = None
    suggestions: list[Suggestion] = field(default_factory=list)

    def effective_batch(self, world: int) -> int:
        return (self.per_device_batch or 0) * (self.accumulation or 0) * world

    def tokens_per_step(self, world: int) -> int:
        return self.effective_batch(world) * (self.max_seq_length or 0)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def setup_from_job(job: ir.Job) -> tuple[Setup, list[str]]:
    """The estimate's inputs from a trainer's fields; values given at run time are named."""
    f = job.fields
    later: list[str] = []

    def get(name: str, default: Any) -> Any:
        value = f.get(name)
        if value is None:
            return default
        if not isinstance(value, ir.Lit):
            later.append(name)
            return default
        return default if value.value is None else value.value

    dist = get("distributed", {}) or {}
    lora = "lora_r" in f  # the LoRA fields are there when peft_adapter is
    chosen = get("attn_implementation", None)
    attn = chosen or "sdpa"
    packing = get("packing", False)
    labels = get("labels", None)
    s = Setup(
        task=str(get("task", "sft")),
        lora=lora,
        lora_r=int(get("lora_r", 8)),
        lora_dropout=float(get("lora_dropout", 0.05)),
        lora_targets=get("lora_target_modules", "all-linear"),
        use_dora=bool(get("use_dora", False)),
        lora_modules_to_save=get("lora_modules_to_save", None),
        lora_bias=str(get("lora_bias", "none")),
        quantization=get("quantization", None),
        double_quant=bool(get("bnb_4bit_use_double_quant", True)),
        bf16=bool(get("bf16", False)),
        fp16=bool(get("fp16", False)),
        optimizer=str(get("optimizer", "adamw_torch")),
        batch=int(get("per_device_train_batch_size", 8)),
        accumulation=int(get("gradient_accumulation_steps", 1)),
        seq=int(get("max_seq_length", 512)),
        checkpointing=bool(get("gradient_checkpointing", False)),
        attention=str(attn),
        joined=joins_rows(get("task", "sft"), packing, get("padding_free", False)),
        # null: the program takes a variable-length kernel where the GPU has one
        varlen=chosen is None or str(attn).startswith("flash_attention") or "/" in str(attn),
        liger=bool(get("use_liger_kernel", False)),
        strategy=str(dist.get("strategy", "none")),
        num_processes=dist.get("num_processes", "auto"),
        num_machines=int(dist.get("num_machines", 1)),
        zero_stage=dist.get("zero_stage"),
        offload=bool(dist.get("offload", False)),
        num_labels=len(labels) if isinstance(labels, list) and labels else 2,
    )
    return s, later


def joins_rows(task: Any, packing: Any, padding_free: Any) -> bool:
    """Whether TRL joins each batch into one sequence: SFT with packing (true or auto: the
    plan assumes the packed case) or padding_free."""
    return task == "sft" and (packing not in (False, None) or padding_free is True)


def worlds(s: Setup) -> list[int]:
    """The process counts to show: one (strategy none), the config's, or 1, 2, 4, 8 for ``auto``."""
    if s.strategy == "none":
        return [1]
    if s.num_processes == "auto":
        return [n * s.num_machines for n in (1, 2, 4, 8)]
    return [int(s.num_processes) * s.num_machines]


def _memory_dict(mp: MemoryPlan) -> dict[str, Any]:
    return {
        "parts": [asdict(p) for p in mp.parts],
        "allocated": mp.allocated,
        "overhead": mp.overhead,
        "total": mp.total,
    }


def suggest(arch: Architecture, s: Setup, world: int, limit: int) -> list[Suggestion]:
    """Changes that lower the estimate, each recomputed, mildest first; stops at the first fit.

    With ``num_processes: auto`` the sharding suggestions assume 8 GPUs per machine.
    """
    tries: list[tuple[str, Setup, int]] = []
    if not s.checkpointing:
        tries.append(("gradient_checkpointing: true", replace(s, checkpointing=True), world))
    cur = replace(s, checkpointing=True)
    b, acc = s.batch, s.accumulation
    while b > 1:
        b //= 2
        acc *= 2
        tries.append(
            (
                f"gradient_checkpointing: true, per_device_train_batch_size: {b},"
                f" gradient_accumulation_steps: {acc} (same effective batch)",
                replace(cur, batch=b, accumulation=acc),
                world,
            )
        )
    small = replace(cur, batch=1, accumulation=s.batch * s.accumulation)
    if s.attention == "eager":
        small = replace(small, attention="sdpa")
        tries.append(("attn_implementation: sdpa (no score matrix kept)", small, world))
    shard_world = 8 * s.num_machines if s.num_processes == "auto" else world
    where = f"over {shard_world} processes" + (
        " (num_processes auto on 8 GPUs)" if s.num_processes == "auto" else ""
    )
    if shard_world > 1 and s.strategy in ("none", "ddp"):
        tries.append(
            (
                f"distributed: {{strategy: fsdp}} {where}",
                replace(small, strategy="fsdp"),
                shard_world,
            )
        )
        tries.append(
            (
                f"distributed: {{strategy: deepspeed, zero_stage: 3}} {where}",
                replace(small, strategy="deepspeed", zero_stage=3),
                shard_world,
            )
        )
    if shard_world > world and s.strategy in ("fsdp", "deepspeed"):
        tries.append((f"the same {where}", small, shard_world))
        world = shard_world
    if s.strategy == "deepspeed" and (s.zero_stage or 2) < 3:
        small = replace(small, zero_stage=3)
        tries.append(("distributed.zero_stage: 3", small, shard_world))
    if s.strategy in ("fsdp", "deepspeed") and not s.offload:
        tries.append(
            ("distributed.offload: true (to CPU memory)", replace(small, offload=True), shard_world)
        )
    if not s.lora:
        small = replace(small, lora=True, lora_r=16, lora_targets="all-linear")
        tries.append(("peft_adapter: lora (LoRA r 16 on all linear layers)", small, world))
    if s.quantization is None:
        tries.append(
            (
                "quantization: nf4 (QLoRA), bf16: true",
                replace(small, quantization="nf4", double_quant=True, bf16=True, lora=True),
                world,
            )
        )
    out: list[Suggestion] = []
    for change, setup, n in tries:
        mp = estimate_memory(arch, setup, n)
        out.append(Suggestion(change, mp.allocated, mp.total, mp.total <= limit, mp.offloaded))
        if mp.total <= limit:
            break
    return out


def plan_trainer(
    job: ir.Job,
    base: Path | None = None,
    gpu_memory: tuple[str, int] | None = None,
    table_only: bool = False,
) -> TrainerPlan:
    """The resource plan of a trainer job (``table_only``: never read a config.json)."""
    s, later = setup_from_job(job)
    model_value = job.fields.get("model")
    model: str | None = None
    if isinstance(model_value, ir.Lit):
        model = str(model_value.value)
    elif isinstance(model_value, ir.EnvRef) and model_value.default:
        model = model_value.default
    plan = TrainerPlan(
        job=job.id,
        model=model or "(given at run time)",
        architecture=None,
        per_device_batch=s.batch,
        accumulation=s.accumulation,
        processes=1 if s.strategy == "none" else s.num_processes,
        machines=s.num_machines,
        max_seq_length=s.seq,
        packing=s.joined and (ir.lit(job.fields.get("packing", ir.Lit(False))) or False),
        strategy=s.strategy,
        gpu_memory=gpu_memory,
    )
    if later:
        plan.unknown = (
            "given at run time: " + ", ".join(later) + " (the config's defaults are assumed)"
        )
    if model is None:
        plan.unknown = "the model is given at run time; the plan cannot know its size"
        return plan
    if table_only:
        found = known(model)
        arch: Architecture | str = (
            replace(found, source=f"built-in table ({model.lower()})")
            if found
            else "not in the built-in table of architectures"
        )
    else:
        arch = find_architecture(model, base)
    if isinstance(arch, str):
        plan.unknown = arch
        return plan
    plan.architecture = arch.source
    mods = modules(arch, s.task, s.num_labels)
    plan.total_params = count_parameters(mods)
    plan.trainable_params = trainable_parameters(mods, s)
    for world in worlds(s):
        plan.memory[world] = _memory_dict(estimate_memory(arch, s, world))
    if s.joined and ir.lit(job.fields.get("attn_implementation", ir.Lit(None))) is None:
        first = worlds(s)[0]
        masked = estimate_memory(arch, replace(s, varlen=False), first).total
        plan.without_varlen = masked - plan.memory[first]["total"]
    if gpu_memory is not None:
        limit = gpu_memory[1]
        first = worlds(s)[0]
        plan.fits = plan.memory[first]["total"] <= limit
        if not plan.fits:
            plan.suggestions = suggest(arch, s, first, limit)
    return plan


def plan_config(
    config: ir.Config, gpu_memory: tuple[str, int] | None = None, table_only: bool = False
) -> list[TrainerPlan]:
    base = Path(config.file).parent
    return [
        plan_trainer(wf.trainer, base, gpu_memory, table_only)
        for wf in config.workflows
        if wf.trainer is not None
    ]


# --------------------------------------------------------------------------- text


def gib(n: int) -> str:
    return f"{n / GiB:.2f} GiB"


def _count(n: int) -> str:
    if n >= 10**9:
        return f"{n:,} ({n / 1e9:.2f}B)"
    if n >= 10**6:
        return f"{n:,} ({n / 1e6:.1f}M)"
    return f"{n:,}"


def format_plan(plan: TrainerPlan, indent: str = "  ") -> list[str]:
    """The plan as text lines (``mccompile plan`` and the bundle README use these)."""
    lines = [f"{indent}resources of trainer {plan.job} (model {plan.model}):"]
    ind = indent + "  "
    if plan.architecture is None:
        lines.append(f"{ind}size unknown: {plan.unknown}")
        return lines
    lines.append(f"{ind}architecture from {plan.architecture}")
    if plan.unknown:
        lines.append(f"{ind}{plan.unknown}")
    total, trainable = plan.total_params or 0, plan.trainable_params or 0
    lines.append(
        f"{ind}parameters: {_count(total)} total, {_count(trainable)} trainable"
        f" ({100 * trainable / max(total, 1):.2f}%)"
    )
    shown = sorted(plan.memory)
    auto = plan.processes == "auto"
    b, acc = plan.per_device_batch, plan.accumulation
    if auto:
        lines.append(
            f"{ind}processes: auto = one per GPU found at launch; figures per number of GPUs"
        )
    packed = {True: ", packed rows are full", "auto": ", packing: auto, as packed: full rows"}.get(
        plan.packing, ""
    )
    for world in shown:
        lines.append(
            f"{ind}with {world} process{'es' if world > 1 else ''}:"
            f" effective batch {b} × {acc} × {world} = {plan.effective_batch(world)} sequences,"
            f" at most {plan.tokens_per_step(world):,} tokens per optimizer step"
            f" (× max_seq_length {plan.max_seq_length}{packed})"
        )
    first = plan.memory[shown[0]]
    lines.append(
        f"{ind}GPU memory per GPU, {shown[0]} process{'es' if shown[0] > 1 else ''}"
        " (exact: arithmetic on the dtypes; ~: estimate):"
    )
    width = max(len(p["name"]) for p in first["parts"])
    for p in first["parts"]:
        mark = " " if p["exact"] else "~"
        lines.append(f"{ind}  {mark} {p['name'].ljust(width)} {gib(p['bytes']):>11}  {p['note']}")
    lines.append(
        f"{ind}  ~ {'overhead'.ljust(width)} {gib(first['overhead']):>11}  "
        f"CUDA context and workspaces {gib(CUDA_CONTEXT_BYTES)} + {FRAGMENTATION:.0%}"
        " allocator fragmentation (not in max_memory_allocated)"
    )
    lines.append(
        f"{ind}  = {'total'.ljust(width)} {gib(first['total']):>11}"
        f"  (allocated {gib(first['allocated'])})"
    )
    if len(shown) > 1:
        per = ", ".join(f"{w}: {gib(plan.memory[w]['total'])}" for w in shown)
        lines.append(f"{ind}total per GPU by number of GPUs: {per}")
    if plan.without_varlen is not None:
        lines.append(f"{ind}attention: {varlen_note(plan)}")
    if plan.gpu_memory is not None:
        label, limit = plan.gpu_memory
        verdict = "fits" if plan.fits else "does not fit"
        lines.append(f"{ind}on {label}: {verdict} ({gib(first['total'])} of {gib(limit)})")
        for sug in plan.suggestions:
            cpu = f" (+ {gib(sug.cpu_memory)} of CPU memory per process)" if sug.cpu_memory else ""
            fits = " — fits" if sug.fits else ""
            lines.append(f"{ind}  - {sug.change}: {gib(sug.total)}{cpu}{fits}")
        if plan.suggestions and not any(s.fits for s in plan.suggestions):
            lines.append(
                f"{ind}  none of these fits; a GPU with more memory or more GPUs is needed"
            )
    return lines


def varlen_note(plan: TrainerPlan) -> str:
    """What packed / padding-free rows get from the program's choice of attention kernel."""
    rows = "packed" if plan.packing else "padding-free"
    b, s = plan.per_device_batch, plan.max_seq_length
    kernel = (
        f"{rows} rows take a variable-length kernel where the GPU has one (flash-attn 3 on"
        " Hopper, flash-attn 2, or a kernels build from the hub), as estimated above"
    )
    if plan.packing == "auto":
        return f"{kernel}; without one, packing: auto does not pack (batches of similar length)"
    return (
        f"{kernel}; without one, sdpa attends across each batch of {b} × {s} tokens as one"
        f" sequence under a block mask: + {gib(plan.without_varlen or 0)} per GPU"
    )


def format_markdown(plan: TrainerPlan) -> list[str]:
    """The plan as Markdown lines for the bundle README (built-in table only: reproducible)."""
    if plan.architecture is None:
        return [
            f"Model `{plan.model}`: {plan.unknown}. `mccompile plan CONFIG` reads the model's"
            " config.json (from its folder or the Hugging Face cache) and shows parameters,"
            " batch, tokens per step and memory per GPU; the build reads no model files, so"
            " that the bundle is the same on every machine."
        ]
    total, trainable = plan.total_params or 0, plan.trainable_params or 0
    shown = sorted(plan.memory)
    first = plan.memory[shown[0]]
    lines = [
        f"Model `{plan.model}` (architecture: {plan.architecture}):"
        f" {_count(total)} parameters, {_count(trainable)} trainable.",
        "",
    ]
    if plan.processes == "auto":
        lines += ["Processes: `auto`, one per GPU found at launch; figures per number of GPUs.", ""]
    lines += ["| GPUs | effective batch | tokens per step (at most) | memory per GPU |"]
    lines += ["| ---: | ---: | ---: | ---: |"]
    for w in shown:
        lines.append(
            f"| {w} | {plan.per_device_batch} × {plan.accumulation} × {w} ="
            f" {plan.effective_batch(w)} | {plan.tokens_per_step(w):,} |"
            f" {gib(plan.memory[w]['total'])} |"
        )
    lines += ["", f"Memory per GPU with {shown[0]} GPU{'s' if shown[0] > 1 else ''}:", ""]
    lines += ["| part | GiB | how |", "| --- | ---: | --- |"]
    for p in first["parts"]:
        mark = "" if p["exact"] else "~"
        lines.append(f"| {p['name']} | {mark}{p['bytes'] / GiB:.2f} | {p['note']} |")
    lines.append(
        f"| overhead | ~{first['overhead'] / GiB:.2f} | CUDA context {gib(CUDA_CONTEXT_BYTES)}"
        f" + {FRAGMENTATION:.0%} allocator fragmentation |"
    )
    lines.append(f"| **total** | **{first['total'] / GiB:.2f}** | ~: estimated; the rest exact |")
    if plan.without_varlen is not None:
        lines += ["", f"Attention: {varlen_note(plan)}."]
    lines += [
        "",
        "`mccompile plan CONFIG --gpu-memory 80GB` says whether it fits and what to change.",
    ]
    return lines
