"""What the GPU settings compile to: requirements, accelerate's mixed precision, FSDP's
state dict type."""

from __future__ import annotations

from pathlib import Path

import pytest

from mccompile.cli import main


def _build(tmp_path: Path, extra: str) -> Path:
    config = tmp_path / "c.yaml"
    config.write_text(
        "components:\n  - id: t\n    type: model-trainer\n    model: m\n    peft_adapter: lora\n"
        + extra
    )
    assert main(["build", str(config), "-o", str(tmp_path / "out"), "--force"]) == 0
    return tmp_path / "out" / "t"


@pytest.mark.parametrize(
    ("attn", "requirement"),
    [
        ("flash_attention_2", "flash-attn>=2.3.3"),
        ("flash_attention_3", "flash-attn-3"),
        ("kernels-community/flash-attn2", "kernels>=0.18.2,<0.20"),
        ("sdpa", None),
    ],
)
def test_attention_kernel_adds_its_package(
    tmp_path: Path, attn: str, requirement: str | None
) -> None:
    out = _build(tmp_path, f"    attn_implementation: {attn}\n")
    lines = (out / "requirements.txt").read_text().splitlines()
    extra = [line for line in lines if line.startswith(("flash-attn", "kernels"))]
    assert extra == ([requirement] if requirement else [])
    assert f'#     "{requirement}",' in (out / "train.py").read_text() if requirement else True


@pytest.mark.parametrize(
    ("fields", "mixed"),
    [
        ("", "no"),
        ("    bf16: true\n", "bf16"),
        ("    fp16: true\n", "fp16"),
        ("    bf16: false\n", "no"),
    ],
)
def test_accelerate_mixed_precision_follows(tmp_path: Path, fields: str, mixed: str) -> None:
    """bf16: auto leaves 'no' to accelerate: TrainingArguments' bf16 / fp16 decide."""
    out = _build(tmp_path, fields)
    assert f"mixed_precision: '{mixed}'" in (out / "accelerate_config.yaml").read_text()
    program = (out / "train.py").read_text()
    assert 'bf16=precision == "bf16"' in program
    assert "DDP_TIMEOUT = 1800" in program and "ddp_timeout=DDP_TIMEOUT" in program
    assert "TF32 = None" in program and "tf32=TF32," in program


def test_model_option_replaces_model(tmp_path: Path) -> None:
    program = (_build(tmp_path, "") / "train.py").read_text()
    assert '"--model", default=MODEL,' in program
    assert "    global MODEL\n    MODEL = args.model\n" in program


@pytest.mark.parametrize(("given", "expected"), [("", "SHARDED"), ("full", "FULL")])
def test_fsdp_checkpoints_follow_state_dict_type(tmp_path: Path, given: str, expected: str) -> None:
    extra = f"      state_dict_type: {given}\n" if given else ""
    out = _build(tmp_path, "    distributed:\n      strategy: fsdp\n" + extra)
    assert (
        f"fsdp_state_dict_type: {expected}_STATE_DICT"
        in (out / "accelerate_config.yaml").read_text()
    )
    program = (out / "train.py").read_text()
    # whatever the checkpoints hold, the final save gathers the whole model
    assert 'fsdp_plugin.set_state_dict_type("FULL_STATE_DICT")\n    trainer.save_model(' in program


@pytest.mark.parametrize(
    ("fields", "kernels"),
    [
        ("    packing: true\n", True),
        ("    packing: auto\n", True),
        ("    padding_free: true\n", True),
        ("    packing: ${input.packing}\n", True),
        ("    packing: true\n    attn_implementation: sdpa\n", False),
        ("    packing: true\n    attn_implementation: flash_attention_2\n", False),
        ("", False),
    ],
)
def test_joined_rows_bring_the_kernels_package(tmp_path: Path, fields: str, kernels: bool) -> None:
    """Packed or padding-free rows with attn_implementation null: the program looks for a
    variable-length kernel, and the kernels package (transformers 5.25 requires it anyway)
    fetches a flash-attention build without compiling flash-attn."""
    out = _build(tmp_path, "    text_column: text\n" + fields)
    lines = (out / "requirements.txt").read_text().splitlines()
    assert ("kernels>=0.18.2,<0.20" in lines) is kernels
    program = (out / "train.py").read_text()
    assert ("def choose_attention(precision):" in program) is (
        "attn_implementation" in fields or kernels
    )


def test_packed_rows_under_sdpa_warn_at_compile_time(tmp_path: Path, capsys) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(
        "components:\n  - id: t\n    type: model-trainer\n    model: m\n    text_column: text\n"
        "    packing: true\n    attn_implementation: sdpa\n"
    )
    assert main(["validate", str(config)]) == 0
    err = capsys.readouterr().err
    assert f"{config}:7:5: warning: packed rows under attn_implementation: sdpa attend" in err
