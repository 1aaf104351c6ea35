"""DeepSpeed ZeRO-3 and FSDP on CPU processes (gloo): sharded loading, training, the
final model gathered in full, and checkpoints that resume."""

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


def _needs_deepspeed() -> None:
    pytest.importorskip("deepspeed")
    if shutil.which("c++") is None:
        pytest.skip("deepspeed builds its CPU communication op with a C++ compiler")


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
    _needs_deepspeed()
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
    _needs_deepspeed()
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


RUNNER = Path(__file__).with_name("fsdp_on_cpu.py")


def _fsdp_train(tmp_path: Path, program: Path, data: Path, *args: str) -> dict[str, object]:
    result = _launch(
        tmp_path,
        program,
        2,
        *(str(RUNNER), str(program / "train.py"), "--dataset", str(data), *args),
    )
    assert "[setup] 2 processes (MULTI_CPU)" in result.stdout
    assert "accelerate shards with FSDP on GPUs only" not in result.stdout
    summary: dict[str, object] = json.loads(
        (tmp_path / "run" / "training_summary.json").read_text()
    )
    return summary


def test_fsdp_lora_saves_a_loadable_adapter_and_resumes(tmp_path: Path, tiny_model: Path) -> None:
    """FSDP2 on two CPU processes: sharded checkpoints (one piece per process, DCP),
    the final adapter gathered whole and loadable, a resume from the sharded checkpoint."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    program, data = _bundle(
        tmp_path, tiny_model, "strategy: fsdp", peft_adapter="lora", save_steps=2
    )
    _fsdp_train(tmp_path, program, data, "--max-steps", "3")
    run = tmp_path / "run"
    shards = sorted(p.name for p in (run / "checkpoint-2" / "pytorch_model_fsdp_0").iterdir())
    assert shards.count("__0_0.distcp") + shards.count("__1_0.distcp") == 2, shards
    assert not (run / "checkpoint-2" / "adapter_model.safetensors").exists()  # sharded only
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_model), run)
    lora_b = [p for name, p in model.named_parameters() if "lora_B" in name]
    assert lora_b and any(bool((p != 0).any()) for p in lora_b), "the adapter did not train"
    assert (run / "tokenizer.json").exists()
    summary = _fsdp_train(tmp_path, program, data, "--max-steps", "4", "--resume")
    assert summary["resumed_from"] == str(Path("run") / "checkpoint-3")
    assert summary["global_step"] == 4
    assert torch.load(run / "training_args.bin", weights_only=False).max_steps == 4


def test_fsdp_full_fine_tuning_with_full_checkpoints(tmp_path: Path, tiny_model: Path) -> None:
    """state_dict_type: full: checkpoints gathered on the main process; the final model
    loads with from_pretrained; a resume from such a checkpoint trains on."""
    from transformers import AutoModelForCausalLM

    program, data = _bundle(
        tmp_path, tiny_model, "strategy: fsdp;state_dict_type: full", save_steps=2
    )
    assert (
        "fsdp_state_dict_type: FULL_STATE_DICT" in (program / "accelerate_config.yaml").read_text()
    )
    _fsdp_train(tmp_path, program, data, "--max-steps", "2")
    run = tmp_path / "run"
    trained = AutoModelForCausalLM.from_pretrained(run)
    base = AutoModelForCausalLM.from_pretrained(tiny_model)
    assert trained.state_dict().keys() == base.state_dict().keys()
    assert any((trained.state_dict()[k] != v).any() for k, v in base.state_dict().items())
    assert (run / "checkpoint-2" / "model.safetensors").exists()
    summary = _fsdp_train(tmp_path, program, data, "--max-steps", "3", "--resume")
    assert summary["global_step"] == 3


def test_fsdp_without_an_accelerator_says_it_trains_data_parallel(
    tmp_path: Path, tiny_model: Path
) -> None:
    """accelerate 1.16 keeps CPU processes MULTI_CPU under a FSDP launch (the reason for
    fsdp_on_cpu.py); the program says so, and still ends with its adapter."""
    program, data = _bundle(tmp_path, tiny_model, "strategy: fsdp", peft_adapter="lora")
    result = _launch(
        tmp_path,
        program,
        2,
        *(str(program / "train.py"), "--dataset", str(data), "--max-steps", "1"),
    )
    assert "these CPU processes train data parallel" in result.stdout
    assert (tmp_path / "run" / "adapter_model.safetensors").exists()
