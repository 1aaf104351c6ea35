"""Preference training (dpo, kto, orpo, reward) on a tiny model, on the real demo data."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.helpers import build, losses, ok, run, shared, summary

pytestmark = pytest.mark.e2e
pytest.importorskip("trl")

REWARDS = ("rewards/chosen", "rewards/rejected", "rewards/accuracies", "rewards/margins")
# dpo_en_demo rows: multi-turn (human, gpt, human, ...), with a system turn, single-turn
EN_ROWS = [172, 267, 43, 23, 134, 80, 144, 32]


def trainer(model: Path, output_dir: Path, task: str, **fields: Any) -> str:
    settings = {
        "learning_rate": 1e-3,
        "num_epochs": 1,
        "per_device_train_batch_size": 4,
        "logging_steps": 1,
        "save_steps": 100,
        "max_seq_length": 1024,
        **fields,
    }
    lines = [
        "  - id: trainer",
        "    type: model-trainer",
        f"    task: {task}",
        f"    model: {json.dumps(str(model))}",
        f"    output_dir: {json.dumps(str(output_dir))}",
    ]
    lines += [f"    {key}: {json.dumps(value)}" for key, value in settings.items()]
    return "\n".join(lines) + "\n"


def demo_config(data: Path, rows: list[int], trainer_yaml: str) -> str:
    """The demo file, loaded and cut to ``rows`` by a select job, then the trainer."""
    return f"""components:
  - id: demo
    type: datasets
    provider: local
    loader: json
    data_files: {json.dumps(str(data))}
  - id: ops
    type: datasets
    method: select
{trainer_yaml}
workflows:
  - id: train
    jobs:
      - id: load
        component: demo
      - id: rows
        component: ops
        input:
          dataset: ${{jobs.load.output}}
          axis: rows
          indices: {json.dumps(rows)}
      - id: train
        component: trainer
        input:
          dataset: ${{jobs.rows.output}}
"""


def jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))
    return path


def learnable_pairs(count: int) -> list[dict[str, str]]:
    """Pairs a tiny model can learn: the chosen answer repeats the question's word."""
    words = ["cat", "dog", "sky", "water", "paris", "model", "token", "data"]
    rows = []
    for i in range(count):
        word = words[i % len(words)]
        rows.append(
            {
                "prompt": f"Question {i}: is the {word} a {word}?\nAnswer:",
                "chosen": f" yes, the {word} is a {word}.",
                "rejected": " no, it is not.",
            }
        )
    return rows


def assert_rewards(s: dict[str, Any], prefix: str = "train_") -> None:
    for name in REWARDS:
        assert isinstance(s.get(prefix + name), float), (prefix + name, sorted(s))
    logged = [e for e in s["log_history"] if "rewards/margins" in e]
    assert logged, "the log has no rewards/*"


# -- DPO ---------------------------------------------------------------------------


def test_dpo_lora_on_multiturn_sharegpt(tmp_path: Path, tiny_chat_model: Path) -> None:
    data = shared("dpo_en_demo.json")
    out_dir = tmp_path / "run"
    config = demo_config(
        data, EN_ROWS, trainer(tiny_chat_model, out_dir, "dpo", peft_adapter="lora")
    )
    program = build(tmp_path, config) / "train" / "train.py"
    dry = ok(run(program, "--dry-run", cwd=tmp_path)).stdout
    assert "format: sharegpt" in dry
    assert "through the chat template" in dry
    first = dry.split("--- pair 0")[1].split("--- pair 1")[0]
    prompt = first.split("[prompt]")[1].split("[chosen]")[0]
    # the whole multi-turn conversation is the prompt; the chosen answer follows it
    assert prompt.count("<|user|>") == 3 and prompt.count("<|assistant|>") == 3, prompt
    assert "overtake the person in second place" in prompt
    assert "[rejected]" in first
    assert "no weights were loaded" in dry
    assert not out_dir.exists()
    ok(run(program, "--max-steps", "2", cwd=tmp_path))
    s = summary(out_dir)
    assert s["global_step"] == 2
    assert_rewards(s)
    assert (out_dir / "adapter_model.safetensors").is_file()
    text = program.read_text()
    assert "no second copy is kept in memory" in text
    assert "ref_model=None" in text


