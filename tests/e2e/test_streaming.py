"""Streamed datasets: read lazily, mapped and filtered, trained on for max_steps, or saved."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e.helpers import build, ok, run, shared, summary, trainer_yaml

pytestmark = pytest.mark.e2e
pytest.importorskip("trl")


def _stream_loader(data: Path) -> str:
    # the hub loader reads local files with a builder name as its path, streamed
    return (
        "  - id: stream\n    type: datasets\n    provider: huggingface\n    path: json\n"
        f"    data_files: {json.dumps(str(data))}\n    streaming: true\n    shuffle: true\n"
        "  - id: ops\n    type: datasets\n"
    )


WORKFLOW = """workflows:
  - id: w
    jobs:
      - { id: load, component: stream }
      - id: keep
        component: ops
        method: filter
        input:
          dataset: ${jobs.load.output}
          condition: { column: output, operator: not-empty }
      - id: render
        component: ops
        method: map
        input:
          dataset: ${jobs.keep.output}
          template: "Q: {instruction}\\nA: {output}"
"""


def test_a_stream_is_filtered_mapped_and_trained_on(tmp_path: Path, tiny_model: Path) -> None:
    data = shared("alpaca_en_demo.json")
    output_dir = tmp_path / "run"
    config = (
        "components:\n"
        + _stream_loader(data)
        + trainer_yaml(tiny_model, output_dir, text_column="text", max_steps=3)
        + WORKFLOW
        + "      - id: train\n        component: trainer\n"
        + "        input: { dataset: '${jobs.render.output}' }\n"
    )
    out = build(tmp_path, config)
    program = out / "w" / "train.py"
    assert "IterableDataset" in program.read_text()
    dry = ok(run(program, "--dry-run", cwd=tmp_path))
    assert "streamed training rows" in dry.stdout
    assert "[[" in dry.stdout
    ok(run(program, cwd=tmp_path))
    assert summary(output_dir)["global_step"] == 3
    refused = run(
        program, "--max-steps", "-1", "--output-dir", str(tmp_path / "other"), cwd=tmp_path
    )
    assert refused.returncode == 2
    assert "give --max-steps" in refused.stderr


def test_a_stream_is_saved_by_prepare(tmp_path: Path) -> None:
    import datasets

    data = shared("alpaca_en_demo.json")
    config = "components:\n" + _stream_loader(data) + WORKFLOW
    out = build(tmp_path, config)
    ok(run(out / "w" / "prepare.py", "--output-dir", str(tmp_path / "saved"), cwd=tmp_path))
    saved = datasets.load_from_disk(str(tmp_path / "saved"))
    expected = [r for r in json.loads(data.read_text()) if r["output"]]
    assert saved.num_rows == len(expected)
    assert saved[0]["text"].startswith("Q: ")
