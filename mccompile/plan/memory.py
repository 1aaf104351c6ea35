"""GPU memory per process of a training setup, by part: weights, gradients, optimizer, activations.

Pure arithmetic on the model's architecture (config.json values) and the trainer's settings;
never imports the training stack, never reaches the network. What is exact and what is an
estimate:

- parameter counts (total, trainable with LoRA / DoRA / modules_to_save) are exact: they are
  the sums transformers and peft build (mccompile/parameters.py; tests compare them with the
  models built on the meta device);
- weight bytes (bf16 / fp32, bitsandbytes 4-bit with its quantization constants, 8-bit with its
  row scales), gradient bytes and optimizer-state bytes are exact arithmetic for the dtypes
  the generated program uses (step counters and other scalars left out);
- activations are an estimate (mccompile/activations.py): the tensors autograd saves for
  backward in transformers' implementation of the decoder layer, counted tensor by tensor in
  the way of Korthikanti et al. 2022, "Reducing Activation Recomputation in Large
  Transformer Models" (section 4.1, which gives ``s·b·h·(34 + 5·a·s/h)`` bytes per layer for
  GPT with fp16 and dropout); here the same count is redone for RMSNorm in float32, SwiGLU /
  GeGLU MLPs, grouped-query attention, no dropout, the loss in float32, and per attention
  kernel (eager keeps the softmax scores, ``a·s²`` per sequence; sdpa / flash keep only q,
  k, v, the output and the log-sum-exp);
- sharding follows the ZeRO paper's accounting (Rajbhandari et al. 2020, "ZeRO: Memory
  Optimizations Toward Training Trillion Parameter Models": stage 1 shards optimizer states,
  2 also gradients, 3 also weights; DeepSpeed keeps fp32 master weights in mixed precision)
  and FSDP's full sharding of all three;
- the overhead is a stated allowance (CUDA context and workspaces, allocator fragmentation),
  not a measurement.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from mccompile.plan.activations import activation_bytes
from mccompile.plan.architectures import Architecture
from mccompile.plan.parameters import (
    Module,
    count_parameters,
    lora_targets,
    lora_trainable,
    modules,
)

GiB = 1024**3
# the stated overhead: CUDA context + cuBLAS / NCCL workspaces, and the caching allocator's
# fragmentation (reserved but not allocated). Neither is in torch.cuda.max_memory_allocated.
CUDA_CONTEXT_BYTES = int(0.75 * GiB)
FRAGMENTATION = 0.10
# bitsandbytes: 4-bit blocks of 64 values; double quantization re-quantizes the block scales
# to 8 bits in blocks of 256 with a shared 256-entry float32 code
BNB4_BLOCK = 64
BNB4_NESTED_BLOCK = 256
# bitsandbytes' 8-bit optimizers keep 32-bit state for tensors smaller than this
BNB_MIN_8BIT_SIZE = 4096
BNB_OPTIM_BLOCK = 256


# --------------------------------------------------------------------------- bytes

DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2, "int8": 1, "uint8": 1}


def bnb4_bytes(numel: int, double_quant: bool) -> int:
    """One bitsandbytes 4-bit weight: packed values + its quantization state.

    Packed: numel / 2 bytes. Block scales (absmax): one per 64 values, float32; with
    double quantization one uint8 each plus a float32 scale per 256 of them and a float32
    offset. The 16-entry nf4/fp4 code (float32) is per weight; the 256-entry code of the
    nested quantization is one tensor shared by all weights (counted once, elsewhere).
    """
    blocks = -(-numel // BNB4_BLOCK)
    packed = -(-numel // 2)
    if double_quant:
        return packed + blocks + 4 * -(-blocks // BNB4_NESTED_BLOCK) + 4 + 16 * 4
    return packed + 4 * blocks + 16 * 4


def int8_bytes(m: Module) -> int:
    """bitsandbytes LLM.int8: int8 weights + one float32 scale per output row (SCB)."""
    return m.weight_numel + 4 * m.shape[0]


@dataclass
class Part:
    """One line of the memory estimate."""

    name: str
    bytes: int
    note: str
    sharded: bool = False  # divided across processes under the strategy
    exact: bool = True


@dataclass
class MemoryPlan:
    parts: list[Part]
    world: int  # processes the sharded parts are divided by
    overhead: int
    offloaded: int = 0  # bytes moved to CPU memory (per process)

    @property
    def allocated(self) -> int:
        """What torch.cuda.max_memory_allocated would show (the estimate without overhead)."""
        return sum(p.bytes for p in self.parts)

    @property
    def total(self) -> int:
        return self.allocated + self.overhead


def _optimizer_states(
    optim: str, trainable: int, sizes: list[int], param_bytes: int
) -> tuple[int, str, bool]:
    """Bytes of the optimizer's states for ``sizes`` (numels of the trainable tensors)."""
    adam_like = {
        "adamw_torch": "2 states (exp_avg, exp_avg_sq) in the parameters' dtype",
        "adamw_torch_fused": "2 states in the parameters' dtype",
        "grokadamw": "2 states + a gradient EMA in the parameters' dtype",
        "stableadamw": "2 states in the parameters' dtype",
        "schedule_free_radamw": "2 states (z, exp_avg_sq) in the parameters' dtype",
        "galore_adamw": "2 states; GaLore projects them to rank 128 (an upper bound here)",
    }
    if optim in adam_like:
        states = 3 if optim == "grokadamw" else 2
        return states * trainable * param_bytes, adam_like[optim], optim != "galore_adamw"
    if optim in ("adamw_8bit", "adamw_bnb_8bit", "galore_adamw_8bit"):
        total = 0
        for n in sizes:
            if n >= BNB_MIN_8BIT_SIZE:
                total += 2 * n + 2 * 4 * -(-n // BNB_OPTIM_BLOCK)
            else:
                total += 2 * 4 * n
        return total, "bitsandbytes 8-bit Adam: 2 uint8 states + float32 block scales (256)", True
    if optim == "adafactor":
        return (
            -1,
            "Adafactor without momentum: factored second moment (rows + columns), float32",
            True,
        )
    if optim == "sgd":
        return 0, "SGD with transformers' defaults: no momentum, no state", True
    if optim == "adagrad":
        return trainable * param_bytes, "Adagrad: 1 state (sum) in the parameters' dtype", True
    if optim == "rmsprop":
        return trainable * param_bytes, "RMSprop: 1 state (square_avg), no momentum", True
    if optim == "lomo":
        return 0, "LOMO: fused update, no state", True
    return 2 * trainable * param_bytes, f"{optim}: assumed 2 states like AdamW", False


# --------------------------------------------------------------------------- the plan


@dataclass
class Setup:
    """What the estimate depends on, taken from a trainer job."""

    task: str = "sft"
    lora: bool = False
    lora_r: int = 8
    lora_dropout: float = 0.05
    lora_targets: Any = "all-linear"
    use_dora: bool = False
    lora_modules_to_save: list[str] | None = None
    lora_bias: str = "none"
    quantization: str | None = None
    double_quant: bool = True
    bf16: bool = False
    fp16: bool = False
    optimizer: str = "adamw_torch"
    batch: int = 8
    accumulation: int = 1
    seq: int = 512
    checkpointing: bool = False
    attention: str = "sdpa"
    # packed or padding-free rows: TRL joins a batch into one sequence; with a variable-length
    # kernel (the program's choice where the GPU has one) that costs nothing, under sdpa or
    # eager the batch attends as one sequence under a block mask
    joined: bool = False
    varlen: bool = False
    liger: bool = False
    strategy: str = "none"
    num_processes: int | str = "auto"
    num_machines: int = 1
    zero_stage: int | None = None
    offload: bool = False
    num_labels: int = 2
    device: str = "cuda"


def trainable_parameters(mods: list[Module], s: Setup) -> int:
    """The parameters that train: LoRA's (with DoRA, modules_to_save, biases), or all."""
    if not s.lora:
        return count_parameters(mods)
    return lora_trainable(
        mods,
        s.lora_r,
        s.lora_targets,
        task=s.task,
        use_dora=s.use_dora,
        modules_to_save=s.lora_modules_to_save,
        bias=s.lora_bias,
    )


def estimate_memory(arch: Architecture, s: Setup, world: int = 1) -> MemoryPlan:
    """Per-GPU memory for ``s`` with ``world`` processes in all."""
    mods = modules(arch, s.task, s.num_labels)
    total = count_parameters(mods)
    param_bytes = 2 if s.bf16 else 4  # the program loads bf16 with bf16, else float32
    deepspeed = s.strategy == "deepspeed"
    stage = (s.zero_stage or 2) if deepspeed else 0
    fsdp = s.strategy == "fsdp"
    parts: list[Part] = []
    # --- weights
    trainable = trainable_parameters(mods, s)
    if s.quantization in ("nf4", "int4", "int8"):
        q_mods = [m for m in mods if m.kind == "linear" and m.quantizable]
        rest = total - sum(m.weight_numel for m in q_mods)
        if s.quantization == "int8":
            qbytes = sum(int8_bytes(m) for m in q_mods)
            how = "int8 + a float32 scale per row"
        else:
            qbytes = sum(bnb4_bytes(m.weight_numel, s.double_quant) for m in q_mods)
            qbytes += 256 * 4 if s.double_quant else 0
            dq = ", double-quantized scales" if s.double_quant else ", float32 block scales"
            how = f"4-bit {'nf4' if s.quantization == 'nf4' else 'fp4'} packed{dq}"
        n_q = sum(m.weight_numel for m in q_mods)
        parts.append(
            Part("weights, quantized", qbytes, f"{n_q:,} in {len(q_mods)} linear layers, {how}")
        )
        # prepare_model_for_kbit_training casts every non-quantized bf16/fp16 parameter to float32
        parts.append(
            Part(
                "weights, not quantized",
                4 * rest,
                f"{rest:,} (embeddings, norms, output layer) in float32"
                " (peft's prepare_model_for_kbit_training upcasts them)",
            )
        )
    else:
        dtype = "bfloat16" if s.bf16 else "float32"
        w = total * param_bytes
        if deepspeed and not s.bf16 and s.fp16:
            dtype = "float16"
            w = total * 2
        parts.append(
            Part(
                "weights",
                w,
                f"{total:,} parameters in {dtype}",
                sharded=fsdp or stage == 3,
            )
        )
    # --- trainable state
    if s.lora:
        t_bytes = 4  # peft keeps adapters in float32 (autocast_adapter_dtype)
        parts.append(
            Part(
                "adapter weights",
                trainable * t_bytes,
                f"{trainable:,} LoRA parameters in float32",
                sharded=fsdp or stage == 3,
            )
        )
    else:
        t_bytes = param_bytes
    if deepspeed and s.bf16:
        t_bytes = 2  # DeepSpeed runs the module in bf16 and keeps a float32 master copy
    grad_note = f"{trainable:,} trainable × {t_bytes} bytes"
    parts.append(Part("gradients", trainable * t_bytes, grad_note, sharded=fsdp or stage >= 2))
    if deepspeed and (s.bf16 or s.fp16):
        parts.append(
            Part(
                "master weights",
                trainable * 4,
                "DeepSpeed's float32 copy of the trainable parameters",
                sharded=stage >= 1,
            )
        )
        state_bytes = 4
    else:
        state_bytes = t_bytes
    sizes = (
        _trainable_sizes(mods, s)
        if s.optimizer in ("adamw_8bit", "adamw_bnb_8bit", "galore_adamw_8bit", "adafactor")
        else []
    )
    opt, opt_note, exact = _optimizer_states(s.optimizer, trainable, sizes, state_bytes)
    if opt < 0:  # adafactor
        opt = 4 * sum(_factored(shape) for shape in _trainable_shapes(mods, s))
    parts.append(Part("optimizer states", opt, opt_note, sharded=fsdp or stage >= 1, exact=exact))
    # --- activations
    elem = 2 if (s.bf16 or s.fp16) else 4
    lora_inputs = None
    if s.lora:
        lora_inputs = [
            m.shape[1]
            for m in lora_targets(mods, s.lora_targets, s.task)
            if m.path.startswith("model.layers.0.")
        ]
    masked = s.joined and not s.varlen
    batch, seq = (1, s.batch * s.seq) if masked else (s.batch, s.seq)
    act = activation_bytes(
        arch,
        batch,
        seq,
        elem=elem,
        attention="varlen" if s.joined and s.varlen else s.attention,
        checkpointing=s.checkpointing,
        liger=s.liger,
        task=s.task,
        full=not s.lora,
        lora_inputs=lora_inputs,
        lora_r=s.lora_r,
        lora_dropout=s.lora_dropout,
        device=s.device,
        masked=masked,
    )
    note = f"a batch of {s.batch} × {s.seq} joined: {act.note}" if masked else act.note
    parts.append(Part("activations", act.saved, note, exact=False))
    if act.transient:
        what = ["one layer recomputed"] if s.checkpointing else []
        if not (s.liger or s.task == "classification"):
            what.append("the logits' float32 gradient")
        parts.append(Part("backward transients", act.transient, " + ".join(what), exact=False))
    # --- sharding and offload
    for p in parts:
        if p.sharded and world > 1:
            p.bytes = -(-p.bytes // world)
            p.note += f", sharded over {world} processes"
    offloaded = 0
    if s.offload:
        for p in parts:
            off = (
                fsdp and p.name in ("weights", "adapter weights", "gradients", "optimizer states")
            ) or (
                deepspeed
                and (
                    p.name in ("optimizer states", "master weights")
                    or (stage == 3 and p.name == "weights")
                )
            )
            if off:
                offloaded += p.bytes
                p.bytes = 0
                p.note += ", offloaded to CPU memory"
    if fsdp or stage == 3:
        # a sharded layer is gathered whole for its forward / backward (and the next prefetched)
        layer = max(sum(m.numel for m in mods if m.path.startswith(f"model.layers.{0}.")), 0)
        parts.append(
            Part(
                "gathered layers",
                2 * layer * param_bytes,
                "two decoder layers' full weights, gathered for compute",
                exact=False,
            )
        )
    allocated = sum(p.bytes for p in parts)
    overhead = CUDA_CONTEXT_BYTES + int(FRAGMENTATION * allocated)
    return MemoryPlan(parts, world, overhead, offloaded)


def _trainable_shapes(mods: list[Module], s: Setup) -> list[tuple[int, ...]]:
    if not s.lora:
        out: list[tuple[int, ...]] = []
        for m in mods:
            out.append(m.shape)
            if m.bias:
                out.append((m.shape[0],))
        return out
    shapes: list[tuple[int, ...]] = []
    for m in lora_targets(mods, s.lora_targets, s.task):
        rows, cols = m.shape
        shapes += [(s.lora_r, cols), (rows, s.lora_r)]
        if s.use_dora:
            shapes.append((rows if m.kind == "linear" else cols,))
    return shapes


def _trainable_sizes(mods: list[Module], s: Setup) -> list[int]:
    return [math.prod(shape) for shape in _trainable_shapes(mods, s)]


def _factored(shape: tuple[int, ...]) -> int:
    if len(shape) >= 2:
        return math.prod(shape[:-1]) + math.prod(shape[:-2]) * shape[-1]
    return math.prod(shape)
