"""The built-in chat templates: their reference texts, what they render, and the prefix property.

The generated programs find the assistant turns by rendering growing prefixes of a
conversation, so every built-in must render a conversation as an extension of its first
turns (with and without the generation prompt).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest

from mccompile.frontend.chat import BUILTIN_TEMPLATES, TEMPLATE_KWARGS, builtin_text, jinja_problem

chat_template_utils = pytest.importorskip("transformers.utils.chat_template_utils")

# built-ins whose text TRL ships: ours must be the same, byte for byte
TRL_FILES = {"llama3": "llama3.jinja", "gemma3": "gemma3.jinja", "qwen3": "qwen3_training.jinja"}
TOKENS = {"bos_token": "<BOS>", "eos_token": "<EOS>"}

# tatsu-lab/stanford_alpaca train.py, PROMPT_DICT
ALPACA_PROMPT_INPUT = (
    "Below is an instruction that describes a task, paired with an input that provides further"
    " context. Write a response that appropriately completes the request.\n\n"
    "### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:"
)
ALPACA_PROMPT_NO_INPUT = (
    "Below is an instruction that describes a task. "
    "Write a response that appropriately completes the request.\n\n"
    "### Instruction:\n{instruction}\n\n### Response:"
)

SYSTEM = {"role": "system", "content": "Be brief."}
TURNS = [
    {"role": "user", "content": "What is 2 + 2?"},
    {"role": "assistant", "content": "4."},
    {"role": "user", "content": "And 3 + 3?"},
    {"role": "assistant", "content": "6."},
]

# what each built-in renders for SYSTEM + TURNS (mistral: TURNS; it has no system turn)
EXPECTED = {
    "chatml": "<|im_start|>system\nBe brief.<|im_end|>\n"
    "<|im_start|>user\nWhat is 2 + 2?<|im_end|>\n"
    "<|im_start|>assistant\n4.<|im_end|>\n<|im_start|>user\nAnd 3 + 3?<|im_end|>\n"
    "<|im_start|>assistant\n6.<|im_end|>\n",
    "llama3": "<BOS><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>"
    "<|start_header_id|>user<|end_header_id|>\n\nWhat is 2 + 2?<|eot_id|>"
    "<|start_header_id|>assistant<|end_header_id|>\n\n4.<|eot_id|>"
    "<|start_header_id|>user<|end_header_id|>\n\nAnd 3 + 3?<|eot_id|>"
    "<|start_header_id|>assistant<|end_header_id|>\n\n6.<|eot_id|>",
    "qwen3": "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nWhat is 2 + 2?<|im_end|>\n"
    "<|im_start|>assistant\n<think>\n\n</think>\n\n4.<|im_end|>\n"
    "<|im_start|>user\nAnd 3 + 3?<|im_end|>\n"
    "<|im_start|>assistant\n<think>\n\n</think>\n\n6.<|im_end|>\n",
    "gemma3": "<BOS><start_of_turn>user\nBe brief.\n\nWhat is 2 + 2?<end_of_turn>\n"
    "<start_of_turn>model\n4.<end_of_turn>\n<start_of_turn>user\nAnd 3 + 3?<end_of_turn>\n"
    "<start_of_turn>model\n6.<end_of_turn>\n",
    "mistral": "<BOS>[INST] What is 2 + 2? [/INST]4.<EOS>[INST] And 3 + 3? [/INST]6.<EOS>",
    "alpaca": "Be brief.\n\n### Instruction:\nWhat is 2 + 2?\n\n### Response:4.<EOS>\n\n"
    "### Instruction:\nAnd 3 + 3?\n\n### Response:6.<EOS>",
}


def render(name: str, messages: list[dict[str, Any]], generation_prompt: bool = False) -> str:
    text: str = chat_template_utils.render_jinja_template(
        conversations=[messages],
        chat_template=builtin_text(name),
        add_generation_prompt=generation_prompt,
        **TOKENS,
        **TEMPLATE_KWARGS.get(name, {}),
    )[0][0]
    return text


def conversation(name: str) -> list[dict[str, Any]]:
    return TURNS if name == "mistral" else [SYSTEM, *TURNS]


def test_every_builtin_has_a_reference() -> None:
    assert set(EXPECTED) == set(BUILTIN_TEMPLATES)
    assert {"chatml", "llama3", "qwen3", "gemma3", "mistral", "alpaca"} <= set(BUILTIN_TEMPLATES)


@pytest.mark.parametrize("name", sorted(TRL_FILES))
def test_builtin_equals_the_template_trl_ships(name: str) -> None:
    spec = importlib.util.find_spec("trl")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("trl is not installed")
    trl_file = Path(spec.submodule_search_locations[0]) / "chat_templates" / TRL_FILES[name]
    assert builtin_text(name) == trl_file.read_text(encoding="utf-8")


@pytest.mark.parametrize("name", sorted(BUILTIN_TEMPLATES))
def test_builtin_renders_its_reference_text(name: str) -> None:
    assert jinja_problem(builtin_text(name)) is None
    assert render(name, conversation(name)) == EXPECTED[name]


@pytest.mark.parametrize("name", sorted(BUILTIN_TEMPLATES))
def test_builtin_is_prefix_preserving(name: str) -> None:
    """Each turn extends the rendering of the turns before it; the generation prompt too."""
    messages = conversation(name)
    for k in range(1, len(messages)):
        shorter, longer = render(name, messages[:k]), render(name, messages[: k + 1])
        assert longer.startswith(shorter), (name, k)
        if messages[k]["role"] == "assistant":
            prompt = render(name, messages[:k], generation_prompt=True)
            assert longer.startswith(prompt), (name, k)
            assert prompt.startswith(shorter), (name, k)


@pytest.mark.parametrize(
    ("row", "reference"),
    [
        (
            {"instruction": "Add the numbers.", "input": "2 and 3", "output": "5"},
            ALPACA_PROMPT_INPUT,
        ),
        ({"instruction": "Name a colour.", "input": "", "output": "Blue"}, ALPACA_PROMPT_NO_INPUT),
    ],
)
def test_alpaca_is_the_stanford_prompt(row: dict[str, str], reference: str) -> None:
    """As the generated program passes an Alpaca row: content, plus instruction and input apart."""
    user = row["instruction"] + (f"\n\n{row['input']}" if row["input"] else "")
    messages = [
        {"role": "user", "content": user, "instruction": row["instruction"], "input": row["input"]},
        {"role": "assistant", "content": row["output"]},
    ]
    prompt = reference.format_map(row)
    assert render("alpaca", messages[:1], generation_prompt=True) == prompt
    assert render("alpaca", messages) == prompt + row["output"] + "<EOS>"


def test_qwen3_renders_tools_and_tool_calls() -> None:
    call = {"type": "function", "function": {"name": "add", "arguments": {"a": 2, "b": 3}}}
    messages = [
        {"role": "user", "content": "2 + 3?"},
        {"role": "assistant", "content": "", "tool_calls": [call]},
        {"role": "tool", "content": "5"},
        {"role": "assistant", "content": "5."},
    ]
    text = chat_template_utils.render_jinja_template(
        conversations=[messages],
        tools=[{"name": "add", "description": "Add.", "parameters": {"type": "object"}}],
        chat_template=builtin_text("qwen3"),
        **TOKENS,
        enable_thinking=False,
    )[0][0]
    assert '<tools>\n{"name": "add"' in text
    assert '<tool_call>\n{"name": "add", "arguments": {"a": 2, "b": 3}}\n</tool_call>' in text
    assert "<tool_response>\n5\n</tool_response>" in text


def test_jinja_problem_reports_the_line() -> None:
    assert jinja_problem("{% for m in messages %}\n{{ m.content }\n{% endfor %}") is not None
    message, line = jinja_problem("ok\n{% if x %}\nnever closed") or ("", 0)
    assert "endif" in message and line == 3
    assert jinja_problem("{% generation %}{{ x }}{% endgeneration %}") is None
