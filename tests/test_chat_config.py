"""The chat keys of a trainer, compiled: template texts, roles and tokens in the program."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from mccompile.cli import main
from mccompile.codegen.generate import generate_workflow
from mccompile.commands.plan import render_plan
from mccompile.frontend import compile_config
from mccompile.frontend.chat import builtin_text

TRAINER = """components:
  - id: trainer
    type: model-trainer
    model: ./tiny-model
"""


def _program(path: Path) -> str:
    config, _ = compile_config(path)
    return generate_workflow(config, config.workflows[0])["train.py"]


def _constant(source: str, name: str) -> object:
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) == name:
            return ast.literal_eval(node.value)
    raise AssertionError(f"{name} is not set in the program")


@pytest.mark.parametrize("name", ["alpaca", "chatml", "gemma3", "llama3", "mistral", "qwen3"])
def test_builtin_text_is_written_into_the_program(tmp_path: Path, name: str) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(TRAINER + f"    chat_template: {name}\n")
    source = _program(path)
    assert _constant(source, "CHAT_TEMPLATE") == builtin_text(name)
    assert "tokenizer.chat_template = CHAT_TEMPLATE" in source
    assert f"# built-in '{name}'" in source


def test_a_template_file_is_read_beside_the_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "prompts").mkdir()
    text = "{% for m in messages %}\n{{ m['content'] }}\n{% endfor %}\n"
    (tmp_path / "prompts" / "mine.jinja").write_text(text)
    path = tmp_path / "config.yaml"
    path.write_text(TRAINER + "    chat_template: prompts/mine.jinja\n")
    monkeypatch.chdir(Path(__file__).parent)  # not the config's folder
    source = _program(path)
    assert _constant(source, "CHAT_TEMPLATE") == text
    assert "# from the file prompts/mine.jinja" in source


def test_inline_jinja_and_plain(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    inline = "{% for m in messages %}{{ m['content'] }}{% endfor %}"
    path.write_text(TRAINER + f'    chat_template: "{inline}"\n')
    assert _constant(_program(path), "CHAT_TEMPLATE") == inline
    path.write_text(TRAINER + "    chat_template: plain\n")
    source = _program(path)
    assert _constant(source, "CHAT_TEMPLATE") is None
    assert "tokenizer.chat_template = CHAT_TEMPLATE" in source


def test_the_tokenizer_default_carries_no_template(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(TRAINER)
    source = _program(path)
    assert "CHAT_TEMPLATE" not in source and "prepare_tokenizer" not in source
    assert _constant(source, "ROLES") == {
        "system": ["system"],
        "user": ["human"],
        "assistant": ["gpt"],
        "tool": ["observation"],
        "function_call": ["function_call"],
    }


def test_roles_replace_only_the_roles_given(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(
        TRAINER + "    roles:\n      assistant: [gpt, bot]\n"
        "    message_fields: {role: speaker}\n"
    )
    source = _program(path)
    roles = _constant(source, "ROLES")
    assert isinstance(roles, dict)
    assert roles["assistant"] == ["gpt", "bot"] and roles["user"] == ["human"]
    assert _constant(source, "MESSAGE_FIELDS") == {"role": "speaker", "content": "value"}


def test_tokens_in_the_program_and_the_plan(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(
        TRAINER + "    peft_adapter: lora\n"
        '    special_tokens: {eos_token: "<|im_end|>"}\n'
        '    added_tokens: ["<tool>"]\n'
    )
    source = _program(path)
    assert _constant(source, "SPECIAL_TOKENS") == {"eos_token": "<|im_end|>"}
    assert _constant(source, "ADDED_TOKENS") == ["<tool>"]
    assert "model.resize_token_embeddings(len(tokenizer)" in source
    assert "peft_config=lora_config_for(model, grown)" in source
    assert "config.modules_to_save = " in source
    config, _ = compile_config(path)
    plan = render_plan(config)
    assert "embedding and output layers then train in full" in plan
    assert main(["plan", str(path)]) == 0
    assert "modules_to_save" in capsys.readouterr().out


def test_no_tokens_no_resizing(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(TRAINER + "    peft_adapter: lora\n")
    source = _program(path)
    assert "resize_token_embeddings" not in source and "peft_config=lora_config()" in source
