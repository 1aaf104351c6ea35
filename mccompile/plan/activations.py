"""The activation memory of a training step: what autograd keeps for backward.

An estimate, counted tensor by tensor after Korthikanti et al. 2022 (see activation_bytes);
measured against the live storages on CPU by tests/test_resources.py and
benchmarks/resource_plan.py.
"""

from __future__ import annotations

from dataclasses import dataclass

from mccompile.plan.architectures import FAMILIES, Architecture


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
    keeps, and the layer recomputed in backward makes its additive mask again (a transient).
    Measured on CPU: 0.98-0.995 of the live storages after forward (tests/test_resources.py).
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
        transient = tokens * layer
        if masked and attention != "eager":
            saved += batch * seq * seq  # sdpa's boolean block mask, an input every layer keeps
            transient += batch * seq * seq * e  # the recomputed layer's additive mask
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
