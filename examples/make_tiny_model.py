"""Build a tiny, offline LlamaForCausalLM + byte-level BPE tokenizer for tests.

make_tiny_model(dest, chat_template=False, pad_token=True) -> dest

  * tokenizer: byte-level BPE trained with `tokenizers` on synthetic English/Chinese sentences
    (vocab ~1000), special tokens <unk>=0 <s>=1 </s>=2 <pad>=3 (+ <|user|> <|assistant|> <|system|>
    when chat_template=True). pad_token=False saves a tokenizer WITHOUT a pad token.
  * model: LlamaConfig(hidden 64, intermediate 128, 2 layers, 4 heads, 2 kv heads), fp32, seed 0.
Runs in ~0.2 s and writes ~0.5-1 MB.
"""

import os
import random
import sys

# the model is built on the CPU: deepspeed, where it is installed, would warn that it found no GPU
os.environ.setdefault("DS_ACCELERATOR", "cpu")

CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|' + message['role'] + '|>\n' + message['content'] }}"
    "{% if message['role'] == 'assistant' %}{{ eos_token }}{% endif %}"
    "{{ '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% endif %}"
)

_WORDS = (
    "the a cat dog sky blue red green model data train learn token loss step batch "
    "what is how many why when where answer question capital city france paris water "
    "system user assistant instruction input output response prompt text hello world "
    "please write describe explain list give summarize translate number one two three"
).split()
_ZH = "你好世界天空是蓝色的猫狗学习模型数据训练问题回答中文字符一二三四五"


def _corpus(n=400, seed=0):
    rng = random.Random(seed)
    lines = []
    for i in range(n):
        words = [rng.choice(_WORDS) for _ in range(rng.randint(4, 14))]
        if i % 4 == 0:
            words.append("".join(rng.choice(_ZH) for _ in range(rng.randint(2, 8))))
        lines.append(" ".join(words).capitalize() + rng.choice([".", "?", "!", ": 42.", ", 3.14"]))
    return lines


def make_tiny_model(dest: str, chat_template: bool = False, pad_token: bool = True) -> str:
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    specials = ["<unk>", "<s>", "</s>", "<pad>"]
    if chat_template:
        specials += ["<|user|>", "<|assistant|>", "<|system|>"]
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=1000,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),  # every byte encodable: no <unk> ever
        show_progress=False,
    )
    tok.train_from_iterator(_corpus(), trainer=trainer)

    kwargs = dict(bos_token="<s>", eos_token="</s>", unk_token="<unk>")
    if pad_token:
        kwargs["pad_token"] = "<pad>"
    hf_tok = PreTrainedTokenizerFast(tokenizer_object=tok, model_max_length=2048, **kwargs)
    if chat_template:
        hf_tok.chat_template = CHAT_TEMPLATE
    os.makedirs(dest, exist_ok=True)
    hf_tok.save_pretrained(dest)

    config = LlamaConfig(
        vocab_size=len(hf_tok),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        bos_token_id=hf_tok.bos_token_id,
        eos_token_id=hf_tok.eos_token_id,
        pad_token_id=hf_tok.pad_token_id,  # None for the no-pad variant
        tie_word_embeddings=False,
    )
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    model.save_pretrained(dest)
    return dest


if __name__ == "__main__":
    import time

    t = time.time()
    out = sys.argv[1] if len(sys.argv) > 1 else "/tmp/tiny-llama"
    make_tiny_model(out, chat_template="--chat" in sys.argv, pad_token="--no-pad" not in sys.argv)
    size = sum(os.path.getsize(os.path.join(out, f)) for f in os.listdir(out))
    print(f"{out}: {time.time() - t:.2f}s, {size / 1e6:.2f} MB, files={sorted(os.listdir(out))}")
