"""Run settings of a trainer, run for real: per-epoch schedules, the loss plot, NEFTune, the hub."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.helpers import build, losses, ok, run, summary, trainer_yaml

pytestmark = pytest.mark.e2e
pytest.importorskip("trl")

ROWS = [{"prompt": f"What is {i} + {i}?", "response": f"{2 * i}."} for i in range(32)]


def _program(tmp_path: Path, model: Path, output_dir: Path, **fields: Any) -> Path:
    tmp_path.mkdir(parents=True, exist_ok=True)
    data = tmp_path / "sums.json"
    data.write_text(json.dumps(ROWS))
    settings = {"prompt_column": "prompt", "response_column": "response", "packing": False}
    config = (
        "components:\n"
        "  - id: sums\n    type: datasets\n    provider: local\n    loader: json\n"
        f"    data_files: {json.dumps(str(data))}\n"
        + trainer_yaml(model, output_dir, **{**settings, **fields}).replace(
            "    save_steps: null\n",
            "",  # None: left out
        )
        + "workflows:\n  - id: w\n    jobs:\n      - { id: load, component: sums }\n"
        + "      - id: train\n        component: trainer\n"
        + "        input: { dataset: '${jobs.load.output}' }\n"
    )
    return build(tmp_path, config) / "w" / "train.py"


def test_evals_and_saves_per_epoch_and_the_loss_plot(tmp_path: Path, tiny_model: Path) -> None:
    output_dir = tmp_path / "run"
    # 24 training rows in batches of 4: 6 steps an epoch; 3 evaluations and 2 saves an epoch
    program = _program(
        tmp_path,
        tiny_model,
        output_dir,
        validation_split=8,
        evals_per_epoch=3,
        saves_per_epoch=2,
        plot_loss=True,
        save_steps=None,
        run_name="sums",
    )
    result = ok(run(program, cwd=tmp_path))
    expected = (
        "[schedule] one epoch is 6 optimizer steps (24 rows, batches of 4 on 1 processes,"
        " accumulation 1); evaluating every 2 steps (3 an epoch); saving every 3 steps (2 an epoch)"
    )
    assert expected in result.stdout, result.stdout[-3000:]
    s = summary(output_dir)
    assert s["global_step"] == 6
    evaluated = sorted({e["step"] for e in s["log_history"] if "eval_loss" in e})
    assert evaluated == [2, 4, 6]
    assert sorted(p.name for p in output_dir.glob("checkpoint-*")) == [
        "checkpoint-3",
        "checkpoint-6",
    ]
    png = output_dir / "loss.png"
    assert f"[plot] wrote {png}" in result.stdout
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000


def test_neftune_noise_changes_the_training_loss(tmp_path: Path, tiny_model: Path) -> None:
    """The same seed, data and weights: the first step's loss (before any update) differs by
    the noise alone."""
    first: dict[str, float] = {}
    for name, alpha in (("plain", None), ("neftune", 5.0)):
        output_dir = tmp_path / name
        where = tmp_path / f"b-{name}"
        program = _program(where, tiny_model, output_dir, neftune_noise_alpha=alpha)
        assert ("NEFTUNE_NOISE_ALPHA = 5.0" in program.read_text()) == (alpha is not None)
        ok(run(program, "--max-steps", "1", cwd=tmp_path))
        first[name] = losses(output_dir)[1]
    assert first["plain"] != pytest.approx(first["neftune"], rel=1e-4), first


@pytest.mark.parametrize("network", ["offline", "refused"])
def test_push_to_hub_without_a_network_fails_in_one_line_after_saving(
    tmp_path: Path, tiny_model: Path, network: str
) -> None:
    output_dir = tmp_path / "run"
    program = _program(
        tmp_path, tiny_model, output_dir, push_to_hub=True, hub_model_id="someone/sums-model"
    )
    env = {"HF_HUB_OFFLINE": "1"}
    if network == "refused":  # online, but nothing listens at the endpoint: a fast refusal
        env = {"HF_HUB_OFFLINE": "0", "HF_ENDPOINT": "http://127.0.0.1:9", "HF_TOKEN": "hf_fake"}
    started = time.monotonic()
    result = run(program, "--max-steps", "2", cwd=tmp_path, env=env)
    assert result.returncode == 2, result.stderr[-3000:]
    assert time.monotonic() - started < 240
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr[-3000:]
    assert errors[0].startswith("error: pushing to the hub (someone/sums-model) failed: ")
    assert f"the model is saved in {output_dir}" in errors[0]
    # nothing lost: the model, its tokenizer and the summary are saved
    assert summary(output_dir)["global_step"] == 2
    assert (output_dir / "model.safetensors").is_file()
    assert (output_dir / "tokenizer_config.json").is_file()
    assert "hf_fake" not in program.read_text()


def test_classification_evaluates_per_epoch_and_plots(tmp_path: Path, tiny_model: Path) -> None:
    rows = [{"text": f"{w} day {i}", "label": w} for i in range(6) for w in ("good", "bad")]
    data = tmp_path / "moods.jsonl"
    data.write_text("".join(json.dumps(row) + "\n" for row in rows))
    output_dir = tmp_path / "run"
    settings = {
        "dataset": str(data),
        "eval_dataset": str(data),
        "num_epochs": 2,
        "per_device_train_batch_size": 4,
        "logging_steps": 1,
        "evals_per_epoch": 3,
        "save_strategy": "no",
        "plot_loss": True,
    }
    config = (
        "components:\n  - id: trainer\n    type: model-trainer\n    task: classification\n"
        f"    model: {json.dumps(str(tiny_model))}\n    output_dir: {json.dumps(str(output_dir))}\n"
        + "".join(f"    {key}: {json.dumps(value)}\n" for key, value in settings.items())
    )
    program = build(tmp_path, config) / "trainer" / "train.py"
    result = ok(run(program, cwd=tmp_path))
    # 12 rows in batches of 4: 3 steps an epoch, an evaluation each step, none saved
    assert "one epoch is 3 optimizer steps (12 rows" in result.stdout, result.stdout[-3000:]
    assert "evaluating every 1 steps (3 an epoch)" in result.stdout
    s = summary(output_dir)
    assert sorted({e["step"] for e in s["log_history"] if "eval_loss" in e}) == [1, 2, 3, 4, 5, 6]
    assert not list(output_dir.glob("checkpoint-*"))
    assert (output_dir / "loss.png").read_bytes()[:4] == b"\x89PNG"