def test_dpo_qlora_nf4_on_chinese_pairs(tmp_path: Path, tiny_model: Path) -> None:
    data = shared("dpo_zh_demo.json")
    out_dir = tmp_path / "run"
    fields = {
        "peft_adapter": "lora",
        "quantization": "nf4",
        "bnb_4bit_compute_dtype": "float32",
        "max_seq_length": 512,
        "precompute_ref_log_probs": True,
    }
    config = demo_config(data, [193, 79, 107, 288], trainer(tiny_model, out_dir, "dpo", **fields))
    program = build(tmp_path, config) / "train" / "train.py"
    result = ok(run(program, "--max-steps", "1", cwd=tmp_path))
    # no chat template: the plain format
    assert "in the plain format (no chat template)" in result.stdout
    assert "PRECOMPUTE_REF_LOG_PROBS = True" in program.read_text()
    assert summary(out_dir)["global_step"] == 1
    assert (out_dir / "adapter_model.safetensors").is_file()


def test_dpo_learns_the_preferred_answers(tmp_path: Path, tiny_model: Path) -> None:
    data = jsonl(tmp_path / "pairs.jsonl", learnable_pairs(32))
    out_dir = tmp_path / "run"
    config = "components:\n" + trainer(
        tiny_model,
        out_dir,
        "dpo",
        peft_adapter="lora",
        learning_rate=5e-3,
        num_epochs=4,
        per_device_train_batch_size=8,
        logging_steps=4,
        max_seq_length=64,
        eval_steps=1000,
    ).replace(
        "    type: model-trainer\n",
        "    type: model-trainer\n    eval_dataset: ${input.eval_dataset}\n",
    )
    program = build(tmp_path, config) / "trainer" / "train.py"
    started = time.monotonic()
    ok(run(program, "--dataset", str(data), "--eval-dataset", str(data), cwd=tmp_path, timeout=600))
    s = summary(out_dir)
    print(
        f"DPO on 32 pairs, {s['global_step']} steps, {time.monotonic() - started:.0f} s:"
        f" eval accuracy {s['eval_rewards/accuracies']:.3f},"
        f" eval margin {s['eval_rewards/margins']:.3f}"
    )
    assert s["global_step"] == 16
    assert s["eval_rewards/accuracies"] > 0.5
    assert s["eval_rewards/margins"] > 0
    first = next(e for e in s["log_history"] if "rewards/margins" in e)
    assert s["train_rewards/margins"] > first["rewards/margins"]


def test_dpo_full_fine_tuning_with_a_reference_copy(tmp_path: Path, tiny_model: Path) -> None:
    data = jsonl(tmp_path / "pairs.jsonl", learnable_pairs(8))
    out_dir = tmp_path / "run"
    config = "components:\n" + trainer(tiny_model, out_dir, "dpo", max_seq_length=64)
    program = build(tmp_path, config) / "trainer" / "train.py"
    assert "ref_model=load_reference_model(MODEL, precision)" in program.read_text()
    ok(run(program, "--dataset", str(data), "--max-steps", "2", cwd=tmp_path))
    s = summary(out_dir)
    assert s["global_step"] == 2
    assert_rewards(s)
    assert (out_dir / "model.safetensors").is_file()


