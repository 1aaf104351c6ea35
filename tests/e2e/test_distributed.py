"""Two data-parallel CPU processes (gloo), and launch.sh on a machine without GPUs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.helpers import build, trainer_yaml

pytestmark = pytest.mark.e2e
pytest.importorskip("trl")


def _env() -> dict[str, str]:
    bin_dir = str(Path(sys.executable).parent)
    return {
        **os.environ,
        "PATH": bin_dir + os.pathsep + os.environ.get("PATH", ""),
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }


def _setup(tmp_path: Path, model: Path, strategy: str) -> tuple[Path, Path]:
    rows = [{"text": f"Row {i}: the quick brown fox jumps over the lazy dog."} for i in range(64)]
    data = tmp_path / "t.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    config = "components:\n" + trainer_yaml(
        model, Path("run"), text_column="text", peft_adapter="lora", save_steps=3
    )
    config += f"    distributed:\n      strategy: {strategy}\n"
    return build(tmp_path, config) / "trainer", data


def test_two_cpu_processes_five_times_in_a_row(tmp_path: Path, tiny_model: Path) -> None:
    from safetensors.torch import load_file

    program, data = _setup(tmp_path, tiny_model, "ddp")
    for attempt in range(5):
        shutil.rmtree(tmp_path / "run", ignore_errors=True)
        result = subprocess.run(
            ["bash", str(program / "launch.sh"), "--dataset", str(data), "--max-steps", "4"],
            cwd=tmp_path,
            env={**_env(), "NUM_PROCESSES": "2"},
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        output = result.stdout + result.stderr
        assert result.returncode == 0, (attempt, output[-4000:])
        assert "terminate called" not in output
        assert output.count("[done]") == 1  # only the main process reports
        steps = [line.split()[1] for line in output.splitlines() if line.startswith("step ")]
        assert steps == ["1/4", "2/4", "3/4", "4/4"]  # one line a step, from the main process
        summary = json.loads((tmp_path / "run" / "training_summary.json").read_text())
        # 64 rows, 4 per process, 2 processes: 8 steps an epoch
        assert summary["epoch"] == pytest.approx(0.5), summary
        assert sorted(p.name for p in (tmp_path / "run").glob("checkpoint-*")) == [
            "checkpoint-3",
            "checkpoint-4",
        ]
        weights = load_file(str(tmp_path / "run" / "adapter_model.safetensors"))
        assert weights and all("lora_" in name for name in weights)


def test_launch_sh_without_gpus_runs_one_cpu_process(tmp_path: Path, tiny_model: Path) -> None:
    program, data = _setup(tmp_path, tiny_model, "ddp")
    env = _env()
    env.pop("NUM_PROCESSES", None)
    env["PATH"] = os.pathsep.join(  # no nvidia-smi on the way
        p for p in env["PATH"].split(os.pathsep) if not (Path(p) / "nvidia-smi").exists()
    )
    result = subprocess.run(
        ["bash", str(program / "launch.sh"), "--dataset", str(data), "--max-steps", "2"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "no GPU found; running one CPU process" in result.stderr
    summary = json.loads((tmp_path / "run" / "training_summary.json").read_text())
    assert summary["epoch"] == pytest.approx(2 * 4 / 64)
