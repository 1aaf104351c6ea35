"""An imported LLaMA-Factory example trains: its two demo datasets, its LoRA, its batch."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from mccompile.cli import main
from tests.e2e.helpers import ok, run, shared, summary
from tests.importers.test_import import PEERS

pytestmark = pytest.mark.e2e


def test_imported_llama_factory_sft_example_trains_on_its_demo_data(
    tmp_path: Path, tiny_model: Path
) -> None:
    data = tmp_path / "data"  # LLaMA-Factory's dataset_dir, where the program runs
    data.mkdir()
    for name in ("identity.json", "alpaca_en_demo.json"):
        shutil.copy(shared(name), data / name)
    config = tmp_path / "config.yaml"
    peer = PEERS / "llama-factory" / "llama3_lora_sft.yaml"
    assert main(["import", "llama-factory", str(peer), "-o", str(config)]) == 0
    text = config.read_text(encoding="utf-8")
    # the tiny model instead of Llama 3 8B; fp32 on the CPU; short sequences; 24 rows a file
    text = text.replace('split: "train[:1000]"', 'split: "train[:24]"')
    text = re.sub(r"^(    model:) .*$", rf"\1 {tiny_model}", text, flags=re.M)
    text = text.replace("bf16: true", "bf16: false").replace(
        "max_seq_length: 1024", "max_seq_length: 128"
    )
    text = re.sub(r"^(    output_dir:) .*$", r"\1 ./run", text, flags=re.M)
    config.write_text(text, encoding="utf-8")
    out = tmp_path / "out"
    assert main(["build", str(config), "-o", str(out)]) == 0
    result = ok(run(out / "train" / "train.py", "--max-steps", "2", cwd=tmp_path))
    log = result.stdout
    # max_samples, the concat of LLaMA-Factory's two datasets, val_size 0.1
    assert "[data] load-identity: 24 rows" in log and "[data] load-alpaca_en_demo: 24 rows" in log
    assert "[data] mix: 48 rows" in log
    assert "format: alpaca; 43 training rows; 5 evaluation rows; loss on the responses" in log
    assert summary(tmp_path / "run")["global_step"] == 2
    adapter = json.loads((tmp_path / "run" / "adapter_config.json").read_text())
    # LLaMA-Factory's LoRA defaults, written out by the import
    assert (adapter["r"], adapter["lora_alpha"], adapter["lora_dropout"]) == (8, 16, 0.0)
    assert (tmp_path / "run" / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"  # plot_loss
