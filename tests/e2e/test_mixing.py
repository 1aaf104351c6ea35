"""Mixing and deduplicating datasets (methods interleave and deduplicate), run for real."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.helpers import build, ok, run, shared

pytestmark = pytest.mark.e2e
datasets = pytest.importorskip("datasets")


def _loader(component: str, **fields: Any) -> str:
    lines = [f"  - id: {component}", "    type: datasets", "    provider: local"]
    lines.append("    loader: json")
    lines += [f"    {key}: {json.dumps(value)}" for key, value in fields.items()]
    return "\n".join(lines) + "\n"


OPS = "  - id: ops\n    type: datasets\n"


def _interleave(en: Path, zh: Path, **fields: Any) -> str:
    extra = "".join(f"          {key}: {json.dumps(value)}\n" for key, value in fields.items())
    return (
        "components:\n"
        + _loader("alpaca")
        + OPS
        + f"""workflows:
  - id: mix
    jobs:
      - id: load-en
        component: alpaca
        input: {{ data_files: {json.dumps(str(en))} }}
      - id: load-zh
        component: alpaca
        input: {{ data_files: {json.dumps(str(zh))} }}
      - id: mix
        component: ops
        method: interleave
        input:
          datasets: [ "${{jobs.load-en.output}}", "${{jobs.load-zh.output}}" ]
"""
        + extra
    )


SHARES = re.compile(
    r"\[data\] interleave \((\w+)\): (\d+) rows: load-en (\d+) \(.*\), load-zh (\d+) "
)


def _mixed(tmp_path: Path, config: str) -> tuple[str, Any]:
    tmp_path.mkdir(parents=True, exist_ok=True)
    out = build(tmp_path, config)
    saved = tmp_path / "saved"
    result = ok(run(out / "mix" / "prepare.py", "--output-dir", str(saved), cwd=tmp_path))
    return result.stdout, datasets.load_from_disk(str(saved))


def test_interleave_en_and_zh_alpaca_at_80_20(tmp_path: Path) -> None:
    en, zh = shared("alpaca_en_demo.json"), shared("alpaca_zh_demo.json")
    stdout, saved = _mixed(tmp_path, _interleave(en, zh, probabilities=[0.8, 0.2]))
    found = SHARES.search(stdout)
    assert found, stdout[-3000:]
    strategy, total, n_en, n_zh = found.group(1), *map(int, found.groups()[1:])
    assert strategy == "first_exhausted"
    assert total == n_en + n_zh == saved.num_rows
    # first_exhausted: the mix stops when the English rows (the larger share) run out
    assert n_en == len(json.loads(en.read_text()))
    assert abs(n_en / total - 0.8) < 0.03 and abs(n_zh / total - 0.2) < 0.03, (n_en, n_zh)
    # the rows really come from both files, in a mixed order, with their columns
    zh_instructions = {r["instruction"] for r in json.loads(zh.read_text())}
    from_zh = [row["instruction"] in zh_instructions for row in saved]
    assert sum(from_zh) == n_zh
    assert saved.column_names == ["instruction", "input", "output"]
    assert True in from_zh[:50] and False in from_zh[:50]


def test_interleave_is_seeded_and_all_exhausted_repeats_the_smaller(tmp_path: Path) -> None:
    rows = [{"instruction": f"en {i}", "input": "", "output": "x"} for i in range(40)]
    small = [{"instruction": f"zh {i}", "input": "", "output": "y"} for i in range(5)]
    en, zh = tmp_path / "en.json", tmp_path / "zh.json"
    en.write_text(json.dumps(rows))
    zh.write_text(json.dumps(small))
    config = _interleave(en, zh, probabilities=[0.5, 0.5], stopping_strategy="all_exhausted")
    first, saved = _mixed(tmp_path / "a", config)
    _, saved_again = _mixed(tmp_path / "b", config)
    assert saved["instruction"] == saved_again["instruction"]  # the same seed, the same mix
    found = SHARES.search(first)
    assert found and found.group(1) == "all_exhausted", first[-2000:]
    assert int(found.group(3)) >= 40 and int(found.group(4)) > 5  # the small file was repeated
    assert set(saved["instruction"]) == {r["instruction"] for r in rows + small}
    _, reseeded = _mixed(tmp_path / "c", config + "          seed: 3\n")
    assert reseeded["instruction"] != saved["instruction"]  # another seed, another mix


def _dedup_config(data: Path, columns: list[str] | None) -> str:
    given = f"\n          columns: {json.dumps(columns)}" if columns is not None else ""
    return (
        "components:\n"
        + _loader("rows", data_files=str(data))
        + OPS
        + f"""workflows:
  - id: mix
    jobs:
      - id: load
        component: rows
      - id: dedup
        component: ops
        method: deduplicate
        input:
          dataset: ${{jobs.load.output}}{given}