def test_dpo_in_two_cpu_processes(tmp_path: Path, tiny_model: Path) -> None:
    data = jsonl(tmp_path / "pairs.jsonl", learnable_pairs(16))
    config = "components:\n" + trainer(
        tiny_model,
        Path("run"),
        "dpo",
        peft_adapter="lora",
        max_seq_length=64,
        per_device_train_batch_size=2,
    )
    config += "    distributed:\n      strategy: ddp\n"
    folder = build(tmp_path, config) / "trainer"
    env = {
        **os.environ,
        "PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", ""),
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "NUM_PROCESSES": "2",
    }
    result = subprocess.run(
        ["bash", str(folder / "launch.sh"), "--dataset", str(data), "--max-steps", "2"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert output.count("[done]") == 1  # only the main process reports
    s = json.loads((tmp_path / "run" / "training_summary.json").read_text())
    # 16 pairs, 2 per process, 2 processes: 4 steps an epoch
    assert s["epoch"] == pytest.approx(0.5), s
    assert_rewards(s)


def test_dpo_sigterm_then_resume_matches(tmp_path: Path, tiny_model: Path) -> None:
    steps = 10
    data = jsonl(tmp_path / "pairs.jsonl", learnable_pairs(48))

    def program(folder: Path) -> tuple[Path, Path]:
        folder.mkdir()
        out = folder / "run"
        fields = {"peft_adapter": "lora", "max_seq_length": 64, "save_steps": 1000}
        config = "components:\n" + trainer(tiny_model, out, "dpo", **fields)
        return build(folder, config) / "trainer" / "train.py", out

    straight, out_straight = program(tmp_path / "straight")
    ok(run(straight, "--dataset", str(data), "--max-steps", str(steps), cwd=tmp_path / "straight"))
    reference = losses(out_straight)

    stopped, out_stopped = program(tmp_path / "stopped")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, str(stopped), "--dataset", str(data), "--max-steps", str(steps)],
        cwd=tmp_path / "stopped",
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    logged = 0
    for line in process.stdout:
        if line.startswith("step "):
            logged += 1
            if logged == 3:
                process.send_signal(signal.SIGTERM)
                break
    rest = process.communicate(timeout=240)[0]
    assert process.returncode == 143, rest[-3000:]
    checkpoints = sorted(out_stopped.glob("checkpoint-*"))
    assert len(checkpoints) == 1
    stopped_at = int(checkpoints[0].name.split("-")[1])
    assert 3 <= stopped_at < steps
    ok(
        run(
            stopped,
            "--dataset",
            str(data),
            "--max-steps",
            str(steps),
            "--resume",
            cwd=tmp_path / "stopped",
        )
    )
    resumed = losses(out_stopped)
    assert max(resumed) == steps
    for step in range(stopped_at + 1, steps + 1):
        assert resumed[step] == pytest.approx(reference[step], rel=1e-5), step


@pytest.mark.parametrize(
    ("rows", "fields", "message"),
    [
        (
            [{"prompt": "q", "chosen": "a", "rejected": "b"}],
            {"chosen_column": "chosen", "rejected_column": "worse"},
            "the training data has no column 'worse'",
        ),
        ([{"prompt": "q", "chosen": "a"}], {}, "cannot tell the pair layout from the columns"),
        (
            [{"prompt": "q", "chosen": 3, "rejected": "b"}],
            {},
            "training row 0: chosen (column 'chosen') is neither text nor chat turns: 3",
        ),
        (
            [
                {"prompt": "q", "chosen": "a", "rejected": "b"},
                {"prompt": "q", "chosen": "a", "rejected": " "},
            ],
            {},
            "training row 1: rejected is empty",
        ),
    ],
)
def test_bad_pairs_stop_before_weights(
    tmp_path: Path,
    tiny_model: Path,
    rows: list[dict[str, Any]],
    fields: dict[str, Any],
    message: str,
) -> None:
    data = jsonl(tmp_path / "pairs.jsonl", rows)
    config = "components:\n" + trainer(
        tiny_model, tmp_path / "run", "dpo", max_seq_length=64, **fields
    )
    program = build(tmp_path, config) / "trainer" / "train.py"
    result = run(program, "--dataset", str(data), "--dry-run", cwd=tmp_path)
    assert result.returncode == 2, result.stdout[-2000:] + result.stderr[-2000:]
    assert message in result.stderr
    assert "Traceback" not in result.stderr


# -- KTO ---------------------------------------------------------------------------


def test_kto_on_unpaired_chat_rows(tmp_path: Path, tiny_chat_model: Path) -> None:
    data = shared("kto_en_demo.json")
    out_dir = tmp_path / "run"
    rows = [147, 119, 40, 221, 222, 41, 49, 230]  # short ones, desirable and undesirable
    config = demo_config(data, rows, trainer(tiny_chat_model, out_dir, "kto", peft_adapter="lora"))
    program = build(tmp_path, config) / "train" / "train.py"
    text = program.read_text()
    assert 'train_sampling_strategy="sequential"' in text
    assert "train_data.shuffle(seed=SEED)" in text
    dry = ok(run(program, "--dry-run", cwd=tmp_path)).stdout
    assert "format: messages" in dry
    assert "desirable" in dry and "[completion]" in dry
    ok(run(program, "--max-steps", "2", cwd=tmp_path))
    s = summary(out_dir)
    assert s["global_step"] == 2
    assert isinstance(s["train_kl"], float)
    assert any("rewards/chosen" in e or "rewards/rejected" in e for e in s["log_history"])


def test_kto_label_must_be_true_or_false(tmp_path: Path, tiny_model: Path) -> None:
    rows = [{"prompt": "q", "completion": "a", "label": "yes"}]
    data = jsonl(tmp_path / "rows.jsonl", rows)
    config = "components:\n" + trainer(tiny_model, tmp_path / "run", "kto", max_seq_length=64)
    program = build(tmp_path, config) / "trainer" / "train.py"
    result = run(program, "--dataset", str(data), "--dry-run", cwd=tmp_path)
    assert result.returncode == 2
    assert "training row 0: the label (column 'label') must be true or false" in result.stderr


# -- ORPO and reward models --------------------------------------------------------


def test_orpo_with_lora_on_sharegpt_pairs(tmp_path: Path, tiny_chat_model: Path) -> None:
    data = shared("dpo_en_demo.json")
    out_dir = tmp_path / "run"
    # 144's prompt is short; 172's multi-turn prompt fills 256 tokens and is dropped
    fields = {"peft_adapter": "lora", "max_seq_length": 256, "per_device_train_batch_size": 2}
    config = demo_config(
        data, [134, 80, 144, 172], trainer(tiny_chat_model, out_dir, "orpo", **fields)
    )
    program = build(tmp_path, config) / "train" / "train.py"
    assert "from trl.experimental.orpo import ORPOTrainer" in program.read_text()
    result = ok(run(program, "--max-steps", "1", cwd=tmp_path))
    assert "pairs whose prompt alone fills MAX_SEQ_LENGTH" in result.stdout
    s = summary(out_dir)
    assert s["global_step"] == 1
    assert_rewards(s)
    assert not any(math.isnan(v) for k, v in s.items() if k.startswith("train_rewards"))
    requirements = (program.parent / "requirements.txt").read_text()
    assert "trl>=" in requirements and "pandas>=" in requirements


def test_reward_model_reports_pairwise_accuracy(tmp_path: Path, tiny_model: Path) -> None:
    data = jsonl(tmp_path / "pairs.jsonl", learnable_pairs(8))
    out_dir = tmp_path / "run"
    config = "components:\n" + trainer(
        tiny_model, out_dir, "reward", peft_adapter="lora", max_seq_length=64, validation_split=4
    )
    program = build(tmp_path, config) / "trainer" / "train.py"
    ok(run(program, "--dataset", str(data), "--max-steps", "2", cwd=tmp_path))
    s = summary(out_dir)
    assert s["global_step"] == 2
    assert 0.0 <= s["eval_accuracy"] <= 1.0
    assert isinstance(s["train_accuracy"], float) and isinstance(s["train_margin"], float)
    adapter = json.loads((out_dir / "adapter_config.json").read_text())
    assert adapter["task_type"] == "SEQ_CLS"
    assert "score" in (adapter.get("modules_to_save") or [])


def test_shared_leading_turns_are_the_prompt(tmp_path: Path, tiny_chat_model: Path) -> None:
    def turns(answer: str) -> list[dict[str, str]]:
        return [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "What is the capital of France?"},
            {"role": "assistant", "content": answer},
        ]

    rows = [{"chosen": turns("Paris."), "rejected": turns("Lyon, I think.")}] * 2
    data = jsonl(tmp_path / "pairs.jsonl", rows)
    config = "components:\n" + trainer(tiny_chat_model, tmp_path / "run", "dpo", max_seq_length=64)
    program = build(tmp_path, config) / "trainer" / "train.py"
    dry = ok(run(program, "--dataset", str(data), "--dry-run", cwd=tmp_path)).stdout
    assert "prompt the turns chosen and rejected share" in dry
    pair = dry.split("--- pair 0")[1].split("--- pair 1")[0]
    prompt, rest = pair.split("[prompt]\n")[1].split("[chosen]\n")
    chosen, rejected = rest.split("[rejected]\n")
    assert "<|system|>\nBe brief." in prompt and prompt.rstrip().endswith("<|assistant|>")
    assert chosen.startswith("Paris.") and "France" not in chosen
    assert rejected.startswith("Lyon, I think.")


def test_chat_template_applies_to_preference_pairs(tmp_path: Path, tiny_model: Path) -> None:
    """chat_template: chatml on a model without a template: the pair's prompt is ChatML."""
    turns = [{"role": "user", "content": "What is the capital of France?"}]
    rows = [{"prompt": turns, "chosen": "Paris.", "rejected": "Lyon."}] * 2
    data = jsonl(tmp_path / "pairs.jsonl", rows)
    config = "components:\n" + trainer(
        tiny_model, tmp_path / "run", "dpo", max_seq_length=64, chat_template="chatml"
    )
    program = build(tmp_path, config) / "trainer" / "train.py"
    assert "tokenizer.chat_template = CHAT_TEMPLATE" in program.read_text()
    dry = ok(run(program, "--dataset", str(data), "--dry-run", cwd=tmp_path)).stdout
    prompt = dry.split("--- pair 0")[1].split("[prompt]\n")[1].split("[chosen]\n")[0]
    assert "<|im_start|>user\nWhat is the capital of France?<|im_end|>" in prompt
    assert prompt.rstrip().endswith("<|im_start|>assistant")
