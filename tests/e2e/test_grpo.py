"""Generated GRPO programs trained for real on CPU: a few steps, short completions, a tiny model."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.helpers import build, ok, run, shared, summary

pytestmark = pytest.mark.e2e
pytest.importorskip("trl")

REWARDS = '''"""Reward functions of the tests: one score per completion."""


def text(completion):
    return completion if isinstance(completion, str) else completion[-1]["content"]


def concise(completions, **kwargs):
    return [max(0.0, 1.0 - len(text(c)) / 100) for c in completions]


def ascii_share(completions, **kwargs):
    """The share of ASCII letters and spaces: a reward the tiny model can move."""
    shares = []
    for completion in completions:
        letters = text(completion)
        good = sum(ch.isascii() and (ch.isalpha() or ch == " ") for ch in letters)
        shares.append(good / max(1, len(letters)))
    return shares


def one_score(completions, **kwargs):
    return [0.0]


def needs_output(completions, output, **kwargs):
    """The data's other columns arrive as keyword arguments, one value per completion."""
    assert len(output) == len(completions) and all(isinstance(o, str) for o in output)
    return [0.0 for _ in completions]
'''


def _config(model: Path, output_dir: Path, rows: int = 16, **fields: Any) -> str:
    settings = {
        "prompt_column": "instruction",
        "num_generations": 4,
        "max_completion_length": 8,
        "per_device_train_batch_size": 4,
        "learning_rate": 1e-3,
        "logging_steps": 1,
        "save_steps": 100,
        **fields,
    }
    lines = [
        "components:",
        "  - id: alpaca",
        "    type: datasets",
        "    provider: local",
        "    loader: json",
        f"    data_files: {json.dumps(str(shared('alpaca_en_demo.json')))}",
        f'    split: "train[:{rows}]"',
        "  - id: trainer",
        "    type: model-trainer",
        "    task: grpo",
        f"    model: {json.dumps(str(model))}",
        f"    output_dir: {json.dumps(str(output_dir))}",
        *(f"    {key}: {json.dumps(value)}" for key, value in settings.items()),
        "workflow:",
        "  jobs:",
        "    - id: load",
        "      component: alpaca",
        "    - id: train",
        "      component: trainer",
        "      input:",
        "        dataset: ${jobs.load.output}",
    ]
    return "\n".join(lines) + "\n"


def _program(tmp_path: Path, model: Path, **fields: Any) -> tuple[Path, Path]:
    (tmp_path / "rewards.py").write_text(REWARDS)
    output_dir = tmp_path / "run"
    out = build(tmp_path, _config(model, output_dir, **fields))
    if "./rewards.py" in json.dumps(fields):  # bundled: the program stands alone
        assert (out / "workflow" / "rewards.py").read_text() == REWARDS
    else:
        assert not (out / "workflow" / "rewards.py").exists()
    return out / "workflow" / "train.py", output_dir


def _logged(output_dir: Path) -> list[dict[str, Any]]:
    return [e for e in summary(output_dir)["log_history"] if "reward" in e]


def test_named_trl_reward_with_lora_and_dry_run(tmp_path: Path, tiny_model: Path) -> None:
    program, output_dir = _program(
        tmp_path,
        tiny_model,
        reward_functions=[{"name": "repetition_penalty_reward", "ngram_size": 1}],
        peft_adapter="lora",
    )
    dry = ok(run(program, "--dry-run", cwd=tmp_path))
    assert "### Instruction:\nDescribe a process of making crepes." in dry.stdout
    assert "repetition_penalty_reward: " in dry.stdout  # its score on the sample completion
    assert not output_dir.exists()  # no weights loaded, nothing written
    result = ok(run(program, "--max-steps", "2", cwd=tmp_path))
    assert "Traceback" not in result.stderr
    assert "[sample] prompt" in result.stdout
    assert (output_dir / "adapter_model.safetensors").is_file()
    s = summary(output_dir)
    assert s["global_step"] == 2
    assert set(s["rewards_end"]) == {"repetition_penalty_reward"}
    assert all(-1.0 <= e["reward"] <= 0.0 for e in _logged(output_dir))
    assert s["completion_length_end"] <= 8


def test_file_reward_and_trl_reward_weighted_on_chat_prompts(
    tmp_path: Path, tiny_chat_model: Path
) -> None:
    program, output_dir = _program(
        tmp_path,
        tiny_chat_model,
        reward_functions=[
            "think_format_reward",
            {"file": "./rewards.py", "function": "concise"},
            {"file": "./rewards.py", "function": "needs_output"},
        ],
        reward_weights=[2.0, 0.5, 1.0],
        beta=0.1,
    )
    dry = ok(run(program, "--dry-run", cwd=tmp_path))
    assert "<|user|>\nDescribe a process of making crepes.\n<|assistant|>" in dry.stdout
    ok(run(program, "--max-steps", "2", cwd=tmp_path))
    logged = _logged(output_dir)
    assert len(logged) == 2
    for entry in logged:
        weighted = (
            2.0 * entry["rewards/think_format_reward/mean"]
            + 0.5 * entry["rewards/concise/mean"]
            + entry["rewards/needs_output/mean"]
        )
        assert entry["reward"] == pytest.approx(weighted, abs=1e-5)
        assert "kl" in entry  # beta > 0: a reference model, and the KL logged
    assert summary(output_dir)["kl_end"] is not None


def test_it_learns_a_reward_the_model_can_move(tmp_path: Path, tiny_model: Path) -> None:
    steps = 10
    program, output_dir = _program(
        tmp_path,
        tiny_model,
        reward_functions=[{"file": "./rewards.py", "function": "ascii_share"}],
        num_generations=8,
        per_device_train_batch_size=8,
        learning_rate=3e-2,
        lr_scheduler_type="constant",
    )
    ok(run(program, "--max-steps", str(steps), cwd=tmp_path))
    curve = [e["reward"] for e in _logged(output_dir)]
    assert len(curve) == steps
    first, last = sum(curve[:3]) / 3, sum(curve[-3:]) / 3
    print(f"reward curve: {[round(r, 3) for r in curve]}; first 3 {first:.3f}, last 3 {last:.3f}")
    assert last > first + 0.2, curve


def test_sigterm_saves_and_resume_finishes(tmp_path: Path, tiny_model: Path) -> None:
    steps = 4
    program, output_dir = _program(
        tmp_path, tiny_model, reward_functions=[{"file": "./rewards.py", "function": "concise"}]
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, str(program), "--max-steps", str(steps)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    deadline = time.monotonic() + 240
    for line in process.stdout:
        if line.startswith("step "):
            process.send_signal(signal.SIGTERM)
            break
        assert time.monotonic() < deadline
    rest = process.communicate(timeout=240)[0]
    assert process.returncode == 143, rest[-3000:]
    checkpoints = sorted(output_dir.glob("checkpoint-*"))
    assert len(checkpoints) == 1
    stopped_at = int(checkpoints[0].name.split("-")[1])
    assert 1 <= stopped_at < steps
    ok(run(program, "--max-steps", str(steps), "--resume", cwd=tmp_path))
    s = summary(output_dir)
    assert s["global_step"] == steps
    assert s["resumed_from"] == str(checkpoints[0])
    assert [e["step"] for e in _logged(output_dir)] == list(range(1, steps + 1))


def test_wrong_number_of_scores_names_the_function(tmp_path: Path, tiny_model: Path) -> None:
    program, _ = _program(
        tmp_path,
        tiny_model,
        reward_functions=["think_format_reward", {"file": "./rewards.py", "function": "one_score"}],
    )
    result = run(program, "--max-steps", "1", cwd=tmp_path)
    assert result.returncode == 2, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    assert "reward function 'one_score' returned 1 scores for 4 completions" in result.stderr


def test_training_config_lets_no_trl_default_leak(tmp_path: Path, tiny_model: Path) -> None:
    program, _ = _program(
        tmp_path,
        tiny_model,
        reward_functions=["think_format_reward"],
        num_generations=2,
        per_device_train_batch_size=2,
    )
    spec = importlib.util.spec_from_file_location("grpo_train", program)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    config = module.training_config(
        module.parse_args(["--output-dir", str(tmp_path / "o")]), False, "fp32"
    )
    assert config.bf16 is False and config.fp16 is False
    assert config.activation_checkpointing is False and config.gradient_checkpointing is False
    assert config.learning_rate == 1e-3  # the config's, not GRPO's 1e-6
    assert config.logging_steps == 1
    assert config.remove_unused_columns is False  # the rewards read the other columns
    assert config.reward_weights == [1.0]
    assert (config.num_generations, config.max_completion_length, config.beta) == (2, 8, 0.0)
    assert (config.loss_type, config.scale_rewards, config.use_vllm) == ("dapo", "group", False)
    assert config.log_completions is False


def test_generation_batch_checked_at_run_time(tmp_path: Path, tiny_model: Path) -> None:
    """Under ddp the process count is known only at launch: the program checks the batch."""
    program, output_dir = _program(
        tmp_path,
        tiny_model,
        reward_functions=["think_format_reward"],
        per_device_train_batch_size=2,
        distributed={"strategy": "ddp"},
    )
    result = run(program, "--max-steps", "1", cwd=tmp_path)
    assert result.returncode == 2, result.stderr[-3000:]
    assert "the generation batch (2 completions) must hold whole groups of" in result.stderr
    assert "Traceback" not in result.stderr
    assert not output_dir.exists()
