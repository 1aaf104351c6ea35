"""Chat templates, ShareGPT conversations and tokens, in generated programs run for real."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.helpers import build, ok, run, shared, summary, trainer_yaml

pytestmark = pytest.mark.e2e
pytest.importorskip("trl")

BUILTINS = ["alpaca", "chatml", "gemma3", "llama3", "mistral", "qwen3"]
# what ends an assistant turn; which templates trim the turns' text
END_OF_TURN = {
    "alpaca": "</s>",
    "chatml": "<|im_end|>",
    "gemma3": "<end_of_turn>",
    "llama3": "<|eot_id|>",
    "mistral": "</s>",
    "qwen3": "<|im_end|>",
}

# runs several generated programs' dry runs in one process: the imports are paid once
DRIVER = """
import contextlib, importlib.util, io, json, sys
out = {}
for program, dataset in json.loads(sys.argv[1]):
    spec = importlib.util.spec_from_file_location("train_" + str(len(out)), program)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    shown = io.StringIO()
    with contextlib.redirect_stdout(shown):
        module.main(["--dataset", dataset, "--dry-run"])
    out[program + " " + dataset] = shown.getvalue()
print(json.dumps(out))
"""


def _rows(name: str) -> list[dict]:
    data: list[dict] = json.loads(shared(name).read_text())
    return data


def _data(tmp_path: Path) -> dict[str, tuple[Path, list[list[str]]]]:
    """Alpaca, chat and ShareGPT files, with the assistant texts of their first two rows."""
    alpaca = [_rows("alpaca_en_demo.json")[i] for i in (5, 1)]  # with input, then without
    chat = [json.loads(line) for line in shared("chat_messages.jsonl").read_text().splitlines()[:2]]
    dpo = _rows("dpo_en_demo.json")
    sharegpt = [
        {"conversations": dpo[i]["conversations"] + [dpo[i]["chosen"]]} for i in (267, 172)
    ]
    files = {
        "alpaca": (tmp_path / "alpaca.json", alpaca),
        "chat": (tmp_path / "chat.json", chat),
        "sharegpt": (tmp_path / "sharegpt.json", sharegpt),
    }
    out = {}
    for kind, (path, rows) in files.items():
        path.write_text(json.dumps(rows))
        if kind == "alpaca":
            answers = [[r["output"]] for r in rows]
        elif kind == "chat":
            answers = [
                [m["content"] for m in r["messages"] if m["role"] == "assistant"] for r in rows
            ]
        else:
            answers = [[m["value"] for m in r["conversations"] if m["from"] == "gpt"] for r in rows]
        out[kind] = (path, answers)
    return out


def test_loss_on_the_answers_with_every_builtin(tmp_path: Path, tiny_chat_model: Path) -> None:
    """--dry-run shows [[ ]] around each assistant answer and its end-of-turn token only."""
    data = _data(tmp_path)
    jobs = []
    for name in BUILTINS:
        folder = tmp_path / name
        folder.mkdir()
        yaml = trainer_yaml(
            tiny_chat_model, folder / "run", chat_template=name, max_seq_length=4096
        )
        out = build(folder, "components:\n" + yaml)
        for path, _ in data.values():
            jobs.append((str(out / "trainer" / "train.py"), str(path)))
    result = subprocess.run(
        [sys.executable, "-c", DRIVER, json.dumps(jobs)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    shown = json.loads(result.stdout.splitlines()[-1])
    for program, dataset in jobs:
        name = Path(program).parent.parent.parent.name
        kind = next(k for k, (path, _) in data.items() if str(path) == dataset)
        text = shown[f"{program} {dataset}"]
        assert f"format: {kind}" in text
        examples = [e.split("\n", 1)[1] for e in text.split("--- example ")[1:]]  # not the header
        assert len(examples) == 2
        for example, answers in zip(examples, data[kind][1], strict=True):
            trims = name in ("gemma3", "llama3")
            expected = [(a.strip() if trims else a) + END_OF_TURN[name] for a in answers]
            assert re.findall(r"\[\[(.*?)\]\]", example, re.DOTALL) == expected, (name, kind)
    # the Alpaca template is the Stanford prompt, input variant first
    alpaca = shown[f"{tmp_path / 'alpaca' / 'out' / 'trainer' / 'train.py'} {data['alpaca'][0]}"]
    assert "paired with an input that provides further context" in alpaca.split("example 1")[0]
    assert "### Input:\n" in alpaca and "### Response:[[" in alpaca


def test_glaive_tool_calls_train_with_qwen3(tmp_path: Path, tiny_chat_model: Path) -> None:
    """function_call turns become tool calls, observations tool turns, tools reach the template."""
    data = tmp_path / "glaive.json"
    data.write_text(json.dumps(_rows("glaive_toolcall_en_demo.json")[:16]))
    out = build(
        tmp_path,
        "components:\n"
        + trainer_yaml(
            tiny_chat_model,
            tmp_path / "run",
            chat_template="qwen3",
            peft_adapter="lora",
            max_seq_length=2048,
            per_device_train_batch_size=2,
        ),
    )
    program = out / "trainer" / "train.py"
    dry = ok(run(program, "--dataset", str(data), "--dry-run", cwd=tmp_path))
    assert "format: sharegpt" in dry.stdout
    assert "<tools>" in dry.stdout and "<tool_response>" in dry.stdout
    assert '[[<tool_call>\n{"name": "search_recipes"' in dry.stdout  # the call carries the loss
    ok(run(program, "--dataset", str(data), "--max-steps", "2", cwd=tmp_path))
    assert summary(tmp_path / "run")["global_step"] == 2
    saved = json.loads((tmp_path / "run" / "tokenizer_config.json").read_text())
    template = saved.get("chat_template") or (tmp_path / "run" / "chat_template.jinja").read_text()
    assert "{%- generation %}" in template


def test_a_template_that_drops_tool_calls_stops(tmp_path: Path, tiny_chat_model: Path) -> None:
    data = tmp_path / "glaive.json"
    data.write_text(json.dumps(_rows("glaive_toolcall_en_demo.json")[:4]))
    out = build(
        tmp_path,
        "components:\n" + trainer_yaml(tiny_chat_model, tmp_path / "run", chat_template="chatml"),
    )
    result = run(out / "trainer" / "train.py", "--dataset", str(data), "--dry-run", cwd=tmp_path)
    assert result.returncode == 2, result.stderr[-2000:]
    assert "leaves out a function_call turn" in result.stderr
    assert "Traceback" not in result.stderr


def test_dpo_conversations_as_sft_data(tmp_path: Path, tiny_chat_model: Path) -> None:
    """The conversations end with a human turn: final_turn_column: chosen supplies the answer."""
    data = tmp_path / "dpo.json"
    data.write_text(json.dumps(_rows("dpo_en_demo.json")[:16]))
    (tmp_path / "a").mkdir()
    config = "components:\n" + trainer_yaml(tiny_chat_model, tmp_path / "a" / "run")
    plain = build(tmp_path / "a", config)
    stopped = run(plain / "trainer" / "train.py", "--dataset", str(data), "--dry-run", cwd=tmp_path)
    assert stopped.returncode == 2
    assert "ends with a user turn" in stopped.stderr and "final_turn_column" in stopped.stderr
    (tmp_path / "b").mkdir()
    out = build(
        tmp_path / "b",
        "components:\n"
        + trainer_yaml(
            tiny_chat_model,
            tmp_path / "b" / "run",
            final_turn_column="chosen",
            peft_adapter="lora",
            max_seq_length=256,
        ),
    )
    program = out / "trainer" / "train.py"
    dry = ok(run(program, "--dataset", str(data), "--dry-run", cwd=tmp_path))
    assert "format: sharegpt" in dry.stdout
    first = _rows("dpo_en_demo.json")[0]["chosen"]["value"]
    assert f"[[{first[:40]}" in dry.stdout
    ok(run(program, "--dataset", str(data), "--max-steps", "2", cwd=tmp_path))
    assert summary(tmp_path / "b" / "run")["global_step"] == 2


def test_special_and_added_tokens_with_lora(tmp_path: Path, tiny_chat_model: Path) -> None:
    """The vocabulary grows; the adapter carries the embedding and output layers and reloads."""
    from peft import PeftModel
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM, AutoTokenizer

    output_dir = tmp_path / "run"
    config = "components:\n" + trainer_yaml(
        tiny_chat_model,
        output_dir,
        chat_template="chatml",
        special_tokens={"eos_token": "<|im_end|>", "pad_token": "<pad>"},
        added_tokens=["<|im_start|>", "<tool>"],
        peft_adapter="lora",
        per_device_train_batch_size=2,
    )
    out = build(tmp_path, config)
    result = ok(
        run(
            out / "trainer" / "train.py",
            "--dataset",
            str(shared("chat_messages.jsonl")),
            "--max-steps",
            "2",
            cwd=tmp_path,
        )
    )
    assert "[tokens] 3 new tokens" in result.stdout  # <|im_start|>, <|im_end|>, <tool>
    assert "embed_tokens, lm_head train in full" in result.stdout
    tokenizer = AutoTokenizer.from_pretrained(output_dir)
    assert tokenizer.eos_token == "<|im_end|>" and tokenizer.pad_token == "<pad>"
    assert {"<|im_start|>", "<tool>", "<|im_end|>"} <= set(tokenizer.get_vocab())
    assert tokenizer.chat_template.startswith("{% for message in messages %}{{'<|im_start|>'")
    adapter = json.loads((output_dir / "adapter_config.json").read_text())
    assert {"embed_tokens", "lm_head"} <= set(adapter["modules_to_save"])
    base = AutoModelForCausalLM.from_pretrained(tiny_chat_model)
    base.resize_token_embeddings(len(tokenizer))
    model = PeftModel.from_pretrained(base, output_dir)
    saved = load_file(str(output_dir / "adapter_model.safetensors"))
    trained = saved["base_model.model.model.embed_tokens.modules_to_save.weight"]
    loaded = model.get_input_embeddings().modules_to_save["default"].weight
    assert loaded.shape[0] == len(tokenizer)
    assert bool((loaded == trained).all())
