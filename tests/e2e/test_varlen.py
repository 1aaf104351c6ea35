"""Packed and padding-free rows: the variable-length attention kernel the program chooses,
``packing: auto``, and the one-line warning (with its cost) when no such kernel is there.

The choice is made by the generated program's own ``choose_attention`` on the machine it
runs on; here it is called in-process with the GPU, its generation and the installed
kernel packages stood in for (this machine has no GPU), then the program runs for real on
the CPU."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import json
import re
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.helpers import build, losses, ok, run, trainer_yaml

pytestmark = pytest.mark.e2e
pytest.importorskip("trl")


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")


def _program(tmp_path: Path, model: Path, **fields: Any) -> Path:
    config = "components:\n" + trainer_yaml(model, Path("run"), text_column="text", **fields)
    return build(tmp_path, config) / "trainer" / "train.py"


def _load(path: Path) -> types.ModuleType:
    """The generated program as a module (its main() does not run)."""
    spec = importlib.util.spec_from_file_location(f"train_{abs(hash(path))}", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def machine(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., list[str]]]:
    """Stand in for a CUDA GPU of a compute capability, with some kernel packages installed;
    ``hub`` maps a kernels-hub name to True (loads) or an error message. Returns the list of
    hub kernels the program tried to load."""
    import torch
    from transformers.integrations import hub_kernels

    tried: list[str] = []

    def setup(
        capability: tuple[int, int] | None,
        installed: tuple[str, ...] = (),
        hub: dict[str, Any] | None = None,
    ) -> list[str]:
        monkeypatch.setattr(torch.cuda, "is_available", lambda: capability is not None)
        if capability is not None:
            monkeypatch.setattr(torch.cuda, "get_device_capability", lambda *a: capability)
        real = importlib.util.find_spec
        fake = {"flash_attn", "flash_attn_interface", "kernels"}

        def find_spec(name: str, *args: Any) -> Any:
            if name in fake:
                return importlib.machinery.ModuleSpec(name, None) if name in installed else None
            return real(name, *args)

        monkeypatch.setattr(importlib.util, "find_spec", find_spec)

        def load(name: str, *args: Any, **kwargs: Any) -> object:
            tried.append(name)
            outcome = (hub or {}).get(name, "no build for this machine")
            if outcome is not True:
                raise ValueError(outcome)
            return object()

        monkeypatch.setattr(hub_kernels, "load_and_register_attn_kernel", load)
        return tried

    yield setup


def _choose(program: Path, precision: str | None = "bf16") -> tuple[Any, ...]:
    module = _load(program)
    note, why = module.choose_attention(precision)
    return note, why, module.ATTN_IMPLEMENTATION, module.PACKING


def test_hopper_with_flash_attention_3(
    tmp_path: Path, tiny_model: Path, machine: Callable[..., list[str]]
) -> None:
    program = _program(tmp_path, tiny_model, packing=True)
    machine((9, 0), installed=("flash_attn_interface", "flash_attn", "kernels"))
    note, why, attention, packing = _choose(program)
    assert (attention, packing, why) == ("flash_attention_3", True, None)
    assert note == (
        "[setup] attention: flash_attention_3, variable-length: packed rows attend within each"
        " example"
    )


def test_ampere_takes_flash_attention_2_not_3(
    tmp_path: Path, tiny_model: Path, machine: Callable[..., list[str]]
) -> None:
    """flash-attn 3 runs on Hopper only; an A100 takes flash-attn 2."""
    program = _program(tmp_path, tiny_model, padding_free=True)
    machine((8, 0), installed=("flash_attn_interface", "flash_attn"))
    note, why, attention, _ = _choose(program)
    assert (attention, why) == ("flash_attention_2", None)
    assert "padding-free rows attend within each example" in note


def test_hub_kernel_when_no_flash_attn_package(
    tmp_path: Path, tiny_model: Path, machine: Callable[..., list[str]]
) -> None:
    """Without flash-attn, the kernels package's hub builds: on Hopper the flash-attn 3
    build first; if it does not load, the flash-attn 2 build."""
    program = _program(tmp_path, tiny_model, packing=True)
    tried = machine(
        (9, 0),
        installed=("kernels",),
        hub={"kernels-community/flash-attn2": True},
    )
    _, why, attention, _ = _choose(program)
    assert (attention, why) == ("kernels-community/flash-attn2", None)
    assert tried == ["kernels-community/vllm-flash-attn3", "kernels-community/flash-attn2"]


def test_no_kernel_loads_says_why(
    tmp_path: Path, tiny_model: Path, machine: Callable[..., list[str]]
) -> None:
    program = _program(tmp_path, tiny_model, packing=True)
    machine((8, 6), installed=("kernels",), hub={})
    note, why, attention, packing = _choose(program)
    assert (attention, packing) == (None, True)
    assert why == (
        "no flash-attn for this GPU (compute capability 8.6): pip install flash-attn; the kernels"
        " package could not load kernels-community/flash-attn2: no build for this machine"
    )
    assert note == f"[setup] attention: sdpa across whole packed batches ({why})"


def test_the_real_hub_loader_offline(
    tmp_path: Path, tiny_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """transformers' own loader of hub kernels, offline and with nothing cached: a reason,
    not a failure."""
    import torch

    program = _program(tmp_path, tiny_model, packing=True)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda *a: (8, 0))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    _, why, attention, _ = _choose(program)
    assert attention is None
    assert "could not load kernels-community/flash-attn2" in why


@pytest.mark.parametrize(
    ("capability", "precision", "expected"),
    [
        ((7, 5), "fp16", "flash attention needs an Ampere or newer GPU, and this one is compute"),
        ((9, 0), "fp32", "flash attention computes in bf16 or fp16, and this run is float32"),
        (None, "fp32", "no CUDA GPU"),
    ],
    ids=["turing", "float32", "cpu"],
)
def test_what_rules_a_kernel_out(
    tmp_path: Path,
    tiny_model: Path,
    machine: Callable[..., list[str]],
    capability: tuple[int, int] | None,
    precision: str,
    expected: str,
) -> None:
    program = _program(tmp_path, tiny_model, packing=True)
    machine(capability, installed=("flash_attn", "flash_attn_interface", "kernels"))
    _, why, attention, _ = _choose(program, precision)
    assert attention is None and why.startswith(expected)


def test_a_model_without_flash_attention(
    tmp_path: Path,
    tiny_model: Path,
    machine: Callable[..., list[str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from transformers import LlamaForCausalLM

    program = _program(tmp_path, tiny_model, packing=True)
    machine((9, 0), installed=("flash_attn",))
    monkeypatch.setattr(LlamaForCausalLM, "_supports_flash_attn", False)
    _, why, attention, _ = _choose(program)
    assert (attention, why) == (None, "transformers has no flash attention for llama")


def test_the_configs_attention_is_kept(
    tmp_path: Path, tiny_model: Path, machine: Callable[..., list[str]]
) -> None:
    program = _program(tmp_path, tiny_model, packing=True, attn_implementation="sdpa")
    machine((9, 0), installed=("flash_attn",))
    note, why, attention, _ = _choose(program)
    assert (attention, why) == ("sdpa", "attn_implementation is sdpa")
    assert note == f"[setup] attention: sdpa across whole packed batches ({why})"
    program = _program(tmp_path, tiny_model, packing=True, attn_implementation="flash_attention_2")
    _, why, attention, _ = _choose(program)
    assert (attention, why) == ("flash_attention_2", None)


def test_packing_auto_packs_only_with_a_kernel(
    tmp_path: Path, tiny_model: Path, machine: Callable[..., list[str]]
) -> None:
    program = _program(tmp_path, tiny_model, packing="auto")
    machine((9, 0), installed=("flash_attn",))
    note, why, attention, packing = _choose(program)
    assert (attention, packing, why) == ("flash_attention_2", True, None)
    assert note.endswith("packed rows attend within each example (packing: auto)")
    machine((9, 0), installed=())
    note, why, attention, packing = _choose(program)
    assert (attention, packing, why) == (None, False, None)
    assert note.startswith("[setup] packing: auto -> off (no flash-attn for this GPU")
    assert note.endswith("): batches of similar length, padded")


def test_unpacked_padded_rows_keep_sdpa(tmp_path: Path, tiny_model: Path) -> None:
    """Rows padded as usual need no variable-length kernel: the program holds no code to
    choose one, and runs with the attention the config names (null: transformers' sdpa)."""
    module = _load(_program(tmp_path, tiny_model))
    assert not hasattr(module, "choose_attention")
    assert (module.ATTN_IMPLEMENTATION, module.PACKING, module.PADDING_FREE) == (None, False, False)


def test_attention_overhead_is_the_square_law(tmp_path: Path, tiny_model: Path) -> None:
    """Per batch of joined rows: (its length)² against the sum of each example's length²."""
    import datasets

    module = _load(_program(tmp_path, tiny_model, packing=True, per_device_train_batch_size=2))
    packed = datasets.Dataset.from_dict({"seq_lengths": [[2, 2], [4], [3, 1]]})
    # batch 1: rows [2, 2] and [4] -> 8² = 64 against 4 + 4 + 16 = 24; batch 2: 4² = 16 against 10
    assert module.attention_overhead(packed) == pytest.approx((64 + 16) / (24 + 10))
    module = _load(_program(tmp_path, tiny_model, padding_free=True, per_device_train_batch_size=3))
    rows = datasets.Dataset.from_dict({"input_ids": [[1] * 3, [1] * 3, [1] * 3]})
    assert module.attention_overhead(rows) == pytest.approx(3.0)


def _rows(path: Path, n: int = 48) -> Path:
    words = "the quick brown fox jumps over the lazy dog and runs far away"
    texts = [" ".join(words.split()[: 3 + i % 10]) + f" {i}." for i in range(n)]
    path.write_text("".join(json.dumps({"text": text}) + "\n" for text in texts))
    return path


def test_on_a_cpu_packing_warns_with_its_cost_and_auto_batches_by_length(
    tmp_path: Path, tiny_model: Path
) -> None:
    """packing: true on a CPU trains, with one warning line that says what sdpa costs on these
    batches; packing: auto on a CPU trains exactly as packing: false (length-grouped batches)."""
    import torch

    data = _rows(tmp_path / "rows.jsonl")
    outputs = {}
    for name, packing in (("true", True), ("auto", "auto"), ("false", False)):
        folder = tmp_path / name
        folder.mkdir()
        program = _program(folder, tiny_model, packing=packing)
        result = ok(run(program, "--dataset", str(data), "--max-steps", "3", cwd=folder))
        outputs[name] = result.stdout
        args = torch.load(folder / "run" / "training_args.bin", weights_only=False)
        assert args.packing is (packing is True)
        assert args.train_sampling_strategy == ("random" if packing is True else "group_by_length")
    assert "[setup] attention: sdpa across whole packed batches (no CUDA GPU)" in outputs["true"]
    warning = [line for line in outputs["true"].splitlines() if line.startswith("[speed]")]
    assert len(warning) == 1, outputs["true"]
    found = re.search(r"about (\d+\.\d)x the attention work of the examples alone", warning[0])
    assert found and float(found.group(1)) > 2.0, warning
    assert warning[0].endswith("; packing: auto batches by length on a CPU instead")
    assert (
        "[setup] packing: auto -> off (no CUDA GPU): batches of similar length, padded"
        in outputs["auto"]
    )
    assert "[speed]" not in outputs["auto"] + outputs["false"]
    assert "[setup] attention" not in outputs["false"]
    assert losses(tmp_path / "auto" / "run") == losses(tmp_path / "false" / "run")
