"""What `plan` understands of the names people type: GPUs and mirrored model ids."""

from __future__ import annotations

import pytest

from mccompile.cli import main
from mccompile.plan import gpus
from mccompile.plan.memory import GiB
from mccompile.plan.parameters import find_architecture


@pytest.mark.parametrize(
    "text",
    ["4090", "RTX4090", "RTX-4090", "rtx 4090", "GeForce RTX 4090", "NVIDIA GeForce RTX 4090"],
)
def test_a_consumer_card_by_any_of_its_spellings_is_24_gb(text: str) -> None:
    parsed = gpus.parse_gpu_memory(text)
    assert parsed is not None
    assert 23 * GiB < parsed[1] < 24 * GiB  # a 24 GB card, as the driver reports it


@pytest.mark.parametrize(
    "text", ["3090", "RTX-3090", "3090 Ti", "RTX A6000", "RTX 6000 Ada", "A5000"]
)
def test_more_workstation_and_consumer_cards_are_known(text: str) -> None:
    assert gpus.parse_gpu_memory(text) is not None


@pytest.mark.parametrize("text", ["80", "24", "40.5"])
def test_a_bare_number_is_no_size(text: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert gpus.parse_gpu_memory(text) is None
    with pytest.raises(SystemExit) as stop:
        main(["plan", "config.yaml", "--gpu-memory", text])
    assert stop.value.code == 2
    assert f"{text!r} has no unit: write {text}GB or {text}GiB" in capsys.readouterr().err


def test_a_size_with_its_unit_is_read_in_that_unit() -> None:
    assert gpus.parse_gpu_memory("80GB") == ("80GB", 80 * 10**9)
    assert gpus.parse_gpu_memory("24GiB") == ("24GiB", 24 * GiB)
    assert gpus.parse_gpu_memory("24g") == ("24g", 24 * GiB)


@pytest.mark.parametrize(
    ("mirror", "original"),
    [
        ("NousResearch/Llama-3.2-1B", "meta-llama/llama-3.2-1b"),
        ("unsloth/Llama-3.2-1B-Instruct", "meta-llama/llama-3.2-1b-instruct"),
        ("unsloth/Llama-3.2-1B-Instruct-bnb-4bit", "meta-llama/llama-3.2-1b-instruct"),
        ("unsloth/Qwen2.5-7B-Instruct", "qwen/qwen2.5-7b-instruct"),
    ],
)
def test_a_mirror_of_a_table_model_has_its_size(mirror: str, original: str) -> None:
    found = find_architecture(mirror)
    assert not isinstance(found, str), found
    table = find_architecture(original)
    assert not isinstance(table, str)
    assert found.config_dict() == table.config_dict()
    assert f"a copy of {original}" in found.source


def test_an_unknown_organisation_with_a_table_name_stays_unknown() -> None:
    found = find_architecture("someone/Llama-3.2-1B")
    assert isinstance(found, str) and "not in the built-in table" in found
