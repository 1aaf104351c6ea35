"""task: grpo at compile time: reward files read as AST, bundled and hashed; requirements."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from mccompile.cli import main

TRAINER = """components:
  - id: trainer
    type: model-trainer
    model: ./tiny-model
    task: grpo
"""


def _write(tmp_path: Path, body: str, rewards: str | None = None) -> Path:
    tmp_path.mkdir(parents=True, exist_ok=True)
    if rewards is not None:
        (tmp_path / "rewards.py").write_text(rewards)
    path = tmp_path / "config.yaml"
    path.write_text(TRAINER + body)
    return path


def _build(tmp_path: Path, body: str, rewards: str | None = None) -> Path:
    out = tmp_path / "out"
    assert main(["build", str(_write(tmp_path, body, rewards)), "-o", str(out)]) == 0
    return out / "trainer"


def _errors(
    tmp_path: Path, body: str, capsys: pytest.CaptureFixture[str], rewards: str | None = None
) -> str:
    code = main(["validate", str(_write(tmp_path, body, rewards))])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err
    return err


def test_reward_file_with_a_syntax_error_names_its_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    err = _errors(
        tmp_path,
        "    reward_functions:\n      - {file: ./rewards.py, function: score}\n",
        capsys,
        rewards="def score(completions, **kwargs):\n    return [\n\ndef other(:\n    pass\n",
    )
    assert (
        "config.yaml:7:10: error: reward file './rewards.py' has a syntax error at rewards.py:"
        in err
    )


def test_reward_file_is_never_imported(tmp_path: Path) -> None:
    marker = tmp_path / "imported"
    rewards = (
        f"open({str(marker)!r}, 'w').close()\n\n\n"
        "def score(completions, **kwargs):\n    return [0.0 for _ in completions]\n"
    )
    _build(
        tmp_path, "    reward_functions:\n      - {file: ./rewards.py, function: score}\n", rewards
    )
    assert not marker.exists()


def test_reward_file_is_bundled_hashed_and_planned(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rewards = "def score(completions, **kwargs):\n    return [1.0 for _ in completions]\n"
    body = "    reward_functions:\n      - {file: ./rewards.py, function: score}\n"
    folder = _build(tmp_path, body, rewards)
    assert (folder / "rewards.py").read_text() == rewards
    manifest = json.loads((folder.parent / "manifest.json").read_text())
    digest = hashlib.sha256(rewards.encode()).hexdigest()
    assert manifest["files"]["trainer/rewards.py"] == digest
    program = (folder / "train.py").read_text()
    assert "from rewards import score  # rewards.py, beside this program" in program
    capsys.readouterr()
    assert main(["plan", str(tmp_path / "config.yaml")]) == 0
    assert f"bundles trainer/rewards.py (sha256 {digest[:12]})" in capsys.readouterr().out
    # the build is up to date while the file is unchanged, and out of date once it changes
    assert (
        main(["build", str(tmp_path / "config.yaml"), "-o", str(tmp_path / "out"), "--check"]) == 0
    )
    (tmp_path / "rewards.py").write_text(rewards.replace("1.0", "2.0"))
    assert (
        main(["build", str(tmp_path / "config.yaml"), "-o", str(tmp_path / "out"), "--check"]) == 1
    )


def test_named_rewards_and_factories_written_out(tmp_path: Path) -> None:
    body = """    reward_functions:
      - think_format_reward
      - {name: repetition_penalty_reward}
      - {name: soft_overlong_punishment, max_completion_len: 256, soft_punish_cache: 32}
      - {name: soft_overlong_punishment, max_completion_len: 128, soft_punish_cache: 16}
