"""LLaMA-Factory's templates (src/llamafactory/data/template.py, 0.9.5) as mccompile chat formats.

Each template LLaMA-Factory names becomes a ``chat_template`` value: a built-in where one
renders the same text, else the template's own text as inline Jinja. A template whose
``replace_eos`` makes its end-of-turn token the tokenizer's end-of-sequence token (added as
a special token where the vocabulary lacks it) imports that token as
``special_tokens.eos_token``. What mccompile still trains otherwise is listed by name in
``differences``: the import states each one (tests/oracle compares with LLaMA-Factory's own
preprocessing).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Mapped:
    chat_template: str
    eos_token: str | None = None  # LLaMA-Factory's replace_eos: its stop word
    differences: tuple[tuple[str, str], ...] = ()  # (name, what differs)


# trained spans end at the end-of-turn token in mccompile; LLaMA-Factory's assistant slot
# goes on to the newline that follows it
NEWLINE = (
    "end-of-turn-newline",
    "the newline after each answer's end-of-turn token is not trained (LLaMA-Factory's"
    " assistant slot trains it)",
)

_QWEN = (
    "{%- for message in messages -%}"
    "{%- if loop.first and message['role'] != 'system' -%}"
    "{{ '<|im_start|>system\\n' + DEFAULT_SYSTEM + '<|im_end|>\\n' }}"
    "{%- endif -%}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<|im_start|>assistant\\n' }}{%- endif -%}"
).replace(
    "DEFAULT_SYSTEM", repr("You are Qwen, created by Alibaba Cloud. You are a helpful assistant.")
)

_DEFAULT = (
    "{%- for message in messages -%}"
    "{%- if message['role'] == 'system' -%}"
    "{{ 'System: ' + message['content'] + eos_token + '\\n' }}"
    "{%- elif message['role'] == 'user' -%}"
    "{{ 'Human: ' + message['content'] + eos_token + '\\nAssistant:' }}"
    "{%- else -%}"
    "{{ message['content'] + eos_token + '\\n' }}"
    "{%- endif -%}"
    "{%- endfor -%}"
)

# no headers, no BOS or EOS: the turns' texts one after the other
_EMPTY = "{%- for message in messages -%}{{ message['content'] }}{%- endfor -%}"

TEMPLATES: dict[str, Mapped] = {
    "llama3": Mapped("llama3", "<|eot_id|>"),
    "qwen": Mapped(_QWEN, "<|im_end|>", (NEWLINE,)),
    "qwen3": Mapped(
        "qwen3",
        "<|im_end|>",
        (
            NEWLINE,
            (
                "think-block-in-prompt",
                "the empty think block of each answer is part of the prompt (LLaMA-Factory's"
                " qwen3 trains it with the answer)",
            ),
            (
                "tool-definitions",
                "tools are written as the bare function objects of the column, without an"
                ' empty system turn (LLaMA-Factory: {"type": "function", "function": ...}'
                " after an empty system prompt)",
            ),
        ),
    ),
    "chatml": Mapped("chatml", "<|im_end|>", (NEWLINE,)),
    "gemma3": Mapped("gemma3", "<end_of_turn>", (NEWLINE,)),
    "mistral": Mapped("mistral"),
    "alpaca": Mapped("alpaca"),
    "default": Mapped(_DEFAULT, None, (NEWLINE,)),
    "empty": Mapped(_EMPTY),
}

# the alpaca converter joins instruction and input with one newline
ALPACA_INPUT = (
    "alpaca-input-separator",
    "the instruction and the input of Alpaca rows are joined by a blank line"
    " (LLaMA-Factory: one newline)",
)
