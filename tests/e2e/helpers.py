"""Build a config and run its generated program, offline, on the CPU."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from mccompile.cli import main

ROOT = Path(__file__).resolve().parents[2]
SHARED_DATA = ROOT.parent / "shared" / "data"


def shared(name: str) -> Path:
    """A file of the project's shared sample data (beside the repository)."""
    path = SHARED_DATA / name
    if not path.is_file():
        pytest.skip(f"the shared sample data is not beside the repository ({path})")
    return path


def build(tmp_path: Path, config: str, name: str = "config.yaml") -> Path:
    """Write ``config`` and build it; return the output folder."""
    path = tmp_path / name
    path.write_text(config)
    out = tmp_path / "out"
    assert main(["build", str(path), "-o", str(out), "--force"]) == 0
    return out


def run(
    program: Path, *args: str, cwd: Path, timeout: int = 300, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    full_env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "HF_DATASETS_CACHE": str(cwd / ".hf-cache"),
        **(env or {}),
    }
    return subprocess.run(
        [sys.executable, str(program), *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def ok(result: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-6000:]
    return result


def summary(output_dir: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((output_dir / "training_summary.json").read_text())
    return data


def losses(output_dir: Path) -> dict[int, float]:
    return {e["step"]: e["loss"] for e in summary(output_dir)["log_history"] if "loss" in e}


def trainer_yaml(model: Path, output_dir: Path, **fields: Any) -> str:
    """A trainer component (plus anything in ``fields``) as YAML text."""
    settings = {
        "learning_rate": 1e-3,
        "num_epochs": 1,
        "per_device_train_batch_size": 4,
        "logging_steps": 1,
        "save_steps": 100,
        "max_seq_length": 128,
        **fields,
    }
    lines = [
        "  - id: trainer",
        "    type: model-trainer",
        "    task: sft",
        f"    model: {json.dumps(str(model))}",
        f"    output_dir: {json.dumps(str(output_dir))}",
    ]
    for key, value in settings.items():
        lines.append(f"    {key}: {json.dumps(value)}")
    return "\n".join(lines) + "\n"
