"""Preemption: SIGTERM saves a checkpoint, exits 143, and --resume ends as an uninterrupted run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.e2e.helpers import build, losses, ok, run, trainer_yaml

pytestmark = pytest.mark.e2e
pytest.importorskip("trl")

STEPS = 24


def _data(tmp_path: Path) -> Path:
    rows = [{"text": f"Row {i}: the quick brown fox jumps over the lazy dog."} for i in range(200)]
    path = tmp_path / "t.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _program(folder: Path, model: Path) -> tuple[Path, Path]:
    output_dir = folder / "run"
    config = "components:\n" + trainer_yaml(
        model, output_dir, text_column="text", peft_adapter="lora", save_steps=1000
    )
    return build(folder, config) / "trainer" / "train.py", output_dir


def test_sigterm_saves_and_resume_matches(tmp_path: Path, tiny_model: Path) -> None:
    data = _data(tmp_path)
    straight = tmp_path / "straight"
    straight.mkdir()
    program, out_straight = _program(straight, tiny_model)
    ok(run(program, "--dataset", str(data), "--max-steps", str(STEPS), cwd=straight))
    reference = losses(out_straight)

    stopped = tmp_path / "stopped"
    stopped.mkdir()
    program, out_stopped = _program(stopped, tiny_model)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, str(program), "--dataset", str(data), "--max-steps", str(STEPS)],
        cwd=stopped,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    logged = 0
    deadline = time.monotonic() + 240
    for line in process.stdout:
        if line.startswith("step "):
            logged += 1
            if logged == 5:
                process.send_signal(signal.SIGTERM)
                break
        assert time.monotonic() < deadline
    rest = process.communicate(timeout=240)[0]
    assert process.returncode == 143, rest[-3000:]
    assert "continue with --resume" in rest
    checkpoints = sorted(out_stopped.glob("checkpoint-*"))
    assert len(checkpoints) == 1
    stopped_at = int(checkpoints[0].name.split("-")[1])
    assert 5 <= stopped_at < STEPS

    # without --resume, the program refuses to overwrite those checkpoints
    refused = run(program, "--dataset", str(data), "--max-steps", str(STEPS), cwd=stopped)
    assert refused.returncode == 2
    ok(run(program, "--dataset", str(data), "--max-steps", str(STEPS), "--resume", cwd=stopped))
    resumed = losses(out_stopped)
    assert max(resumed) == STEPS
    for step in range(stopped_at + 1, STEPS + 1):
        assert resumed[step] == pytest.approx(reference[step], rel=1e-5), step
