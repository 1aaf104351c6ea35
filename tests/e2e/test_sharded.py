"""DeepSpeed ZeRO-3 on CPU processes (gloo): sharded loading, training, the final model
gathered in full."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.helpers import build, trainer_yaml

pytestmark = pytest.mark.e2e
pytest.importorskip("trl")

# from_pretrained, patched: whether ZeRO-3 was on when the weights were loaded, and
# whether the parameters came out partitioned; then stop (no training needed)
PROBE = """
import importlib.util, json, sys
from transformers.integrations import is_deepspeed_zero3_enabled
from transformers.modeling_utils import PreTrainedModel

original = PreTrainedModel.from_pretrained.__func__

def from_pretrained(cls, *args, **kwargs):
    seen = {"zero3_at_load": is_deepspeed_zero3_enabled()}
    model = original(cls, *args, **kwargs)
    seen["partitioned"] = all(hasattr(p, "ds_id") for p in model.parameters())
    print("[probe] " + json.dumps(seen), flush=True)
    raise SystemExit(0)

PreTrainedModel.from_pretrained = classmethod(from_pretrained)
spec = importlib.util.spec_from_file_location("train", sys.argv[1])
train = importlib.util.module_from_spec(spec)
spec.loader.exec_module(train)
sys.exit(train.main(sys.argv[2:]))
"""


def _env() -> dict[str, str]:
    bin_dir = str(Path(sys.executable).parent)
    return {
        **os.environ,
        "PATH": bin_dir + os.pathsep + os.environ.get("PATH", ""),
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }


def _bundle(tmp_path: Path, model: Path, distributed: str, **fields: object) -> tuple[Path, Path]:
    rows = [{"text": f"Row {i}: the quick brown fox jumps over the lazy dog."} for i in range(32)]
    data = tmp_path / "t.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    config = "components:\n" + trainer_yaml(model, Path("run"), text_column="text", **fields)
    config += "    distributed:\n" + "".join(f"      {line}\n" for line in distributed.split(";"))
    return build(tmp_path, config) / "trainer", data


def _launch(
    tmp_path: Path, program: Path, processes: int, *args: str
) -> subprocess.CompletedProcess[str]:
    command = ["accelerate", "launch", "--config_file", str(program / "accelerate_config.yaml")]
    command += ["--num_processes", str(processes), "--main_process_port", "0", *args]
    result = subprocess.run(
        command,
        cwd=tmp_path,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-5000:]
    return result


def test_zero3_loads_the_model_sharded(tmp_path: Path, tiny_model: Path) -> None:
    """The TrainingArguments exist before from_pretrained: deepspeed.zero.Init partitions
    the weights as they load (with the model first, every process loads them whole)."""
    pytest.importorskip("deepspeed")
    program, data = _bundle(
        tmp_path, tiny_model, "strategy: deepspeed;zero_stage: 3", peft_adapter="lora"
    )
    probe = tmp_path / "probe.py"
    probe.write_text(PROBE)
    result = _launch(
        tmp_path, program, 1, str(probe), str(program / "train.py"), "--dataset", str(data)
    )
    line = next(x for x in result.stdout.splitlines() if x.startswith("[probe] "))
    assert json.loads(line.removeprefix("[probe] ")) == {
        "zero3_at_load": True,
        "partitioned": True,
    }


def test_zero3_full_fine_tuning_saves_the_gathered_model(tmp_path: Path, tiny_model: Path) -> None:
    """Two CPU processes under ZeRO-3; the final model (zero3_save_16bit_model) loads
    with from_pretrained, every weight at its full shape."""
    pytest.importorskip("deepspeed")
    from transformers import AutoModelForCausalLM

    program, data = _bundle(tmp_path, tiny_model, "strategy: deepspeed;zero_stage: 3")
    _launch(
        tmp_path,
        program,
        2,
        str(program / "train.py"),
        *("--dataset", str(data), "--max-steps", "2"),
    )
    trained = AutoModelForCausalLM.from_pretrained(tmp_path / "run")
    base = AutoModelForCausalLM.from_pretrained(tiny_model)
    shapes = {k: tuple(v.shape) for k, v in base.state_dict().items()}
    assert {k: tuple(v.shape) for k, v in trained.state_dict().items()} == shapes
    assert any((trained.state_dict()[k] != v).any() for k, v in base.state_dict().items()), (
        "the saved model is the base model: nothing trained"
    )