"""
    program = (_build(tmp_path, body) / "train.py").read_text()
    assert 'Reward(think_format_reward, "think_format_reward", chat=True)' in program
    # every argument written out, the defaults included
    assert "get_repetition_penalty_reward(ngram_size=3, max_penalty=-1.0)" in program
    assert "get_soft_overlong_punishment(max_completion_len=256, soft_punish_cache=32)" in program
    # two entries of one reward get distinct names in the logs
    assert '"soft_overlong_punishment_2"' in program
    assert "reward_weights=[1.0, 1.0, 1.0, 1.0],  # every reward weighs 1.0" in program


def test_requirements_follow_the_rewards_and_vllm(tmp_path: Path) -> None:
    plain = _build(tmp_path / "a", "    reward_functions: [think_format_reward]\n")
    text = (plain / "requirements.txt").read_text()
    assert "trl>=1.16" in text
    assert "vllm" not in text and "math-verify" not in text
    assert "use_vllm=False," in (plain / "train.py").read_text()
    assert "vllm_mode" not in (plain / "train.py").read_text().split("def training_config")[1]
    chosen = _build(
        tmp_path / "b",
        "    reward_functions: [accuracy_reward]\n    use_vllm: true\n    vllm_mode: server\n",
    )
    text = (chosen / "requirements.txt").read_text()
    assert "vllm>=" in text and "math-verify>=" in text
    program = (chosen / "train.py").read_text()
    assert "vllm_mode=VLLM_MODE," in program and "vllm_server_port=8000," in program
    assert "reward 'accuracy_reward' reads the column 'solution'" in program


def test_generation_batch_checked_at_run_time_only_when_unknown(tmp_path: Path) -> None:
    one = _build(
        tmp_path / "a",
        "    reward_functions: [think_format_reward]\n    distributed: {strategy: none}\n",
    )
    assert "PartialState().num_processes" not in (one / "train.py").read_text()
    ddp = _build(
        tmp_path / "b",
        "    reward_functions: [think_format_reward]\n    distributed: {strategy: ddp}\n",
    )
    assert "PartialState().num_processes" in (ddp / "train.py").read_text()


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            "    reward_functions:\n      - {file: ./rewards.txt, function: score}\n",
            "7:10: error: reward file './rewards.txt': a relative path to a .py file",
        ),
        (
            "    reward_functions:\n      - {file: ./class.py, function: score}\n",
            "7:10: error: reward file './class.py': a relative path to a .py file",
        ),
        (
            "    reward_functions:\n      - {file: ./rewards.py, function: later}\n",
            "7:30: error: reward function 'later' (rewards.py:5) is async",
        ),
        (
            "    reward_functions:\n      - {file: ./rewards.py}\n",
            "7:9: error: 'function' missing the reward entry",
        ),
        (
            "    reward_functions:\n      - {name: think_format_reward, file: ./rewards.py}\n",
            "7:10: error: unknown key 'name' in a reward file entry",
        ),
        (
            "    reward_functions:\n      - {name: think_format_reward, ngram_size: 2}\n",
            "think_format_reward takes no arguments",
        ),
        (
            "    reward_functions:\n      - {name: repetition_penalty_reward, max_penalty: 0.5}\n",
            "7:43: error: max_penalty is a penalty: 0 or below",
        ),
        (
            "    reward_functions:\n      - {name: soft_overlong_punishment, max_completion_len: 8,"
            " soft_punish_cache: 16}\n",
            "soft_punish_cache must be between 0 and max_completion_len",
        ),
        (
            "    reward_functions:\n      - get_soft_overlong_punishment\n",
            "unknown TRL reward 'get_soft_overlong_punishment' (did you mean"
            " 'soft_overlong_punishment'?)",
        ),
        (
            "    reward_functions: [think_format_reward]\n    validation_split: 0.1\n"
            "    num_generations: 4\n    per_device_train_batch_size: 4\n"
            "    per_device_eval_batch_size: 6\n    distributed: {strategy: none}\n",
            "10:5: error: the evaluation batch (per_device_eval_batch_size 6 x 1 process)",
        ),
        (
            "    reward_functions: [think_format_reward]\n    per_device_train_batch_size: 4\n"
            "    num_generations: 4\n    distributed: {strategy: ddp, num_processes: 2}\n"
            "    generation_batch_size: 4\n",
            "generation_batch_size 4 is not a multiple of the global batch"
            " (per_device_train_batch_size 4 x 2 processes = 8)",
        ),
    ],
)
def test_bad_reward_entries(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], body: str, expected: str
) -> None:
    rewards = (
        "def score(completions, **kwargs):\n    return [0.0 for _ in completions]\n\n\n"
        "async def later(completions, **kwargs):\n    return [0.0 for _ in completions]\n"
    )
    assert expected in _errors(tmp_path, body, capsys, rewards)


def test_warnings_for_settings_without_effect(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    body = """    reward_functions:
      - {name: soft_overlong_punishment, max_completion_len: 512, soft_punish_cache: 32}
    max_completion_length: 256
    vllm_mode: server
    max_seq_length: 1024
"""
    assert main(["validate", str(_write(tmp_path, body))]) == 0
    err = capsys.readouterr().err
    assert "7:42: warning: soft_overlong_punishment never punishes" in err
    assert "9:5: warning: vllm_mode has no effect without use_vllm: true" in err
    assert "10:5: warning: max_seq_length has no effect with task: grpo" in err
