"""The GPU settings on a machine without one: the precision it chooses, and the
one-line errors of preflight() before any data or weights are loaded."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.helpers import build, ok, run, trainer_yaml

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


def _rows(path: Path, n: int = 32) -> Path:
    rows = [{"text": f"Row {i}: the quick brown fox jumps over the lazy dog."} for i in range(n)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_cpu_run_is_float32_and_says_so(tmp_path: Path, tiny_model: Path) -> None:
    """bf16: auto (the default) on a CPU: float32 weights, no mixed precision in the
    TrainingArguments nor in accelerate; --model replaces the config's model; tf32: true
    is left alone without CUDA; ddp_timeout reaches the TrainingArguments."""
    import torch
    from safetensors.torch import load_file

    data = _rows(tmp_path / "t.jsonl")
    config = "components:\n" + trainer_yaml(
        Path("models/not-here"), Path("run"), text_column="text", peft_adapter="lora", tf32=True
    )
    program = build(tmp_path, config) / "trainer"
    assert "mixed_precision: 'no'" in (program / "accelerate_config.yaml").read_text()
    result = subprocess.run(
        ["bash", str(program / "launch.sh"), "--dataset", str(data), "--max-steps", "2"]
        + ["--model", str(tiny_model)],
        cwd=tmp_path,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    assert "[setup] 1 process (NO); precision: fp32" in result.stdout
    args = torch.load(tmp_path / "run" / "training_args.bin", weights_only=False)
    assert (args.bf16, args.fp16, args.mixed_precision) == (False, False, "no")
    assert args.tf32 is None and args.ddp_timeout == 1800
    weights = load_file(str(tmp_path / "run" / "adapter_model.safetensors"))
    assert weights and {w.dtype for w in weights.values()} == {torch.float32}


CASES: list[tuple[str, dict[str, Any], str]] = [
    ("bf16-forced", {"bf16": True}, "error: bf16: true needs a CUDA GPU with bf16"),
    ("fp16-forced", {"fp16": True}, "error: fp16: true needs a CUDA GPU"),
    (
        "flash-attention",
        {"attn_implementation": "flash_attention_2"},
        "error: attn_implementation flash_attention_2 needs a CUDA GPU",
    ),
    (
        "hub-kernel",
        {"attn_implementation": "kernels-community/flash-attn2"},
        "error: attn_implementation kernels-community/flash-attn2 needs the kernels package",
    ),
]


@pytest.mark.parametrize(("case", "fields", "message"), CASES, ids=[c[0] for c in CASES])
def test_what_this_machine_cannot_run_is_one_line_before_the_data(
    tmp_path: Path, tiny_model: Path, case: str, fields: dict[str, Any], message: str
) -> None:
    if case == "hub-kernel" and importlib.util.find_spec("kernels") is not None:
        pytest.skip("the kernels package is installed here")
    config = "components:\n" + trainer_yaml(tiny_model, Path("run"), text_column="text", **fields)
    program = build(tmp_path, config) / "trainer" / "train.py"
    # a dataset that does not exist: preflight() must stop before any data is read
    result = run(program, "--dataset", "no-such.jsonl", cwd=tmp_path)
    assert result.returncode == 2, result.stdout[-2000:] + result.stderr[-3000:]
    _one_error_line(result.stderr, message)
    assert "[data]" not in result.stdout


def _one_error_line(stderr: str, message: str) -> None:
    """Our message, alone and last, and no traceback (libraries may warn before it)."""
    lines = stderr.strip().splitlines()
    assert "Traceback" not in stderr, stderr[-3000:]
    assert [line for line in lines if line.startswith("error:")] == lines[-1:], lines[-5:]
    assert lines[-1].startswith(message), lines[-5:]


def test_a_model_path_that_does_not_resolve_from_the_bundle_folder(
    tmp_path: Path, tiny_model: Path
) -> None:
    config = "components:\n" + trainer_yaml(Path("models/tiny"), Path("run"), text_column="text")
    bundle = build(tmp_path, config) / "trainer"
    result = run(bundle / "train.py", "--dataset", "no-such.jsonl", cwd=bundle)
    assert result.returncode == 2
    _one_error_line(
        result.stderr, f"error: model 'models/tiny' is no folder (paths are relative to {bundle})"
    )
    # the same bundle, told where the model is, checks the data
    (tmp_path / "t.jsonl").write_text('{"text": "a b c"}\n')
    dry = ok(
        run(
            bundle / "train.py",
            *("--dataset", str(tmp_path / "t.jsonl"), "--dry-run", "--model", str(tiny_model)),
            cwd=bundle,
        )
    )
    assert "[dry-run] the data is ready" in dry.stdout
