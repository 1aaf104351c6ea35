"""Generated SFT programs trained for real, a few steps, on a tiny model built offline."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.e2e.helpers import build, losses, ok, run, shared, summary, trainer_yaml

pytestmark = pytest.mark.e2e
pytest.importorskip("trl")


def _write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    return path


def _train(tmp_path: Path, model: Path, dataset: Path, *extra: str, **fields: object) -> Path:
    output_dir = tmp_path / "run"
    config = "components:\n" + trainer_yaml(model, output_dir, **fields)
    out = build(tmp_path, config)
    result = ok(
        run(
            out / "trainer" / "train.py",
            "--dataset",
            str(dataset),
            "--max-steps",
            "3",
            *extra,
            cwd=tmp_path,
        )
    )
    assert "Traceback" not in result.stderr
    return output_dir


def _assert_adapter(output_dir: Path) -> None:
    assert (output_dir / "adapter_model.safetensors").is_file()
    assert (output_dir / "adapter_config.json").is_file()
    assert (output_dir / "tokenizer.json").is_file()
    s = summary(output_dir)
    assert s["global_step"] == 3
    assert s["train_loss"] > 0


def test_text_column_on_c4(tmp_path: Path, tiny_model: Path) -> None:
    data = tmp_path / "c4.jsonl"
    data.write_text("".join((shared("c4_demo.jsonl")).read_text().splitlines(keepends=True)[:40]))
    out = _train(tmp_path, tiny_model, data, text_column="text", peft_adapter="lora")
    _assert_adapter(out)


def test_text_with_packing(tmp_path: Path, tiny_model: Path) -> None:
    rows = [{"text": f"Short sentence number {i}."} for i in range(64)]
    data = _write_jsonl(tmp_path / "short.jsonl", rows)
    out = _train(tmp_path, tiny_model, data, text_column="text", packing=True, peft_adapter="lora")
    _assert_adapter(out)


def test_prompt_response_columns_with_system(tmp_path: Path, tiny_model: Path) -> None:
    rows = [
        {"sys": "Be brief.", "question": f"What is {i} + 1?", "answer": f"{i + 1}."}
        for i in range(24)
    ]
    data = _write_jsonl(tmp_path / "qa.jsonl", rows)
    out = _train(
        tmp_path,
        tiny_model,
        data,
        prompt_column="question",
        response_column="answer",
        system_column="sys",
        peft_adapter="lora",
    )
    _assert_adapter(out)


def test_alpaca_detected_on_english_and_chinese(tmp_path: Path, tiny_model: Path) -> None:
    rows = json.loads((shared("alpaca_zh_demo.json")).read_text())[:24]
    rows += json.loads((shared("alpaca_en_demo.json")).read_text())[:24]
    data = tmp_path / "alpaca.json"
    data.write_text(json.dumps(rows, ensure_ascii=False))
    output_dir = tmp_path / "run"
    out = build(
        tmp_path, "components:\n" + trainer_yaml(tiny_model, output_dir, peft_adapter="lora")
    )
    dry = ok(run(out / "trainer" / "train.py", "--dataset", str(data), "--dry-run", cwd=tmp_path))
    assert "format: alpaca" in dry.stdout
    assert "[[" in dry.stdout  # the response carries the loss
    ok(run(out / "trainer" / "train.py", "--dataset", str(data), "--max-steps", "3", cwd=tmp_path))
    _assert_adapter(output_dir)


def test_chat_messages_with_chat_template_and_no_pad_token(
    tmp_path: Path, tiny_chat_model: Path
) -> None:
    data = shared("chat_messages.jsonl")
    output_dir = tmp_path / "run"
    out = build(
        tmp_path,
        "components:\n"
        + trainer_yaml(
            tiny_chat_model, output_dir, peft_adapter="lora", per_device_train_batch_size=2
        ),
    )
    dry = ok(run(out / "trainer" / "train.py", "--dataset", str(data), "--dry-run", cwd=tmp_path))
    assert "format: chat" in dry.stdout
    assert "using its chat template" in dry.stdout
    # only assistant turns carry loss: the user marker is outside [[ ]]
    example = dry.stdout.split("--- example 0")[1].split("--- example 1")[0]
    assert "<|user|>" in example and "[[<|user|>" not in example
    ok(run(out / "trainer" / "train.py", "--dataset", str(data), "--max-steps", "3", cwd=tmp_path))
    _assert_adapter(output_dir)


def test_full_fine_tuning_saves_the_model(tmp_path: Path, tiny_model: Path) -> None:
    rows = [{"prompt": f"Say {i}.", "response": f"{i}"} for i in range(16)]
    data = _write_jsonl(tmp_path / "pr.jsonl", rows)
    out = _train(tmp_path, tiny_model, data, validation_split=0.25)
    assert (out / "model.safetensors").is_file()
    s = summary(out)
    assert s["eval_loss"] is not None and s["perplexity"] is not None


def test_qlora_nf4_and_merge(tmp_path: Path, tiny_model: Path) -> None:
    rows = [{"text": f"Line {i}: the cat sat on the mat."} for i in range(32)]
    data = _write_jsonl(tmp_path / "t.jsonl", rows)
    out = _train(
        tmp_path,
        tiny_model,
        data,
        text_column="text",
        peft_adapter="lora",
        quantization="nf4",
        bnb_4bit_compute_dtype="float32",
        merge_adapter=True,
    )
    _assert_adapter(out)
    merged = out / "merged"
    assert (merged / "model.safetensors").is_file()
    assert (merged / "tokenizer.json").is_file()


def test_resumed_run_ends_with_the_same_losses(tmp_path: Path, tiny_model: Path) -> None:
    rows = [{"text": f"Example {i} about the blue sky and the red sun."} for i in range(48)]
    data = _write_jsonl(tmp_path / "t.jsonl", rows)
    first = tmp_path / "first"
    first.mkdir()
    output_a = first / "run"
    config = "components:\n" + trainer_yaml(
        tiny_model, output_a, text_column="text", peft_adapter="lora", save_steps=3
    )
    out = build(first, config)
    ok(run(out / "trainer" / "train.py", "--dataset", str(data), "--max-steps", "6", cwd=first))
    full = losses(output_a)
    assert sorted(full) == [1, 2, 3, 4, 5, 6]
    # a second run that starts from the step-3 checkpoint of the first
    second = tmp_path / "second"
    output_b = second / "run"
    output_b.mkdir(parents=True)
    shutil.copytree(output_a / "checkpoint-3", output_b / "checkpoint-3")
    out_b = build(
        second,
        "components:\n"
        + trainer_yaml(tiny_model, output_b, text_column="text", peft_adapter="lora", save_steps=3),
    )
    ok(
        run(
            out_b / "trainer" / "train.py",
            "--dataset",
            str(data),
            "--max-steps",
            "6",
            "--resume",
            cwd=second,
        )
    )
    resumed = losses(output_b)
    for step in (4, 5, 6):
        assert resumed[step] == pytest.approx(full[step], rel=1e-5), (step, resumed, full)


def test_dry_run_loads_no_weights(tmp_path: Path, tiny_model: Path) -> None:
    model = tmp_path / "model-without-weights"
    shutil.copytree(tiny_model, model)
    (model / "model.safetensors").unlink()
    rows = [{"text": "hello world"}] * 4
    data = _write_jsonl(tmp_path / "t.jsonl", rows)
    out = build(
        tmp_path, "components:\n" + trainer_yaml(model, tmp_path / "run", text_column="text")
    )
    result = ok(
        run(out / "trainer" / "train.py", "--dataset", str(data), "--dry-run", cwd=tmp_path)
    )
    assert "no weights were loaded" in result.stdout


def test_missing_column_stops_before_weights(tmp_path: Path, tiny_model: Path) -> None:
    data = _write_jsonl(tmp_path / "t.jsonl", [{"body": "x"}] * 3)
    out = build(
        tmp_path, "components:\n" + trainer_yaml(tiny_model, tmp_path / "run", text_column="text")
    )
    result = run(out / "trainer" / "train.py", "--dataset", str(data), cwd=tmp_path)
    assert result.returncode == 2
    assert "no column 'text'" in result.stderr
    assert "['body']" in result.stderr
    assert "Traceback" not in result.stderr


def test_undetectable_format_names_the_columns(tmp_path: Path, tiny_model: Path) -> None:
    data = _write_jsonl(tmp_path / "t.jsonl", [{"a": "x", "b": "y"}] * 3)
    out = build(tmp_path, "components:\n" + trainer_yaml(tiny_model, tmp_path / "run"))
    result = run(out / "trainer" / "train.py", "--dataset", str(data), "--dry-run", cwd=tmp_path)
    assert result.returncode == 2
    assert "cannot tell the data format from the columns ['a', 'b']" in result.stderr


def test_existing_checkpoints_are_not_overwritten(tmp_path: Path, tiny_model: Path) -> None:
    rows = [{"text": f"row {i}"} for i in range(16)]
    data = _write_jsonl(tmp_path / "t.jsonl", rows)
    output_dir = tmp_path / "run"
    (output_dir / "checkpoint-7").mkdir(parents=True)
    (output_dir / "checkpoint-7" / "trainer_state.json").write_text("{}")
    out = build(
        tmp_path, "components:\n" + trainer_yaml(tiny_model, output_dir, text_column="text")
    )
    result = run(
        out / "trainer" / "train.py", "--dataset", str(data), "--max-steps", "1", cwd=tmp_path
    )
    assert result.returncode == 2
    assert "pass --resume" in result.stderr


@pytest.mark.parametrize("fields", [{"padding_free": True}, {"group_by_length": True}])
def test_speed_settings_train(tmp_path: Path, tiny_model: Path, fields: dict[str, bool]) -> None:
    rows = [
        {"prompt": f"Count to {i}.", "response": " ".join(map(str, range(i)))} for i in range(1, 40)
    ]
    data = _write_jsonl(tmp_path / "pr.jsonl", rows)
    out = _train(tmp_path, tiny_model, data, peft_adapter="lora", **fields)
    _assert_adapter(out)


def test_tensorboard_logs_when_asked(tmp_path: Path, tiny_model: Path) -> None:
    pytest.importorskip("tensorboard")
    rows = [{"text": f"line {i}"} for i in range(16)]
    data = _write_jsonl(tmp_path / "t.jsonl", rows)
    out = _train(tmp_path, tiny_model, data, text_column="text", report_to="tensorboard")
    assert list((out / "runs").rglob("events.out.tfevents.*"))


def test_resuming_a_finished_run_trains_nothing(tmp_path: Path, tiny_model: Path) -> None:
    rows = [{"text": f"row {i} of the sample"} for i in range(24)]
    data = _write_jsonl(tmp_path / "t.jsonl", rows)
    output_dir = tmp_path / "run"
    out = build(
        tmp_path, "components:\n" + trainer_yaml(tiny_model, output_dir, text_column="text")
    )
    program = out / "trainer" / "train.py"
    ok(run(program, "--dataset", str(data), "--max-steps", "2", cwd=tmp_path))
    again = ok(run(program, "--dataset", str(data), "--max-steps", "2", "--resume", cwd=tmp_path))
    assert "nothing to train" in again.stdout
    assert sorted(p.name for p in output_dir.glob("checkpoint-*")) == ["checkpoint-2"]
