"""Generated classification programs trained for real on a tiny model built offline."""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

import pytest

from tests.e2e.helpers import build, ok, run, shared, summary

pytestmark = pytest.mark.e2e
pytest.importorskip("transformers")


def _config(model: Path, output_dir: Path, **fields: object) -> str:
    settings = {
        "learning_rate": 1e-3,
        "num_epochs": 1,
        "per_device_train_batch_size": 8,
        "logging_steps": 1,
        "max_seq_length": 64,
        "save_steps": 100,
        **fields,
    }
    lines = [
        "components:",
        "  - id: trainer",
        "    type: model-trainer",
        "    task: classification",
        f"    model: {json.dumps(str(model))}",
        f"    output_dir: {json.dumps(str(output_dir))}",
    ]
    lines += [f"    {key}: {json.dumps(value)}" for key, value in settings.items()]
    return "\n".join(lines) + "\n"


def _sentiment_rows(n: int, seed: int) -> list[dict[str, str]]:
    rng = random.Random(seed)
    fillers = ["the", "film", "was", "a", "day", "story", "very", "really", "our", "trip"]
    rows = []
    for _ in range(n):
        label = rng.choice(["positive", "negative"])
        word = rng.choice(
            ["great", "lovely", "happy"] if label == "positive" else ["awful", "sad", "terrible"]
        )
        words = [rng.choice(fillers) for _ in range(5)]
        words.insert(rng.randrange(len(words)), word)
        rows.append({"text": " ".join(words), "label": label})
    return rows


def _write_jsonl(path: Path, rows: list[dict[str, str]]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def test_mrpc_pairs_with_string_labels_and_lora(tmp_path: Path, tiny_model: Path) -> None:
    data = shared("mrpc_dev.csv")
    out_dir = tmp_path / "run"
    out = build(
        tmp_path,
        _config(
            tiny_model,
            out_dir,
            text_column="sentence1",
            text_pair_column="sentence2",
            peft_adapter="lora",
            validation_split=2,
            per_device_train_batch_size=2,
        ),
    )
    dry = ok(run(out / "trainer" / "train.py", "--dataset", str(data), "--dry-run", cwd=tmp_path))
    assert "2 classes" in dry.stdout
    result = ok(
        run(out / "trainer" / "train.py", "--dataset", str(data), "--max-steps", "3", cwd=tmp_path)
    )
    s = summary(out_dir)
    assert s["global_step"] == 3
    assert 0.0 <= s["eval_accuracy"] <= 1.0
    # one line per step and one evaluation, with its accuracy and macro-F1; no load report
    lines = result.stdout.splitlines()
    assert [line.split("  ")[0] for line in lines if line.startswith("step ")] == [
        "step 1/3 (33%)",
        "step 2/3 (66%)",
        "step 3/3 (100%)",
    ]
    evals = [line for line in lines if line.startswith("eval  ")]
    assert evals == [
        f"eval  step 3/3  loss {s['eval_loss']:.3f}  accuracy {s['eval_accuracy']:.3f}"
        f"  macro-F1 {s['eval_macro_f1']:.3f}"
    ]
    assert lines[-3].startswith("[done] 3 steps in ") and "accuracy" in lines[-3]
    assert lines[-2:] == [
        f"  adapter:  {out_dir}",
        f"  summary:  {out_dir / 'training_summary.json'}",
    ]
    assert "LOAD REPORT" not in result.stdout + result.stderr
    assert "eval_macro_f1" in s
    # the adapter holds the trained classification head, and the labels are in the config
    adapter = json.loads((out_dir / "adapter_config.json").read_text())
    assert "score" in (adapter.get("modules_to_save") or [])
    config = json.loads((out_dir / "adapter_config.json").read_text())
    assert config["task_type"] == "SEQ_CLS"


def test_synthetic_sentiment_is_learned(tmp_path: Path, tiny_model: Path) -> None:
    train = _write_jsonl(tmp_path / "train.jsonl", _sentiment_rows(320, seed=1))
    evaluation = _write_jsonl(tmp_path / "eval.jsonl", _sentiment_rows(80, seed=2))
    out_dir = tmp_path / "run"
    config = _config(tiny_model, out_dir, num_epochs=4, learning_rate=3e-3, eval_steps=1000)
    config = config.replace(
        "    type: model-trainer\n",
        "    type: model-trainer\n    eval_dataset: ${input.eval_dataset}\n",
    )
    out = build(tmp_path, config)
    ok(
        run(
            out / "trainer" / "train.py",
            "--dataset",
            str(train),
            "--eval-dataset",
            str(evaluation),
            cwd=tmp_path,
            timeout=600,
        )
    )
    s = summary(out_dir)
    print("synthetic sentiment accuracy:", s["eval_accuracy"], "macro-F1:", s["eval_macro_f1"])
    assert s["eval_accuracy"] >= 0.9
    saved = json.loads((out_dir / "config.json").read_text())
    assert saved["id2label"] == {"0": "negative", "1": "positive"}


def test_qlora_classification_trains_the_head(tmp_path: Path, tiny_model: Path) -> None:
    data = _write_jsonl(tmp_path / "d.jsonl", _sentiment_rows(32, seed=3))
    out_dir = tmp_path / "run"
    out = build(
        tmp_path,
        _config(
            tiny_model,
            out_dir,
            peft_adapter="lora",
            quantization="nf4",
            bnb_4bit_compute_dtype="float32",
        ),
    )
    ok(run(out / "trainer" / "train.py", "--dataset", str(data), "--max-steps", "2", cwd=tmp_path))
    assert (out_dir / "adapter_model.safetensors").is_file()


@pytest.mark.parametrize(
    ("rows", "fields", "message"),
    [
        ([{"text": "a", "y": "x"}] * 4, {}, "no column 'label'"),
        (
            [{"text": "a", "label": "spam"}, {"text": "b", "label": "ham"}] * 2,
            {"labels": ["ham", "eggs"]},
            "label 'spam' is not one of",
        ),
        ([{"text": "a", "label": "only"}] * 4, {}, "single class"),
    ],
)
def test_bad_labels_stop_before_weights(
    tmp_path: Path,
    tiny_model: Path,
    rows: list[dict[str, str]],
    fields: dict[str, object],
    message: str,
) -> None:
    data = tmp_path / "d.csv"
    with data.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    out = build(tmp_path, _config(tiny_model, tmp_path / "run", **fields))
    result = run(out / "trainer" / "train.py", "--dataset", str(data), "--dry-run", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr
