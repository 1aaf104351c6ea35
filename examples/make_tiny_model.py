"""Build a tiny, offline LlamaForCausalLM + byte-level BPE tokenizer for tests.

make_tiny_model(dest, chat_template=False, pad_token=True) -> dest

  * tokenizer: byte-level BPE trained with `tokenizers` on synthetic English/Chinese sentences
    (vocab ~1000), special tokens <unk>=0 <s>=1 </s>=2 <pad>=3 (+ <|user|> <|assistant|> <|system|>
    when chat_template=True). pad_token=False saves a tokenizer WITHOUT a pad token.
  * model: LlamaConfig(hidden 64, intermediate 128, 2 layers, 4 heads, 2 kv heads), fp32, seed 0.
Runs in ~0.2 s and writes ~0.5-1 MB.

make_tiny_vlm(dest) -> dest

  * a LLaVA-style vision-language model: a 2-layer CLIP vision tower (32 x 32 px images, 8 px
    patches: 16 image tokens per image), a 2-layer MLP projector and the tiny Llama above (with
    chat_template=True), fp32, seed 0; saved with a LlavaProcessor (CLIP's PIL image processor:
    no torchvision) whose chat template reads {"type": "image"} / {"type": "text"} content lists.
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


VLM_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|' + message['role'] + '|>\n' }}"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'image' %}{{ '<image>' }}"
    "{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}"
    "{% endfor %}{% endif %}"
    "{% if message['role'] == 'assistant' %}{{ eos_token }}{% endif %}"
    "{{ '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% endif %}"
)


def make_tiny_vlm(dest: str) -> str:
    import torch
    from transformers import (
        AutoTokenizer,
        CLIPVisionConfig,
        LlamaConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
    )
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

    make_tiny_model(dest, chat_template=True)
    tokenizer = AutoTokenizer.from_pretrained(dest)
    tokenizer.add_special_tokens({"additional_special_tokens": ["<image>"]})
    tokenizer.chat_template = VLM_CHAT_TEMPLATE
    text_config = LlamaConfig.from_pretrained(dest)
    text_config.vocab_size = len(tokenizer)
    vision_config = CLIPVisionConfig(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        image_size=32,
        patch_size=8,
        projection_dim=32,
    )
    config = LlavaConfig(
        vision_config=vision_config,
        text_config=text_config,
        image_token_index=tokenizer.convert_tokens_to_ids("<image>"),
        projector_hidden_act="gelu",
        vision_feature_select_strategy="default",  # the CLS token left out: 16 tokens per image
        vision_feature_layer=-1,
        tie_word_embeddings=False,
    )
    torch.manual_seed(0)
    model = LlavaForConditionalGeneration(config)
    for name in os.listdir(dest):  # the text-only model's files give way to the VLM's
        if name.endswith((".safetensors", ".bin")) or name in ("config.json", "generation_config.json"):
            os.remove(os.path.join(dest, name))
    model.save_pretrained(dest)
    image_processor = CLIPImageProcessorPil(
        size={"shortest_edge": 32},
        crop_size={"height": 32, "width": 32},
        do_center_crop=True,
    )
    processor = LlavaProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        patch_size=8,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,  # CLIP's CLS token
        chat_template=VLM_CHAT_TEMPLATE,
        image_token="<image>",
    )
    processor.save_pretrained(dest)
    return dest


if __name__ == "__main__":
    import time

    t = time.time()
    out = sys.argv[1] if len(sys.argv) > 1 else "/tmp/tiny-llama"
    if "--vlm" in sys.argv:
        make_tiny_vlm(out)
    else:
        make_tiny_model(out, chat_template="--chat" in sys.argv, pad_token="--no-pad" not in sys.argv)
    size = sum(os.path.getsize(os.path.join(out, f)) for f in os.listdir(out))
    print(f"{out}: {time.time() - t:.2f}s, {size / 1e6:.2f} MB, files={sorted(os.listdir(out))}")
