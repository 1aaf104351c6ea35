"""launch.sh passes the program's exit status through, with no launcher traceback after it.

``accelerate launch`` alone ends every failed run with exit 1 and a CalledProcessError (one
process) or ChildFailedError (torchrun) traceback after the program's own message.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.e2e.helpers import build, trainer_yaml

pytestmark = pytest.mark.e2e
pytest.importorskip("trl")


def _env(**extra: str) -> dict[str, str]:
    env = {
        **os.environ,
        "PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", ""),
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("NUM_PROCESSES", None)
    env.update(extra)
    return env


def _bundle(
    tmp_path: Path, model: Path, rows: int = 32, distributed: str = ""
) -> tuple[Path, Path]:
    """A config (without ``distributed:``: strategy auto), built; its launch.sh and data."""
    data = tmp_path / "t.jsonl"
    data.write_text(
        "".join(json.dumps({"text": f"Row {i}: the quick brown fox."}) + "\n" for i in range(rows))
    )
    config = "components:\n" + trainer_yaml(
        model, Path("run"), text_column="text", peft_adapter="lora", max_seq_length=64
    )
    if distributed:
        config += f"    distributed: {distributed}\n"
    return build(tmp_path, config) / "trainer" / "launch.sh", data


def _launch(launch: Path, *args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(launch), *args],
        cwd=cwd,
        env=_env(**env),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.mark.parametrize("processes", ["1", "2"])
def test_exit_2_passes_through_without_a_traceback(
    tmp_path: Path, tiny_model: Path, processes: str
) -> None:
    launch, _ = _bundle(tmp_path, tiny_model)
    result = _launch(launch, "--dataset", "missing.jsonl", cwd=tmp_path, NUM_PROCESSES=processes)
    output = result.stdout + result.stderr
    assert result.returncode == 2, output[-3000:]
    assert "error: dataset 'missing.jsonl' does not exist" in result.stderr
    for launcher_noise in ("Traceback", "CalledProcessError", "ChildFailedError"):
        assert launcher_noise not in output, output[-3000:]


@pytest.mark.parametrize("gpus", [1, 2])
def test_auto_is_one_plain_process_on_one_gpu_and_ddp_on_more(
    tmp_path: Path, tiny_model: Path, gpus: int
) -> None:
    """Strategy auto (no distributed: in the config) follows the GPUs launch.sh counts.

    A stand-in nvidia-smi lists the GPUs; the processes themselves run on the CPU (gloo).
    """
    launch, data = _bundle(tmp_path, tiny_model)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    smi = bin_dir / "nvidia-smi"
    listing = "".join(f"GPU {i}: Stand-in (UUID: GPU-{i})\\n" for i in range(gpus))
    smi.write_text(f'#!/bin/sh\nif [ "$1" = --list-gpus ]; then printf "{listing}"; fi\n')
    smi.chmod(0o755)
    path = str(bin_dir) + os.pathsep + _env()["PATH"]
    result = _launch(
        launch, "--dataset", str(data), "--max-steps", "3", cwd=tmp_path, PATH=path, LOGLEVEL="INFO"
    )
    assert result.returncode == 0, result.stderr[-3000:]
    # torch's elastic agent (LOGLEVEL=INFO) logs its rendezvous only when it starts the processes
    world = re.findall(r"group_world_size=(\d+)", result.stdout + result.stderr)
    assert world == ([] if gpus == 1 else ["1"])
    summary = json.loads((tmp_path / "run" / "training_summary.json").read_text())
    # 3 steps of 4 rows on each of the processes: 1 process on 1 GPU, DDP over 2
    assert summary["epoch"] == pytest.approx(3 * 4 * gpus / 32)


def test_strategy_none_is_one_process_whatever_num_processes_says(
    tmp_path: Path, tiny_model: Path
) -> None:
    launch, _ = _bundle(tmp_path, tiny_model, distributed="{strategy: none}")
    result = _launch(launch, "--dataset", "missing.jsonl", cwd=tmp_path, NUM_PROCESSES="2")
    assert result.returncode == 2, result.stderr[-3000:]
    assert result.stderr.count("error: dataset 'missing.jsonl' does not exist") == 1


def test_sigterm_to_launch_sh_exits_143(tmp_path: Path, tiny_model: Path) -> None:
    launch, data = _bundle(tmp_path, tiny_model, rows=400)
    process = subprocess.Popen(
        ["bash", str(launch), "--dataset", str(data), "--max-steps", "100"],
        cwd=tmp_path,
        env=_env(NUM_PROCESSES="1"),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    deadline = time.monotonic() + 240
    for line in process.stdout:
        if line.startswith("step "):
            process.send_signal(signal.SIGTERM)  # launch.sh execs the launcher: same PID
            break
        assert time.monotonic() < deadline
    rest = process.communicate(timeout=240)[0]
    assert process.returncode == 143, rest[-3000:]
    assert "Traceback" not in rest, rest[-3000:]
    assert list((tmp_path / "run").glob("checkpoint-*"))
