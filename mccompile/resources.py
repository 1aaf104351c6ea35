"""The resource plan: parameters, batch, tokens and GPU memory of a trainer, before launch.

Pure arithmetic on the model's architecture (config.json values) and the trainer's settings;
never imports the training stack, never reaches the network. What is exact and what is an
estimate:

- parameter counts (total, trainable with LoRA / DoRA / modules_to_save) are exact: they are
  the sums transformers and peft build (tests compare them with the models built on the meta
  device);
- weight bytes (bf16 / fp32, bitsandbytes 4-bit with its quantization constants, 8-bit with its
  row scales), gradient bytes and optimizer-state bytes are exact arithmetic for the dtypes
  the generated program uses (step counters and other scalars left out);
- activations are an estimate: the tensors autograd saves for backward in transformers'
  implementation of the decoder layer, counted tensor by tensor in the way of Korthikanti et
  al. 2022, "Reducing Activation Recomputation in Large Transformer Models" (section 4.1,
  which gives ``s·b·h·(34 + 5·a·s/h)`` bytes per layer for GPT with fp16 and dropout); here the
  same count is redone for RMSNorm in float32, SwiGLU / GeGLU MLPs, grouped-query attention,
  no dropout, the loss in float32, and per attention kernel (eager keeps the softmax scores,
  ``a·s²`` per sequence; sdpa / flash keep only q, k, v, the output and the log-sum-exp);
- sharding follows the ZeRO paper's accounting (Rajbhandari et al. 2020, "ZeRO: Memory
  Optimizations Toward Training Trillion Parameter Models": stage 1 shards optimizer states,
  2 also gradients, 3 also weights; DeepSpeed keeps fp32 master weights in mixed precision)
  and FSDP's full sharding of all three;
- the overhead is a stated allowance (CUDA context and workspaces, allocator fragmentation),
  not a measurement.
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from mccompile import ir
from mccompile.architectures import FAMILIES, Architecture, known

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

# GPU names for --gpu-memory (memory in GiB as the driver reports it, rounded down)
GPUS: dict[str, float] = {
    "h200": 139.8,
    "h100": 79.6,
    "h100-80gb": 79.6,
    "h100-94gb": 93.1,
    "h800": 79.6,
    "b200": 178.4,
    "a100": 79.2,
    "a100-80gb": 79.2,
    "a100-40gb": 39.4,
    "l40s": 44.4,
    "l40": 44.4,
    "l4": 22.0,
    "a10g": 22.0,
    "a10": 22.0,
    "a6000": 47.5,
    "rtx6000ada": 47.5,
    "t4": 14.6,
    "v100": 31.7,
    "v100-16gb": 15.8,
    "rtx4090": 23.6,
    "rtx3090": 23.6,
    "rtx5090": 31.4,
}


def parse_gpu_memory(text: str) -> tuple[str, int] | None:
    """``80GB``, ``40GiB``, ``24g``, or a GPU name (``H100``, ``A100-40GB``) -> (label, bytes)."""
    key = text.strip().lower().replace(" ", "").replace("_", "-")
    name = key.removeprefix("nvidia-")
    if name in GPUS:
        return f"{text.strip()} ({GPUS[name]:g} GiB)", int(GPUS[name] * GiB)
    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*(gib|gb|g|mib|mb|m)?", key)
    if not m:
        return None
    amount = float(m.group(1))
    unit = m.group(2) or "gb"
    scale = {"gib": GiB, "gb": 10**9, "g": GiB, "mib": 1024**2, "mb": 10**6, "m": 1024**2}[unit]
    return text.strip(), int(amount * scale)


# --------------------------------------------------------------------------- architecture


def _from_config_json(data: dict[str, Any], source: str) -> Architecture | str:
    if "text_config" in data and "hidden_size" not in data:
        return f"{source}: a multimodal config (text_config); the plan counts text models only"
    model_type = str(data.get("model_type", ""))
    if model_type not in FAMILIES:
        known_types = ", ".join(sorted(FAMILIES))
        return f"{source}: model_type {model_type!r} is not one the plan can count ({known_types})"
    try:
        heads = int(data["num_attention_heads"])
        return Architecture(
            model_type=model_type,
            vocab_size=int(data["vocab_size"]),
            hidden_size=int(data["hidden_size"]),
            intermediate_size=int(data["intermediate_size"]),
            num_hidden_layers=int(data["num_hidden_layers"]),
            num_attention_heads=heads,
            num_key_value_heads=int(data.get("num_key_value_heads") or heads),
            tie_word_embeddings=bool(
                data.get("tie_word_embeddings", model_type in ("gemma", "gemma2", "gemma3_text"))
            ),
            head_dim=int(data["head_dim"]) if data.get("head_dim") else None,
            attention_bias=bool(data.get("attention_bias", False)),
            mlp_bias=bool(data.get("mlp_bias", False)),
            source=source,
        )
    except (KeyError, TypeError, ValueError) as err:
        return f"{source}: config.json lacks a value the plan needs ({err})"


def hub_cache_dirs() -> list[Path]:
    """Where the Hugging Face hub cache is, by the library's own rules (files only)."""
    env = os.environ
    if env.get("HF_HUB_CACHE"):
        return [Path(env["HF_HUB_CACHE"])]
    if env.get("HF_HOME"):
        return [Path(env["HF_HOME"]) / "hub"]
    base = Path(env.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return [base / "huggingface" / "hub"]


def find_architecture(model: str, base: Path | None = None) -> Architecture | str:
    """The architecture of ``model`` (a folder or a hub id), or why it cannot be known.

    In order: a local folder's config.json (relative to the working directory, then to
    ``base``, the config file's folder); the hub cache's snapshots; the built-in table.
    """
    candidates = [Path(model)]
    if base is not None and not Path(model).is_absolute():
        candidates.append(base / model)
    for folder in candidates:
        cfg = folder / "config.json"
        if cfg.is_file():
            try:
                data = json.loads(cfg.read_text(encoding="utf-8"))
            except (OSError, ValueError) as err:
                return f"{cfg}: not readable JSON ({err})"
            return _from_config_json(data, f"{cfg}")
    if "/" in model and not model.startswith((".", "/")) and model.count("/") == 1:
        org, name = model.split("/")
        for cache in hub_cache_dirs():
            snaps = cache / f"models--{org}--{name}" / "snapshots"
            if snaps.is_dir():
                for cfg in sorted(snaps.glob("*/config.json")):
                    try:
                        data = json.loads(cfg.read_text(encoding="utf-8"))
                    except (OSError, ValueError):
                        continue
                    return _from_config_json(data, f"hub cache ({cfg.parent.name[:12]})")
        arch = known(model)
        if arch is not None:
            return replace(arch, source=f"built-in table ({model.lower()})")
        return (
            f"{model!r} is not in the built-in table of architectures, nor in the hub cache;"
            " the plan cannot know its size without its config.json"
        )
    return f"{model!r}: no config.json there; the plan cannot know the model's size"


# --------------------------------------------------------------------------- modules


@dataclass(frozen=True)
class Module:
    """One module holding parameters: ``kind`` linear / embedding / norm."""

    path: str
    kind: str
    shape: tuple[int, ...]  # linear: (out, in); embedding: (vocab, hidden); norm: (n,)
    bias: bool = False
    quantizable: bool = False  # a linear inside a decoder layer (bitsandbytes replaces it)

    @property
    def name(self) -> str:
        return self.path.rsplit(".", 1)[-1]

    @property
    def weight_numel(self) -> int:
        return math.prod(self.shape)

    @property
    def numel(self) -> int:
        return self.weight_numel + (self.shape[0] if self.bias else 0)


def modules(arch: Architecture, task: str = "sft", num_labels: int = 2) -> list[Module]:
    """The modules with parameters that transformers builds for ``arch`` (tied ones once)."""
    family = FAMILIES[arch.model_type]
    h, i, hd = arch.hidden_size, arch.intermediate_size, arch.head_size
    q, kv = arch.num_attention_heads * hd, arch.num_key_value_heads * hd
    out: list[Module] = [Module("model.embed_tokens", "embedding", (arch.vocab_size, h))]
    qkv_bias = arch.attention_bias or family == "qwen2"
    o_bias = arch.attention_bias and family in ("llama", "qwen3")
    norms = 4 if family in ("gemma2", "gemma3") else 2
    for n in range(arch.num_hidden_layers):
        p = f"model.layers.{n}"
        if family == "phi3":
            out.append(Module(f"{p}.self_attn.qkv_proj", "linear", (q + 2 * kv, h), False, True))
        else:
            out += [
                Module(f"{p}.self_attn.q_proj", "linear", (q, h), qkv_bias, True),
                Module(f"{p}.self_attn.k_proj", "linear", (kv, h), qkv_bias, True),
                Module(f"{p}.self_attn.v_proj", "linear", (kv, h), qkv_bias, True),
            ]
        out.append(Module(f"{p}.self_attn.o_proj", "linear", (h, q), o_bias, True))
        if family in ("qwen3", "gemma3"):
            out += [
                Module(f"{p}.self_attn.q_norm", "norm", (hd,)),
                Module(f"{p}.self_attn.k_norm", "norm", (hd,)),
            ]
        mlp_bias = arch.mlp_bias and family == "llama"
        if family == "phi3":
            out.append(Module(f"{p}.mlp.gate_up_proj", "linear", (2 * i, h), False, True))
        else:
            out += [
                Module(f"{p}.mlp.gate_proj", "linear", (i, h), mlp_bias, True),
                Module(f"{p}.mlp.up_proj", "linear", (i, h), mlp_bias, True),
            ]
        out.append(Module(f"{p}.mlp.down_proj", "linear", (h, i), mlp_bias, True))
        names = ["input_layernorm", "post_attention_layernorm"]
        if norms == 4:
            names += ["pre_feedforward_layernorm", "post_feedforward_layernorm"]
        out += [Module(f"{p}.{name}", "norm", (h,)) for name in names]
    out.append(Module("model.norm", "norm", (h,)))
    if task == "classification":
        out.append(Module("score", "linear", (num_labels, h)))
    elif not arch.tie_word_embeddings:
        out.append(Module("lm_head", "linear", (arch.vocab_size, h)))
    return out


def count_parameters(mods: list[Module]) -> int:
    return sum(m.numel for m in mods)


def _targeted(mods: list[Module], targets: Any, task: str) -> list[Module]:
    """The modules peft wraps with LoRA: ``all-linear`` or names matched as peft matches them."""
    linears = [m for m in mods if m.kind == "linear"]
    if targets == "all-linear" or targets is None:
        # peft leaves out the output layer (lm_head, or the classification head)
        return [m for m in linears if m.name not in ("lm_head", "score")]
    if isinstance(targets, str):  # peft reads a string as a regular expression
        try:
            pattern = re.compile(targets)
        except re.error:
            return []
        return [m for m in mods if m.kind in ("linear", "embedding") and pattern.fullmatch(m.path)]
    names = set(targets)
    return [
        m
        for m in mods
        if m.kind in ("linear", "embedding")
        and any(m.path == t or m.path.endswith("." + t) for t in names)
    ]


def lora_trainable(
    mods: list[Module],
    r: int,
    targets: Any,
    *,
    task: str = "sft",
    use_dora: bool = False,
    modules_to_save: list[str] | None = None,
    bias: str = "none",
) -> int:
    """Trainable parameters under peft's LoRA (what ``get_nb_trainable_parameters`` counts)."""
    total = 0
    wrapped = _targeted(mods, targets, task)
    for m in wrapped:
        rows, cols = m.shape
        if m.kind == "embedding":  # lora_embedding_A (r, vocab), B (hidden, r)
            total += r * rows + cols * r
            if use_dora:
                total += cols
        else:
            total += r * cols + rows * r
            if use_dora:
                total += rows
    saved = list(modules_to_save or [])
    if task == "classification":
        saved.append("score")
    for m in mods:
        if any(m.path == s or m.path.endswith("." + s) for s in saved):
            total += m.numel
    if bias == "all":
        total += sum(m.shape[0] for m in mods if m.bias)
    elif bias == "lora_only":
        total += sum(m.shape[0] for m in wrapped if m.bias)
    return total


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


@dataclass
class Activations:
    saved: int  # saved for backward at the end of forward (one micro-batch)
    transient: int  # the largest extra during backward
    note: str


def activation_bytes(
    arch: Architecture,
    batch: int,
    seq: int,
    *,
    elem: int,
    attention: str,
    checkpointing: bool,
    liger: bool = False,
    task: str = "sft",
    full: bool = True,
    lora_inputs: list[int] | None = None,
    lora_r: int = 8,
    lora_dropout: float = 0.0,
    device: str = "cuda",
    masked: bool = False,
) -> Activations:
    """Bytes autograd keeps for backward for ``batch`` sequences of ``seq`` tokens.

    The count of Korthikanti et al. 2022 ("Reducing Activation Recomputation in Large
    Transformer Models", section 4.1: every tensor a layer's backward needs, per token),
    redone for transformers' decoder layers; per token and layer, with e the activation
    element size (2 in bf16 / fp16, 4 in float32), h hidden, i intermediate, a heads, d the
    head size, kv the key / value heads, s the sequence length:

    - each RMSNorm: its float32 input (4h) and, when its weight trains, the normalized
      output it multiplies (e·h);
    - attention: q, k, v as the kernel gets them (e·d·(a + 2·kv); eager gets the key /
      value heads repeated to a; sdpa gets them unrepeated when the batch needs no mask,
      as full rows at max_seq_length do, and flash-attention always); eager attention's
      float32 softmax and its cast for the value product (a·s·(4 + e)), the score matrix the
      fused kernels never keep, and o_proj's input (a copy, e·a·d); sdpa / flash keep their
      output (e·a·d, which o_proj's input is a view of) and log-sum-exp (4a); Qwen3 /
      Gemma 3 q/k norms like the RMSNorms above;
    - the gated MLP: gate, activation and up (3·e·i);
    - the inputs of linear layers whose weights train (full fine-tuning: e·h twice, e·i);
      frozen linear layers (and bitsandbytes' 4-bit ones) keep nothing;
    - each LoRA layer (peft casts its input to the adapters' float32): 4·in, the dropout
      mask (dropout > 0: 1·in, bool, with CUDA's fused kernel; 4·in, float32 noise, on CPU)
      and 4·r for lora_B's input;
    - after the last layer: the final norm, lm_head's input when it trains, the logits
      (e·V, held in the output) and the loss's float32 log-softmax (4·V).

    Gradient checkpointing keeps each layer's input (e·h; with eager attention also the
    b·s² causal mask all layers share) and recomputes one layer at a time in backward. Not
    counted: the positions' cos / sin (shared), token ids, scalars.

    ``masked``: packed or padding-free rows under sdpa, i.e. one sequence (batch 1, seq the
    whole joined length) under a block mask. sdpa then gets the key / value heads repeated,
    and each layer turns the boolean mask into an additive one of its dtype and keeps it
    (e·s² per layer); with checkpointing the boolean mask (s² bytes) is an input every layer
    keeps. (Measured on CPU: 0.98-0.995 of the live storages, tests/test_resources.py.)
    """
    family = FAMILIES[arch.model_type]
    h, i, v = arch.hidden_size, arch.intermediate_size, arch.vocab_size
    hd, a, kvh = arch.head_size, arch.num_attention_heads, arch.num_key_value_heads
    e = elem
    tokens = batch * seq

    def norm(n: int) -> int:
        return 4 * n + (e * n if full else 0) if e != 4 else 4 * n * (2 if full else 1)

    norms = 4 if family in ("gemma2", "gemma3") else 2
    layer = norms * norm(h)
    # eager repeats the key / value heads, and so does sdpa under a mask (joined rows)
    kv_heads = a if attention == "eager" or masked else kvh
    layer += e * hd * (a + 2 * kv_heads)  # q, k, v as the kernel gets them
    if family in ("qwen3", "gemma3"):
        layer += norm((a + kvh) * hd)
    if attention == "eager":
        layer += a * seq * (4 + e if e != 4 else 4)  # float32 softmax (+ its cast)
        if family == "gemma2":
            layer += a * seq * e  # tanh soft-capping keeps its output
    else:
        layer += e * a * hd + 4 * a  # the kernel's output (also o_proj's input) + log-sum-exp
    layer += 3 * e * i  # gate, activation, up
    if full:
        layer += e * (2 * h + i)  # inputs of q/k/v, gate/up, down
        if attention == "eager":
            layer += e * a * hd  # o_proj's input: a copy of the value product
    # peft casts a LoRA layer's input to float32; dropout keeps a mask: bool with CUDA's
    # fused kernel, float32 noise on CPU
    mask = (1 if device == "cuda" else 4) if lora_dropout > 0 else 0
    for d in lora_inputs or []:
        layer += (4 + mask) * d + 4 * lora_r
    head = norm(h) + (e * h if full else 0)
    if not (liger or task == "classification"):
        head += e * v + 4 * v
    if checkpointing:
        saved = tokens * (arch.num_hidden_layers * e * h + head)
        if attention == "eager":
            saved += batch * seq * seq * e  # the 4-d causal mask, an input every layer keeps
        elif masked:
            saved += batch * seq * seq  # sdpa's boolean block mask, an input every layer keeps
        transient = tokens * layer
        how = "gradient checkpointing: each layer's input kept, one layer recomputed at a time"
    else:
        saved = tokens * (arch.num_hidden_layers * layer + head)
        if masked and attention != "eager":
            # each layer's sdpa turns the block mask into an additive one of its dtype, and keeps it
            saved += arch.num_hidden_layers * batch * seq * seq * e
        transient = 0
        how = "every layer's activations kept"
    logits_grad = 0 if liger or task == "classification" else tokens * 4 * v
    kernel = {
        "eager": "eager attention (keeps the a·s² softmax scores)",
        "sdpa": "sdpa (fused kernel: no score matrix kept)",
        "varlen": "a variable-length kernel (flash attention: no score matrix kept)",
    }.get(attention, f"{attention} (no score matrix kept)")
    if masked:
        kernel = f"{attention} under a block mask (key / value heads repeated, the mask kept)"
    note = f"{batch} × {seq} tokens, {kernel}; {how}"
    if liger:
        note += "; Liger's fused linear cross-entropy: no logits"
    return Activations(saved, transient + logits_grad, note)


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
    if s.lora:
        trainable = lora_trainable(
            mods,
            s.lora_r,
            s.lora_targets,
            task=s.task,
            use_dora=s.use_dora,
            modules_to_save=s.lora_modules_to_save,
            bias=s.lora_bias,
        )
    else:
        trainable = total
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
            for m in _targeted(mods, s.lora_targets, s.task)
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
    for m in _targeted(mods, s.lora_targets, s.task):
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
    plan.trainable_params = (
        lora_trainable(
            mods,
            s.lora_r,
            s.lora_targets,
            task=s.task,
            use_dora=s.use_dora,
            modules_to_save=s.lora_modules_to_save,
            bias=s.lora_bias,
        )
        if s.lora
        else plan.total_params
    )
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
