"""Model architectures the resource plan knows without reading a model folder.

Each entry holds the values of the model's published ``config.json`` that decide its
parameter count and activation memory. A config.json in a local model folder or in the
Hugging Face cache takes precedence (see :func:`mccompile.resources.find_architecture`);
this table is the fallback for a hub id that is not on the machine. Nothing here reaches
the network.
"""

from __future__ import annotations

from dataclasses import dataclass

# model_type -> the layout its transformers class builds (see resources.modules)
FAMILIES = {
    "llama": "llama",
    "mistral": "llama",
    "qwen2": "qwen2",
    "qwen3": "qwen3",
    "gemma": "gemma",
    "gemma2": "gemma2",
    "gemma3_text": "gemma3",
    "phi3": "phi3",
}


@dataclass(frozen=True)
class Architecture:
    """The config.json values that decide sizes (names as in config.json)."""

    model_type: str
    vocab_size: int
    hidden_size: int
    intermediate_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    tie_word_embeddings: bool
    head_dim: int | None = None
    attention_bias: bool = False
    mlp_bias: bool = False
    source: str = "built-in table"

    @property
    def head_size(self) -> int:
        return self.head_dim or self.hidden_size // self.num_attention_heads

    def config_dict(self) -> dict[str, object]:
        """The values as config.json spells them (what ``AutoConfig.for_model`` takes)."""
        out: dict[str, object] = {
            "model_type": self.model_type,
            "vocab_size": self.vocab_size,
            "hidden_size": self.hidden_size,
            "intermediate_size": self.intermediate_size,
            "num_hidden_layers": self.num_hidden_layers,
            "num_attention_heads": self.num_attention_heads,
            "num_key_value_heads": self.num_key_value_heads,
            "tie_word_embeddings": self.tie_word_embeddings,
            "head_dim": self.head_size,
        }
        if self.model_type in ("llama", "qwen3"):
            out["attention_bias"] = self.attention_bias
        if self.model_type == "llama":
            out["mlp_bias"] = self.mlp_bias
        return out


def _a(
    model_type: str, v: int, h: int, i: int, n: int, a: int, kv: int, tie: bool, **kw: int
) -> Architecture:
    return Architecture(model_type, v, h, i, n, a, kv, tie, **kw)  # type: ignore[arg-type]


