"""Build a Llama model with random weights and a byte-level BPE tokenizer, offline.

The benchmark model (``--preset bench``, the default) is a LlamaConfig with tens of millions
of parameters: hidden 512, 8 layers, intermediate 1408, 8 heads, 8 kv heads, untied
embeddings, and a byte-level BPE trained the way examples/make_tiny_model.py trains its
tokenizer, but on the benchmark data itself (vocab 16,000) so that token counts look like a
real tokenizer's (a ~1,000-token vocab would split Chinese into bytes).

``--preset 1b`` is the ~0.94B-parameter model of gpu_check.py (hidden 2048, 16 layers,
intermediate 5504, vocab 32,000).

    python benchmarks/make_model.py DEST [--preset bench|1b] [--data FILE.json ...] [--dtype float32]

Weights are written to DEST (keep it under benchmarks/.cache or /tmp; never commit them).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

PRESETS = {
    # ~42M parameters (about 26M in the decoder layers, 16M in the untied embeddings)
    "bench": {
        "hidden_size": 512,
        "intermediate_size": 1408,
        "num_hidden_layers": 8,
        "num_attention_heads": 8,
        "num_key_value_heads": 8,
        "vocab_size": 16000,
    },
    # ~0.94B parameters (0.81B in the decoder layers)
    "1b": {
        "hidden_size": 2048,
        "intermediate_size": 5504,
        "num_hidden_layers": 16,
        "num_attention_heads": 16,
        "num_key_value_heads": 16,
        "vocab_size": 32000,
    },
    # for --quick smoke runs of gpu_check.py / tests
    "tiny": {
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "vocab_size": 2000,
    },
}


def corpus_from_files(paths: list[str]) -> list[str]:
    """Every text field of Alpaca-format json files (a list of {instruction, input, output})."""
    lines: list[str] = []
    for path in paths:
        with open(path, encoding="utf-8") as handle:
            rows = json.load(handle) if path.endswith(".json") else [json.loads(x) for x in handle]
        for row in rows:
            for value in row.values():
                if isinstance(value, str) and value:
                    lines.append(value)
    return lines


def synthetic_corpus(n: int = 4000) -> list[str]:
    """English/Chinese sentences like examples/make_tiny_model.py's, when no data file is given."""
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples"))
    from make_tiny_model import _corpus  # type: ignore[import-not-found]

    return _corpus(n)


def make_model(
    dest: str,
    preset: str = "bench",
    data: list[str] | None = None,
    dtype: str = "float32",
    seed: int = 0,
    weights: bool = True,
    device: str = "cpu",
) -> dict:
    """Write tokenizer + model to ``dest``; return a description (parameter count, sizes).

    ``weights=False`` writes the tokenizer and config.json only and counts the parameters on the
    meta device (no memory, no time): enough for a generated program's ``--dry-run``.
    ``device`` is where the random weights are initialised (``cuda`` is much faster for 1B).
    """
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    shape = dict(PRESETS[preset])
    vocab_size = shape.pop("vocab_size")
    specials = ["<unk>", "<s>", "</s>", "<pad>"]
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),  # every byte encodable: no <unk> ever
        show_progress=False,
    )
    lines = corpus_from_files(data) if data else synthetic_corpus()
    tok.train_from_iterator(lines, trainer=trainer)
    hf_tok = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        model_max_length=4096,
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        pad_token="<pad>",
    )
    os.makedirs(dest, exist_ok=True)
    hf_tok.save_pretrained(dest)

    config = LlamaConfig(
        vocab_size=max(
            vocab_size, len(hf_tok)
        ),  # a small corpus may not fill the vocab: keep the shape
        max_position_embeddings=4096,
        bos_token_id=hf_tok.bos_token_id,
        eos_token_id=hf_tok.eos_token_id,
        pad_token_id=hf_tok.pad_token_id,
        tie_word_embeddings=False,
        **shape,
    )
    torch.manual_seed(seed)
    torch_dtype = getattr(torch, dtype)
    if weights:
        with torch.device(device):
            model = LlamaForCausalLM(config).to(torch_dtype)
        model.save_pretrained(dest)
    else:
        with torch.device("meta"):
            model = LlamaForCausalLM(config)
        config.save_pretrained(dest)
    n_params = sum(p.numel() for p in model.parameters())
    n_embed = model.model.embed_tokens.weight.numel() + model.lm_head.weight.numel()
    info = {
        "preset": preset,
        "parameters": n_params,
        "parameters_non_embedding": n_params - n_embed,
        "tokenizer_vocab": len(hf_tok),
        "config": {
            k: getattr(config, k)
            for k in (
                "vocab_size",
                "hidden_size",
                "intermediate_size",
                "num_hidden_layers",
                "num_attention_heads",
                "num_key_value_heads",
            )
        },
        "dtype": dtype,
        "weights": weights,
        "corpus_lines": len(lines),
    }
    with open(os.path.join(dest, "bench_model_info.json"), "w") as handle:
        json.dump(info, handle, indent=2)
    return info


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("dest")
    parser.add_argument("--preset", choices=sorted(PRESETS), default="bench")
    parser.add_argument(
        "--data", nargs="*", default=None, help="Alpaca-format json files to train the BPE on"
    )
    parser.add_argument("--dtype", default="float32")
    parser.add_argument(
        "--device", default="cpu", help="where to initialise the weights (cpu, cuda)"
    )
    parser.add_argument("--no-weights", action="store_true", help="tokenizer and config.json only")
    args = parser.parse_args(argv)
    started = time.time()
    info = make_model(
        args.dest,
        args.preset,
        args.data,
        args.dtype,
        weights=not args.no_weights,
        device=args.device,
    )
    print(json.dumps({**info, "seconds": round(time.time() - started, 2)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
