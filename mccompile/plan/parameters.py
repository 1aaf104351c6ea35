"""Parameter counts of a model architecture, exactly as transformers and peft build them.

Where the architecture comes from (a local model folder's config.json, the Hugging Face cache,
the built-in table of mccompile/architectures.py; never the network), the modules that hold
parameters, and the trainable count under LoRA / DoRA / modules_to_save.
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from mccompile.plan.architectures import FAMILIES, Architecture, canonical, known


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
            table_id = canonical(model)
            via = f", a copy of {table_id}" if table_id != model.lower() else ""
            return replace(arch, source=f"built-in table ({model.lower()}{via})")
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


def lora_targets(mods: list[Module], targets: Any, task: str) -> list[Module]:
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
    wrapped = lora_targets(mods, targets, task)
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