# hub id (lower case) -> architecture; instruct / base variants share one entry
_TABLE: dict[tuple[str, ...], Architecture] = {
    ("meta-llama/llama-3.2-1b", "meta-llama/llama-3.2-1b-instruct"): _a(
        "llama", 128256, 2048, 8192, 16, 32, 8, True, head_dim=64
    ),
    ("meta-llama/llama-3.2-3b", "meta-llama/llama-3.2-3b-instruct"): _a(
        "llama", 128256, 3072, 8192, 28, 24, 8, True, head_dim=128
    ),
    (
        "meta-llama/llama-3.1-8b",
        "meta-llama/llama-3.1-8b-instruct",
        "meta-llama/meta-llama-3-8b",
        "meta-llama/meta-llama-3-8b-instruct",
        "meta-llama/meta-llama-3.1-8b",
        "meta-llama/meta-llama-3.1-8b-instruct",
    ): _a("llama", 128256, 4096, 14336, 32, 32, 8, False, head_dim=128),
    (
        "meta-llama/llama-3.1-70b",
        "meta-llama/llama-3.1-70b-instruct",
        "meta-llama/llama-3.3-70b-instruct",
        "meta-llama/meta-llama-3-70b",
        "meta-llama/meta-llama-3-70b-instruct",
    ): _a("llama", 128256, 8192, 28672, 80, 64, 8, False, head_dim=128),
    ("qwen/qwen2.5-0.5b", "qwen/qwen2.5-0.5b-instruct"): _a(
        "qwen2", 151936, 896, 4864, 24, 14, 2, True
    ),
    ("qwen/qwen2.5-1.5b", "qwen/qwen2.5-1.5b-instruct"): _a(
        "qwen2", 151936, 1536, 8960, 28, 12, 2, True
    ),
    ("qwen/qwen2.5-3b", "qwen/qwen2.5-3b-instruct"): _a(
        "qwen2", 151936, 2048, 11008, 36, 16, 2, True
    ),
    ("qwen/qwen2.5-7b", "qwen/qwen2.5-7b-instruct"): _a(
        "qwen2", 152064, 3584, 18944, 28, 28, 4, False
    ),
    ("qwen/qwen2.5-14b", "qwen/qwen2.5-14b-instruct"): _a(
        "qwen2", 152064, 5120, 13824, 48, 40, 8, False
    ),
    ("qwen/qwen2.5-32b", "qwen/qwen2.5-32b-instruct"): _a(
        "qwen2", 152064, 5120, 27648, 64, 40, 8, False
    ),
    ("qwen/qwen2.5-72b", "qwen/qwen2.5-72b-instruct"): _a(
        "qwen2", 152064, 8192, 29568, 80, 64, 8, False
    ),
    ("qwen/qwen3-0.6b", "qwen/qwen3-0.6b-base"): _a(
        "qwen3", 151936, 1024, 3072, 28, 16, 8, True, head_dim=128
    ),
    ("qwen/qwen3-1.7b", "qwen/qwen3-1.7b-base"): _a(
        "qwen3", 151936, 2048, 6144, 28, 16, 8, True, head_dim=128
    ),
    ("qwen/qwen3-4b", "qwen/qwen3-4b-base"): _a(
        "qwen3", 151936, 2560, 9728, 36, 32, 8, True, head_dim=128
    ),
    ("qwen/qwen3-8b", "qwen/qwen3-8b-base"): _a(
        "qwen3", 151936, 4096, 12288, 36, 32, 8, False, head_dim=128
    ),
    ("qwen/qwen3-14b", "qwen/qwen3-14b-base"): _a(
        "qwen3", 151936, 5120, 17408, 40, 40, 8, False, head_dim=128
    ),
    ("qwen/qwen3-32b",): _a("qwen3", 151936, 5120, 25600, 64, 64, 8, False, head_dim=128),
    ("mistralai/mistral-7b-v0.1", "mistralai/mistral-7b-instruct-v0.1"): _a(
        "mistral", 32000, 4096, 14336, 32, 32, 8, False, head_dim=128
    ),
    ("mistralai/mistral-7b-v0.3", "mistralai/mistral-7b-instruct-v0.3"): _a(
        "mistral", 32768, 4096, 14336, 32, 32, 8, False, head_dim=128
    ),
    ("google/gemma-2-2b", "google/gemma-2-2b-it"): _a(
        "gemma2", 256000, 2304, 9216, 26, 8, 4, True, head_dim=256
    ),
    ("google/gemma-2-9b", "google/gemma-2-9b-it"): _a(
        "gemma2", 256000, 3584, 14336, 42, 16, 8, True, head_dim=256
    ),
    ("google/gemma-2-27b", "google/gemma-2-27b-it"): _a(
        "gemma2", 256000, 4608, 36864, 46, 32, 16, True, head_dim=128
    ),
    ("google/gemma-3-270m", "google/gemma-3-270m-it"): _a(
        "gemma3_text", 262144, 640, 2048, 18, 4, 1, True, head_dim=256
    ),
    ("google/gemma-3-1b-pt", "google/gemma-3-1b-it"): _a(
        "gemma3_text", 262144, 1152, 6912, 26, 4, 1, True, head_dim=256
    ),
    (
        "microsoft/phi-3-mini-4k-instruct",
        "microsoft/phi-3-mini-128k-instruct",
        "microsoft/phi-3.5-mini-instruct",
    ): _a("phi3", 32064, 3072, 8192, 32, 32, 32, False),
    ("microsoft/phi-3-medium-4k-instruct", "microsoft/phi-3-medium-128k-instruct"): _a(
        "phi3", 32064, 5120, 17920, 40, 40, 10, False
    ),
}

ARCHITECTURES: dict[str, Architecture] = {
    name: arch for names, arch in _TABLE.items() for name in names
}


# organisations that republish models under their original names (same weights, same shapes)
MIRRORS = ("nousresearch", "unsloth", "unsloth-community", "hugging-quants", "modularai")
_QUANTIZED_SUFFIXES = ("-unsloth-bnb-4bit", "-bnb-4bit")
_BY_NAME: dict[str, str] = {}
for _id in ARCHITECTURES:
    _BY_NAME.setdefault(_id.split("/", 1)[1], _id)


def canonical(model_id: str) -> str | None:
    """The table's id for a hub id or a known mirror's copy of it, or None."""
    wanted = model_id.strip().lower()
    if wanted in ARCHITECTURES:
        return wanted
    org, _, name = wanted.partition("/")
    if org not in MIRRORS:
        return None
    for suffix in _QUANTIZED_SUFFIXES:
        name = name.removesuffix(suffix)
    return _BY_NAME.get(name)


def known(model_id: str) -> Architecture | None:
    """The table's architecture for a hub id (case-insensitive; mirrors too), or None."""
    found = canonical(model_id)
    return ARCHITECTURES[found] if found is not None else None


def distinct() -> dict[str, Architecture]:
    """One hub id per distinct architecture (what the tests build)."""
    return {names[0]: arch for names, arch in _TABLE.items()}