"""
    )


ROWS = [
    {"instruction": "a", "output": "1"},
    {"instruction": "b", "output": "2"},
    {"instruction": "a", "output": "1"},  # the same row again
    {"instruction": "c", "output": "3"},
    {"instruction": "b", "output": "9"},  # the same instruction, another output
    {"instruction": "a", "output": "1"},  # and again
    {"instruction": "d", "output": "4"},
]


@pytest.mark.parametrize(
    ("columns", "removed", "kept"),
    [(None, 2, [0, 1, 3, 4, 6]), (["instruction"], 3, [0, 1, 3, 6])],
    ids=["every-column", "instruction"],
)
def test_deduplicate_removes_the_known_duplicates(
    tmp_path: Path, columns: list[str] | None, removed: int, kept: list[int]
) -> None:
    data = tmp_path / "rows.json"
    data.write_text(json.dumps(ROWS))
    stdout, saved = _mixed(tmp_path, _dedup_config(data, columns))
    shown = columns or ["instruction", "output"]
    assert f"removed {removed} duplicate rows of {len(ROWS)} (by columns {shown})" in stdout
    assert saved.to_list() == [ROWS[i] for i in kept]  # the first of each kind, in order


def test_deduplicate_on_an_unknown_column_is_a_clear_error(tmp_path: Path) -> None:
    data = tmp_path / "rows.json"
    data.write_text(json.dumps(ROWS))
    out = build(tmp_path, _dedup_config(data, ["instruction", "prompt"]))
    result = run(out / "mix" / "prepare.py", "--output-dir", str(tmp_path / "saved"), cwd=tmp_path)
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    message = "deduplicate: no column 'prompt'; the columns are ['instruction', 'output']"
    assert message in result.stderr
    assert not (tmp_path / "saved").exists()


def test_interleave_a_stream_with_a_file(tmp_path: Path) -> None:
    """A stream mixes with a file (read as a stream too); without probabilities: in turn."""
    en = shared("alpaca_en_demo.json")
    small = [{"instruction": f"zh {i}", "input": "", "output": "y"} for i in range(5)]
    zh = tmp_path / "zh.json"
    zh.write_text(json.dumps(small))
    config = _interleave(en, zh).replace(
        "  - id: ops\n",
        "  - id: stream\n    type: datasets\n    provider: huggingface\n    path: json\n"
        f"    data_files: {json.dumps(str(en))}\n    streaming: true\n  - id: ops\n",
    )
    config = config.replace(
        f"component: alpaca\n        input: {{ data_files: {json.dumps(str(en))} }}",
        "component: stream",
    )
    stdout, saved = _mixed(tmp_path, config)
    assert "[data] interleave: a stream of load-en, load-zh" in stdout, stdout[-2000:]
    first_en = json.loads(en.read_text())[:5]
    # in turn, stopping when the five-row file runs out
    expected = [r["instruction"] for pair in zip(first_en, small, strict=True) for r in pair]
    assert saved["instruction"][: len(expected)] == expected
    assert saved.num_rows in (len(expected), len(expected) + 1)
