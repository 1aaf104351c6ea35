"""Dataset workflows (loaders and operations, guide 9.2 / SPEC 2.3) compiled and run for real.

Each test writes a config (absolute paths, except the guide 9.2.3 examples run as
written), builds it and runs the generated prepare.py or train.py in a subprocess,
offline, on the CPU, on the shared sample data. A user's mistake must end with exit
code 2 and one clear message, never a traceback.
"""

from __future__ import annotations

import csv
import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from mccompile.cli import main as mccompile
from tests.e2e.helpers import build, ok, run, shared, summary, trainer_yaml

pytestmark = pytest.mark.e2e
datasets = pytest.importorskip("datasets")

TEMPLATE = "### Instruction:\n{instruction}\n\n### Response:\n{output}"
ALPACA_COLUMNS = ["instruction", "input", "output"]


def q(value: Any) -> str:
    """A value as YAML (JSON is YAML): paths, templates and conditions quoted safely."""
    return json.dumps(value if not isinstance(value, Path) else str(value), ensure_ascii=False)


def _rows(name: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = json.loads(shared(name).read_text())
    return rows


def _write_json(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text(json.dumps(rows, ensure_ascii=False))
    return path


def _loader(component: str, data_files: Any = None, **fields: Any) -> str:
    lines = [
        f"  - id: {component}",
        "    type: datasets",
        "    provider: local",
        f"    loader: {fields.pop('loader', 'json')}",
    ]
    if data_files is not None:
        lines.append(f"    data_files: {q(data_files)}")
    lines += [f"    {key}: {q(value)}" for key, value in fields.items()]
    return "\n".join(lines) + "\n"


OPS = "  - id: ops\n    type: datasets\n"


def _prepare(
    tmp_path: Path, config: str, workflow: str, *args: str, folder: str = "prep"
) -> tuple[subprocess.CompletedProcess[str], Path]:
    """Build ``config``, run the prepare.py of ``workflow``; return the run and the saved folder."""
    where = tmp_path / folder
    where.mkdir(parents=True, exist_ok=True)
    out = build(where, config)
    program = out / workflow / "prepare.py"
    assert program.is_file(), sorted(p.name for p in (out / workflow).iterdir())
    saved = where / "saved"
    result = run(program, *args, "--output-dir", str(saved), cwd=where)
    return result, saved


def _prepared(tmp_path: Path, config: str, workflow: str, *args: str) -> Any:
    """Run a prepare-only workflow that must succeed; return the dataset it saved."""
    result, saved = _prepare(tmp_path, config, workflow, *args)
    ok(result)
    assert "Traceback" not in result.stderr
    loaded = datasets.load_from_disk(str(saved))
    assert f"saved {loaded.num_rows} rows to {saved}" in result.stdout
    assert f"columns: {loaded.column_names}" in result.stdout
    return loaded


def _user_error(result: subprocess.CompletedProcess[str], *needles: str) -> str:
    """A user's mistake: exit code 2, one clear message, no traceback."""
    assert result.returncode == 2, (result.returncode, result.stdout[-2000:], result.stderr[-4000:])
    assert "Traceback" not in result.stderr, result.stderr[-4000:]
    for needle in needles:
        assert needle in result.stderr, (needle, result.stderr[-4000:])
    return result.stderr


# -- a. two local loaders, concat, filter, map, train ---------------------------------


def test_alpaca_en_and_zh_concat_filter_map_then_train(tmp_path: Path, tiny_model: Path) -> None:
    en, zh = shared("alpaca_en_demo.json"), shared("alpaca_zh_demo.json")
    fraction, min_len = 0.02, 12
    output_dir = tmp_path / "run"
    condition = {
        "all": [
            {"column": "output", "operator": "not-empty"},
            {"column": "instruction", "operator": "gte", "value": min_len, "length": True},
        ]
    }
    config = (
        "components:\n"
        + _loader("alpaca", fraction=fraction)
        + OPS
        + trainer_yaml(tiny_model, output_dir, text_column="text")
        + f"""
workflows:
  - id: alpaca-mix
    jobs:
      - id: load-en
        component: alpaca
        input: {{ data_files: {q(en)} }}
      - id: load-zh
        component: alpaca
        input: {{ data_files: {q(zh)} }}
      - id: concat
        component: ops
        method: concat
        input:
          datasets: [ "${{jobs.load-en.output}}", "${{jobs.load-zh.output}}" ]
      - id: filter
        component: ops
        method: filter
        input:
          dataset: ${{jobs.concat.output}}
          condition: {q(condition)}
      - id: map
        component: ops
        method: map
        input:
          dataset: ${{jobs.filter.output}}
          template: {q(TEMPLATE)}
      - id: train
        component: trainer
        input:
          dataset: ${{jobs.map.output}}
"""
    )
    # what the program must find: the first 2% of each file (no shuffle), then the filter
    raw_en, raw_zh = _rows("alpaca_en_demo.json"), _rows("alpaca_zh_demo.json")
    rows = raw_en[: int(len(raw_en) * fraction)] + raw_zh[: int(len(raw_zh) * fraction)]
    kept = [r for r in rows if r["output"] and len(r["instruction"]) >= min_len]
    assert 0 < len(kept) < len(rows), "the filter must drop some rows and keep some"

    out = build(tmp_path, config)
    program = out / "alpaca-mix" / "train.py"
    dry = ok(run(program, "--dry-run", cwd=tmp_path))
    assert f"{len(kept)} training rows" in dry.stdout, dry.stdout[-3000:]
    assert "format: text" in dry.stdout
    first = dry.stdout.split("--- example 0")[1]
    assert "### Instruction:" in first and "### Response:" in first
    assert kept[0]["instruction"][:20] in first

    result = ok(run(program, "--max-steps", "2", cwd=tmp_path))
    assert "Traceback" not in result.stderr
    assert f"{len(kept)} training rows" in result.stdout
    s = summary(output_dir)
    assert s["global_step"] == 2
    assert s["train_loss"] > 0
    assert [e["step"] for e in s["log_history"] if "loss" in e] == [1, 2]


def test_dataset_jobs_feed_training_and_evaluation(tmp_path: Path, tiny_model: Path) -> None:
    """Two row selections of one file: the first 16 rows train, the next 8 evaluate."""
    rows = [{"prompt": f"What is {i} + {i}?", "response": f"{2 * i}."} for i in range(30)]
    data = _write_json(tmp_path / "sums.json", rows)
    output_dir = tmp_path / "run"
    config = (
        "components:\n"
        + _loader("sums", data)
        + OPS
        + trainer_yaml(
            tiny_model,
            output_dir,
            prompt_column="prompt",
            response_column="response",
            peft_adapter="lora",
        )
        + f"""
workflows:
  - id: sums
    jobs:
      - id: load
        component: sums
      - id: train-rows
        component: ops
        method: select
        input: {{ dataset: "${{jobs.load.output}}", axis: rows, indices: {q(list(range(16)))} }}
      - id: eval-rows
        component: ops
        method: select
        input: {{ dataset: "${{jobs.load.output}}", axis: rows, indices: {q(list(range(16, 24)))} }}
      - id: train
        component: trainer
        input:
          dataset: ${{jobs.train-rows.output}}
          eval_dataset: ${{jobs.eval-rows.output}}
"""
    )
    out = build(tmp_path, config)
    result = ok(run(out / "sums" / "train.py", "--max-steps", "2", cwd=tmp_path))
    assert "16 training rows; 8 evaluation rows" in result.stdout
    s = summary(output_dir)
    assert s["global_step"] == 2
    assert s["eval_loss"] is not None and s["perplexity"] is not None


# -- b. map templates: data braces untouched, {{ }} in the template -----------------------


def test_map_keeps_the_braces_of_the_data_and_renders_literal_braces(tmp_path: Path) -> None:
    identity = shared("identity.json")
    braced = '{{"q": "{instruction}", "name": "{{name}}"}}'
    qa = "Q: {instruction}\nA: {output}"
    config = (
        "components:\n"
        + _loader("identity", identity)
        + OPS
        + f"""
workflows:
  - id: identity
    jobs:
      - id: load
        component: identity
      - id: qa
        component: ops
        method: map
        input:
          dataset: ${{jobs.load.output}}
          template: {q(qa)}
      - id: braces
        component: ops
        method: map
        input:
          dataset: ${{jobs.qa.output}}
          template: {q(braced)}
          output_column: braced
          remove_columns: [ input ]
"""
    )
    raw = _rows("identity.json")
    result = _prepared(tmp_path, config, "identity")
    assert result.num_rows == len(raw)
    assert result.column_names == ["instruction", "output", "text", "braced"]
    for row, source in zip(result, raw, strict=True):
        # the literal {{name}} / {{author}} of the data come out as they are
        assert row["output"] == source["output"]
        assert row["text"] == f"Q: {source['instruction']}\nA: {source['output']}"
        assert row["braced"] == f'{{"q": "{source["instruction"]}", "name": "{{name}}"}}'
    assert "{{name}}" in result[0]["text"] and "{{author}}" in result[0]["text"]
    assert result[0]["braced"] == '{"q": "hi", "name": "{name}"}'


# -- c. a prepare-only workflow, then a trainer on its saved folder ------------------------


def test_prepared_folder_is_a_trainers_dataset(tmp_path: Path, tiny_model: Path) -> None:
    c4 = shared("c4_demo.jsonl")
    config = (
        "components:\n"
        + _loader("c4", c4)
        + OPS
        + """
workflows:
  - id: c4-small
    jobs:
      - id: load
        component: c4
      - id: head
        component: ops
        method: select
        input:
          dataset: ${jobs.load.output}
          axis: rows
          indices: [ 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11 ]
"""
    )
    prepared, saved = _prepare(tmp_path, config, "c4-small")
    ok(prepared)
    assert f"saved 12 rows to {saved}" in prepared.stdout
    assert "columns: ['text']" in prepared.stdout

    output_dir = tmp_path / "run"
    train_at = tmp_path / "train"
    train_at.mkdir()
    out = build(
        train_at, "components:\n" + trainer_yaml(tiny_model, output_dir, text_column="text")
    )
    result = ok(
        run(
            out / "trainer" / "train.py",
            "--dataset",
            str(saved),
            "--max-steps",
            "2",
            cwd=train_at,
        )
    )
    assert "12 training rows" in result.stdout
    s = summary(output_dir)
    assert s["global_step"] == 2 and s["train_loss"] > 0


# -- d. csv (large_string) and json (string) concatenated --------------------------------


@pytest.mark.parametrize("csv_first", [True, False], ids=["csv-then-json", "json-then-csv"])
def test_concat_csv_and_json_with_the_same_columns(tmp_path: Path, csv_first: bool) -> None:
    csv_rows = [
        {"instruction": f"Say {word}.", "input": f"context {i}", "output": word}
        for i, word in enumerate(["one", "two", "three"])
    ]
    data_csv = tmp_path / "part.csv"
    with data_csv.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=ALPACA_COLUMNS, quoting=csv.QUOTE_ALL)
        writer.writeheader()
        writer.writerows(csv_rows)
    # the same columns, in another order
    json_rows = [
        {"output": r["output"], "instruction": r["instruction"], "input": r["input"] or "-"}
        for r in _rows("alpaca_en_demo.json")[:4]
    ]
    data_json = _write_json(tmp_path / "part.json", json_rows)
    first, second = ("from-csv", "from-json") if csv_first else ("from-json", "from-csv")
    config = (
        "components:\n"
        + _loader("from-csv", data_csv, loader="csv")
        + _loader("from-json", data_json)
        + OPS
        + f"""
workflows:
  - id: mixed
    jobs:
      - id: {first}
        component: {first}
      - id: {second}
        component: {second}
      - id: concat
        component: ops
        method: concat
        input:
          datasets: [ "${{jobs.{first}.output}}", "${{jobs.{second}.output}}" ]
      - id: map
        component: ops
        method: map
        input:
          dataset: ${{jobs.concat.output}}
          template: {q(TEMPLATE)}
"""
    )
    result = _prepared(tmp_path, config, "mixed")
    expected = csv_rows + json_rows if csv_first else json_rows + csv_rows
    assert result.num_rows == len(expected)
    assert sorted(result.column_names) == sorted([*ALPACA_COLUMNS, "text"])
    for row, source in zip(result, expected, strict=True):
        assert {k: row[k] for k in ALPACA_COLUMNS} == source
        assert row["text"] == TEMPLATE.format(**source)
    for column in ALPACA_COLUMNS:
        assert result.features[column].dtype in ("string", "large_string")


def test_concat_horizontal_puts_columns_side_by_side(tmp_path: Path) -> None:
    identity = shared("identity.json")
    config = (
        "components:\n"
        + _loader("identity", identity, fraction="${input.fraction as number | 0.25}")
        + OPS
        + """
workflows:
  - id: side
    jobs:
      - id: load
        component: identity
      - id: questions
        component: ops
        method: select
        input: { dataset: "${jobs.load.output}", columns: [ instruction ] }
      - id: answers
        component: ops
        method: select
        input: { dataset: "${jobs.load.output}", columns: [ output ] }
      - id: side
        component: ops
        method: concat
        input:
          datasets: [ "${jobs.answers.output}", "${jobs.questions.output}" ]
          direction: horizontal
"""
    )
    raw = _rows("identity.json")
    result = _prepared(tmp_path, config, "side", "--fraction", "0.1")
    assert result.column_names == ["output", "instruction"]
    size = int(len(raw) * 0.1)
    assert result.to_list() == [
        {"output": r["output"], "instruction": r["instruction"]} for r in raw[:size]
    ]


def test_parquet_and_text_loaders_with_remove_columns(tmp_path: Path) -> None:
    raw = _rows("identity.json")[:6]
    parquet = tmp_path / "identity.parquet"
    datasets.Dataset.from_list(raw).to_parquet(str(parquet))
    lines = [
        json.loads(line)["text"][:80]
        for line in shared("c4_demo.jsonl").read_text().splitlines()[:4]
    ]
    text = tmp_path / "lines.txt"
    text.write_text("\n".join(lines) + "\n")
    config = (
        "components:\n"
        + _loader("pq", parquet, loader="parquet")
        + _loader("txt", text, loader="text")
        + OPS
        + f"""
workflows:
  - id: mixed
    jobs:
      - id: pq
        component: pq
      - id: flat
        component: ops
        method: map
        input:
          dataset: ${{jobs.pq.output}}
          template: {q(TEMPLATE)}
          remove_columns: true
      - id: txt
        component: txt
      - id: all
        component: ops
        method: concat
        input:
          datasets: [ "${{jobs.flat.output}}", "${{jobs.txt.output}}" ]
"""
    )
    result = _prepared(tmp_path, config, "mixed")
    assert result.column_names == ["text"]
    assert result["text"] == [TEMPLATE.format(**r) for r in raw] + lines


# -- e. select columns and rows (guide 9.2.4) ---------------------------------------------


def test_select_columns_then_rows(tmp_path: Path) -> None:
    alpaca = shared("alpaca_en_demo.json")
    raw = _rows("alpaca_en_demo.json")
    indices = [0, 2, 4, len(raw) - 1]
    config = (
        "components:\n"
        + _loader("dataset-loader", alpaca)
        + OPS
        + f"""
workflows:
  - id: select
    jobs:
      - id: load
        component: dataset-loader
      - id: columns
        component: ops
        method: select
        input:
          dataset: ${{jobs.load.output}}
          axis: columns
          columns: [ output, instruction ]
        depends_on: [ load ]
      - id: rows
        component: ops
        method: select
        input:
          dataset: ${{jobs.columns.output}}
          axis: rows
          indices: {q(indices)}
        depends_on: [ columns ]
"""
    )
    result = _prepared(tmp_path, config, "select")
    assert result.column_names == ["output", "instruction"]
    assert result.num_rows == len(indices)
    assert result.to_list() == [
        {"output": raw[i]["output"], "instruction": raw[i]["instruction"]} for i in indices
    ]


def test_select_columns_is_the_default_axis(tmp_path: Path) -> None:
    config = (
        "components:\n"
        + _loader("identity", shared("identity.json"))
        + """  - id: keep
    type: datasets
    method: select
    dataset: ${input.dataset}
    columns: [ instruction ]
workflows:
  - id: keep
    jobs:
      - id: load
        component: identity
      - id: keep
        component: keep
        input:
          dataset: ${jobs.load.output}
"""
    )
    result = _prepared(tmp_path, config, "keep")
    assert result.column_names == ["instruction"]
    assert result.num_rows == len(_rows("identity.json"))


# -- f. run-time errors: exit code 2, a clear message, no traceback ------------------------


def _one_op(tmp_path: Path, data: Path, op: str, *args: str, loader: str = "json") -> Any:
    """A prepare-only workflow: load ``data``, then the operation component ``op`` (YAML)."""
    config = (
        "components:\n"
        + _loader("data", data, loader=loader)
        + op
        + """
workflows:
  - id: wf
    jobs:
      - id: load
        component: data
      - id: op
        component: op
        input:
          dataset: ${jobs.load.output}
"""
    )
    result, _ = _prepare(tmp_path, config, "wf", *args)
    return result


def test_error_map_template_names_a_missing_column(tmp_path: Path) -> None:
    template = "Q: {instruction}\nA: {answer}"
    op = f"""  - id: op
    type: datasets
    method: map
    dataset: ${{input.dataset}}
    template: {q(template)}
"""
    result = _one_op(tmp_path, shared("identity.json"), op)
    _user_error(result, "'answer'", str(ALPACA_COLUMNS))


def test_error_runtime_template_with_an_unmatched_brace(tmp_path: Path) -> None:
    """Guide 9.2.4 map: the template comes from --template; a bad one says how to write braces."""
    config = """components:
  - id: dataset-ops
    type: datasets
    method: map
    dataset: ${input.dataset}
    template: ${input.template}
"""
    result, _ = _prepare(
        tmp_path,
        config,
        "dataset-ops",
        "--dataset",
        str(shared("identity.json")),
        "--template",
        "Hello {instruction",
    )
    _user_error(result, "{{")


def test_error_map_remove_columns_names_a_missing_column(tmp_path: Path) -> None:
    op = """  - id: op
    type: datasets
    method: map
    dataset: ${input.dataset}
    template: "{instruction}"
    remove_columns: [ answer ]
"""
    result = _one_op(tmp_path, shared("identity.json"), op)
    _user_error(result, "'answer'", str(ALPACA_COLUMNS))


def test_map_renders_a_missing_value_as_empty_text(tmp_path: Path) -> None:
    """csv reads an empty field as null: the template must not write the word None."""
    data = tmp_path / "empty-input.csv"
    data.write_text("instruction,input,output\nSay hi.,,hi\nAdd.,1 and 2,3\n")
    op = """  - id: op
    type: datasets
    method: map
    dataset: ${input.dataset}
    template: "{instruction}|{input}|{output}"
"""
    result = _one_op(tmp_path, data, op, loader="csv")
    ok(result)
    saved = datasets.load_from_disk(str(tmp_path / "prep" / "saved"))
    assert saved["text"] == ["Say hi.||hi", "Add.|1 and 2|3"]


def test_error_select_a_missing_column(tmp_path: Path) -> None:
    op = """  - id: op
    type: datasets
    method: select
    dataset: ${input.dataset}
    columns: [ instruction, response ]
"""
    result = _one_op(tmp_path, shared("identity.json"), op)
    _user_error(result, "'response'", str(ALPACA_COLUMNS))


def test_error_select_a_row_past_the_end(tmp_path: Path) -> None:
    op = """  - id: op
    type: datasets
    method: select
    dataset: ${input.dataset}
    axis: rows
    indices: [ 0, 91 ]
"""
    result = _one_op(tmp_path, shared("identity.json"), op)
    _user_error(result, "91", "91 rows")


ROWS_AT_RUN_TIME = """  - id: op
    type: datasets
    method: select
    dataset: ${input.dataset}
    axis: rows
    indices: ${input.rows as list}
"""


@pytest.mark.parametrize(
    ("rows", "needle"),
    [("[0, 91]", "91 rows"), ("[-1]", "-1"), ('["a"]', "'a'"), ("5", "list")],
    ids=["past-the-end", "negative", "not-a-number", "not-a-list"],
)
def test_error_runtime_row_indices(tmp_path: Path, rows: str, needle: str) -> None:
    """Indices given at run time (--rows) are checked like those in the config."""
    config = (
        "components:\n"
        + _loader("data", shared("identity.json"))
        + ROWS_AT_RUN_TIME
        + """
workflows:
  - id: wf
    jobs:
      - id: load
        component: data
      - id: op
        component: op
        input:
          dataset: ${jobs.load.output}
          rows: ${input.rows}
"""
    )
    result, _ = _prepare(tmp_path, config, "wf", "--rows", rows)
    _user_error(result, needle)


def test_error_concat_of_different_columns(tmp_path: Path) -> None:
    config = (
        "components:\n"
        + _loader("alpaca", shared("identity.json"))
        + _loader("c4", shared("c4_demo.jsonl"))
        + OPS
        + """
workflows:
  - id: wf
    jobs:
      - id: alpaca
        component: alpaca
      - id: c4
        component: c4
      - id: concat
        component: ops
        method: concat
        input:
          datasets: [ "${jobs.alpaca.output}", "${jobs.c4.output}" ]
"""
    )
    result, _ = _prepare(tmp_path, config, "wf")
    _user_error(result, "['text']", str(sorted(ALPACA_COLUMNS)))


def test_error_concat_horizontal_of_different_lengths(tmp_path: Path) -> None:
    config = (
        "components:\n"
        + _loader("alpaca", shared("identity.json"))
        + _loader("c4", shared("c4_demo.jsonl"))
        + OPS
        + """
workflows:
  - id: wf
    jobs:
      - id: alpaca
        component: alpaca
      - id: c4
        component: c4
      - id: concat
        component: ops
        method: concat
        input:
          datasets: [ "${jobs.alpaca.output}", "${jobs.c4.output}" ]
          direction: horizontal
"""
    )
    result, _ = _prepare(tmp_path, config, "wf")
    _user_error(result, "91", "300")


def test_error_concat_of_column_types_that_cannot_be_aligned(tmp_path: Path) -> None:
    numbers = tmp_path / "numbers.jsonl"
    numbers.write_text('{"text": "a", "score": 3}\n{"text": "b", "score": 4}\n')
    words = tmp_path / "words.csv"
    words.write_text("text,score\nc,high\n")
    config = (
        "components:\n"
        + _loader("numbers", numbers)
        + _loader("words", words, loader="csv")
        + OPS
        + """
workflows:
  - id: wf
    jobs:
      - id: numbers
        component: numbers
      - id: words
        component: words
      - id: concat
        component: ops
        method: concat
        input:
          datasets: [ "${jobs.numbers.output}", "${jobs.words.output}" ]
"""
    )
    result, _ = _prepare(tmp_path, config, "wf")
    _user_error(result, "concat", "'score'")


FILTER_AT_RUN_TIME = """components:
  - id: dataset-ops
    type: datasets
    method: filter
    dataset: ${input.dataset}
    condition: ${input.condition}
"""


def test_error_runtime_condition_with_an_unknown_operator(tmp_path: Path) -> None:
    condition = {"column": "output", "operator": "longer-than", "value": 3}
    result, _ = _prepare(
        tmp_path,
        FILTER_AT_RUN_TIME,
        "dataset-ops",
        "--dataset",
        str(shared("identity.json")),
        "--condition",
        json.dumps(condition),
    )
    stderr = _user_error(result, "'longer-than'")
    for known in ("not-empty", "starts-with", "match"):
        assert known in stderr


def test_error_runtime_condition_on_a_missing_column(tmp_path: Path) -> None:
    condition = {"not": {"column": "answer", "operator": "empty"}}
    result, _ = _prepare(
        tmp_path,
        FILTER_AT_RUN_TIME,
        "dataset-ops",
        "--dataset",
        str(shared("identity.json")),
        "--condition",
        json.dumps(condition),
    )
    _user_error(result, "'answer'", str(ALPACA_COLUMNS))


def test_error_runtime_condition_that_is_not_json(tmp_path: Path) -> None:
    result, _ = _prepare(
        tmp_path,
        FILTER_AT_RUN_TIME,
        "dataset-ops",
        "--dataset",
        str(shared("identity.json")),
        "--condition",
        "{column: output, operator: not-empty}",
    )
    _user_error(result, "--condition")


def test_error_runtime_condition_compares_text_with_a_number(tmp_path: Path) -> None:
    condition = {"column": "output", "operator": "gt", "value": 3}
    result, _ = _prepare(
        tmp_path,
        FILTER_AT_RUN_TIME,
        "dataset-ops",
        "--dataset",
        str(shared("identity.json")),
        "--condition",
        json.dumps(condition),
    )
    _user_error(result, "'output'")


@pytest.mark.parametrize(
    ("condition", "needle"),
    [
        ({"column": "output", "operator": "match", "value": "(unclosed"}, "(unclosed"),
        ({"column": "score", "operator": "gt", "value": 1, "length": True}, "'score'"),
    ],
    ids=["bad-regex", "length-of-a-number"],
)
def test_error_runtime_condition_that_fails_on_the_rows(
    tmp_path: Path, condition: dict[str, Any], needle: str
) -> None:
    data = tmp_path / "scores.jsonl"
    data.write_text('{"output": "a", "score": 3}\n{"output": "bb", "score": 5}\n')
    result, _ = _prepare(
        tmp_path,
        FILTER_AT_RUN_TIME,
        "dataset-ops",
        "--dataset",
        str(data),
        "--condition",
        json.dumps(condition),
    )
    _user_error(result, needle)


def test_error_data_file_does_not_exist(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "train.json"
    config = "components:\n" + _loader("data", missing)
    result, _ = _prepare(tmp_path, config, "data")
    _user_error(result, str(missing), "does not exist")


def test_error_dataset_option_does_not_exist(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.json"
    result, _ = _prepare(
        tmp_path,
        FILTER_AT_RUN_TIME,
        "dataset-ops",
        "--dataset",
        str(missing),
        "--condition",
        json.dumps({"column": "output", "operator": "not-empty"}),
    )
    _user_error(result, str(missing), "does not exist")


def test_error_hub_dataset_that_cannot_be_loaded(tmp_path: Path) -> None:
    """Guide 9.2.2: offline (no hub), an id that is not in the cache is a clear error."""
    config = """components:
  - id: dataset-loader
    type: datasets
    provider: huggingface
    path: no-such-org/no-such-dataset
    split: train
"""
    result, _ = _prepare(tmp_path, config, "dataset-loader")
    _user_error(result, "no-such-org/no-such-dataset")


def test_hub_loader_dataset_option_given_a_local_file(tmp_path: Path) -> None:
    """Guide 9.2.2 workflow: --dataset feeds the hub loader's path; a local file either loads
    (as a trainer's --dataset does) or is a clear error, never a traceback."""
    config = (Path(__file__).parents[1] / "guide" / "guide_9_2_2_3.yaml").read_text()
    identity = shared("identity.json")
    result, saved = _prepare(tmp_path, config, "load-training-data", "--dataset", str(identity))
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    if result.returncode == 0:
        assert datasets.load_from_disk(str(saved)).to_list() == _rows("identity.json")
    else:
        _user_error(result, str(identity))


# -- g. a valid run-time condition ----------------------------------------------------


def test_runtime_condition_filters(tmp_path: Path) -> None:
    alpaca = shared("alpaca_en_demo.json")
    condition = {
        "all": [
            {"column": "input", "operator": "not-empty"},
            {"not": {"column": "instruction", "operator": "starts-with", "value": "Generate"}},
            {
                "any": [
                    {"column": "output", "operator": "lt", "value": 120, "length": True},
                    {"column": "instruction", "operator": "match", "value": r"(?i)\bsentence\b"},
                ]
            },
        ]
    }

    def keep(r: dict[str, Any]) -> bool:
        return (
            bool(r["input"])
            and not r["instruction"].startswith("Generate")
            and (
                len(r["output"]) < 120
                or re.search(r"(?i)\bsentence\b", r["instruction"]) is not None
            )
        )

    raw = _rows("alpaca_en_demo.json")
    expected = [r for r in raw if keep(r)]
    assert 0 < len(expected) < len(raw) // 2
    result = _prepared(
        tmp_path,
        FILTER_AT_RUN_TIME,
        "dataset-ops",
        "--dataset",
        str(alpaca),
        "--condition",
        json.dumps(condition),
    )
    assert result.to_list() == expected


def test_runtime_condition_with_in_and_not_in(tmp_path: Path) -> None:
    identity = shared("identity.json")
    wanted = ["hi", "hello", "Who are you?"]
    condition = {
        "any": [
            {"column": "instruction", "operator": "in", "value": wanted},
            {"column": "instruction", "operator": "contains", "value": "name"},
        ]
    }
    raw = _rows("identity.json")
    expected = [r for r in raw if r["instruction"] in wanted or "name" in r["instruction"]]
    assert expected
    result = _prepared(
        tmp_path,
        FILTER_AT_RUN_TIME,
        "dataset-ops",
        "--dataset",
        str(identity),
        "--condition",
        json.dumps(condition),
    )
    assert result.to_list() == expected


# -- job ids are the program's variables ----------------------------------------------


def test_job_ids_that_are_names_the_program_uses(tmp_path: Path) -> None:
    """Job ids such as json, args, result or datasets must not break prepare.py."""
    config = (
        "components:\n"
        + _loader("data", shared("identity.json"))
        + OPS
        + """
workflows:
  - id: wf
    jobs:
      - id: json
        component: data
      - id: args
        component: ops
        method: select
        input: { dataset: "${jobs.json.output}", axis: rows, indices: [ 0, 1 ] }
      - id: datasets
        component: ops
        method: map
        input: { dataset: "${jobs.args.output}", template: "{instruction}" }
      - id: result
        component: ops
        method: select
        input: { dataset: "${jobs.datasets.output}", columns: [ text ] }
"""
    )
    result = _prepared(tmp_path, config, "wf")
    assert result.to_list() == [{"text": r["instruction"]} for r in _rows("identity.json")[:2]]


def test_job_ids_that_are_names_the_trainer_uses(tmp_path: Path, tiny_model: Path) -> None:
    """The same in train.py, whose data code has a tokenizer, args and train_data."""
    config = (
        "components:\n"
        + _loader("data", shared("identity.json"))
        + OPS
        + trainer_yaml(tiny_model, tmp_path / "run")
        + """
workflows:
  - id: wf
    jobs:
      - id: tokenizer
        component: data
      - id: args
        component: ops
        method: select
        input: { dataset: "${jobs.tokenizer.output}", axis: rows, indices: [ 0, 1, 2, 3 ] }
      - id: train_data
        component: ops
        method: select
        input: { dataset: "${jobs.args.output}", columns: [ instruction, input, output ] }
      - id: train
        component: trainer
        input: { dataset: "${jobs.train_data.output}" }
"""
    )
    out = build(tmp_path, config)
    result = ok(run(out / "wf" / "train.py", "--dry-run", cwd=tmp_path))
    assert "format: alpaca" in result.stdout
    assert "4 training rows" in result.stdout


def test_job_ids_that_differ_only_by_dash_and_underscore(tmp_path: Path) -> None:
    """load-a and load_a are two jobs: the program keeps them apart, or the build refuses."""
    config = (
        "components:\n"
        + _loader("alpaca", shared("identity.json"))
        + _loader("c4", shared("c4_demo.jsonl"))
        + OPS
        + """
workflows:
  - id: wf
    jobs:
      - id: load-a
        component: alpaca
      - id: load_a
        component: c4
      - id: pick
        component: ops
        method: select
        input: { dataset: "${jobs.load-a.output}", columns: [ instruction ] }
        depends_on: [ load_a ]
"""
    )
    where = tmp_path / "prep"
    where.mkdir()
    (where / "config.yaml").write_text(config)
    code = mccompile(["build", str(where / "config.yaml"), "-o", str(where / "out"), "--force"])
    if code != 0:
        assert code == 2
        return
    result = ok(
        run(
            where / "out" / "wf" / "prepare.py",
            "--output-dir",
            str(where / "saved"),
            cwd=where,
        )
    )
    assert "Traceback" not in result.stderr
    saved = datasets.load_from_disk(str(where / "saved"))
    assert saved.num_rows == len(_rows("identity.json"))


# -- loaders: data_dir, split mapping, fraction + shuffle, split slicing -------------------


GUIDE = Path(__file__).parents[1] / "guide"


@pytest.mark.parametrize("example", ["guide_9_2_3_1", "guide_9_2_3_2", "guide_9_2_3_3"])
def test_guide_local_loaders_as_written(tmp_path: Path, example: str) -> None:
    """Guide 9.2.3 as written: relative paths, resolved where the program runs."""
    where = tmp_path / "prep"
    (where / "data" / "training").mkdir(parents=True)
    identity = _rows("identity.json")
    _write_json(where / "data" / "train.json", identity[:10])
    _write_json(where / "data" / "training" / "part-1.json", identity[:4])
    _write_json(where / "data" / "training" / "part-2.json", identity[4:7])
    mrpc = shared("mrpc_dev.csv").read_text().splitlines(keepends=True)
    (where / "data" / "train.csv").write_text("".join(mrpc[:4]))
    (where / "data" / "validation.csv").write_text(mrpc[0] + "".join(mrpc[4:]))
    expected_rows = {"guide_9_2_3_1": 10, "guide_9_2_3_2": len(mrpc) - 1, "guide_9_2_3_3": 7}
    config = (GUIDE / f"{example}.yaml").read_text()
    result = _prepared(tmp_path, config, "local-dataset")
    assert result.num_rows == expected_rows[example]
    if example == "guide_9_2_3_2":
        assert result.column_names == ["label", "sentence1", "sentence2"]


def test_local_loader_data_dir_reads_every_json_file(tmp_path: Path) -> None:
    raw = _rows("identity.json")
    folder = tmp_path / "training"
    folder.mkdir()
    _write_json(folder / "a.json", raw[:5])
    _write_json(folder / "b.json", raw[5:8])
    config = "components:\n" + _loader("local-dataset", data_dir=folder)
    result = _prepared(tmp_path, config, "local-dataset")
    assert result.num_rows == 8
    assert sorted(r["instruction"] for r in result) == sorted(r["instruction"] for r in raw[:8])


def test_local_loader_split_mapping(tmp_path: Path) -> None:
    raw = _rows("identity.json")
    train = _write_json(tmp_path / "train.json", raw[:5])
    validation = _write_json(tmp_path / "validation.json", raw[5:8])
    config = "components:\n" + _loader(
        "local-dataset",
        data_files={"train": str(train), "validation": str(validation)},
        split="validation",
    )
    result = _prepared(tmp_path, config, "local-dataset")
    assert result.to_list() == raw[5:8]


def test_local_loader_fraction_shuffle_and_split_slicing(tmp_path: Path) -> None:
    identity = shared("identity.json")
    raw = _rows("identity.json")
    config = (
        "components:\n"
        + _loader("sample", identity, fraction=0.1, shuffle=True)
        + _loader("head", identity, split="train[:5]")
        + OPS
        + """
workflows:
  - id: both
    jobs:
      - id: sample
        component: sample
      - id: head
        component: head
      - id: concat
        component: ops
        method: concat
        input:
          datasets: [ "${jobs.sample.output}", "${jobs.head.output}" ]
"""
    )
    first = _prepared(tmp_path, config, "both")
    sample_size = int(len(raw) * 0.1)
    assert first.num_rows == sample_size + 5
    assert first.to_list()[sample_size:] == raw[:5]
    sample = first.to_list()[:sample_size]
    assert all(r in raw for r in sample)
    assert sample != raw[:sample_size], "shuffle: true must shuffle"
    # seeded: the same rows again
    again, _ = _prepare(tmp_path, config, "both", folder="again")
    ok(again)
    second = datasets.load_from_disk(str(tmp_path / "again" / "saved"))
    assert second.to_list() == first.to_list()


def test_hub_loader_with_every_field_and_a_token_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Guide 9.2.2 (advanced): every loader field, the token read from $HF_TOKEN at run time.
    The hub is unreachable here: ``path: json`` with ``data_files`` uses the same code path."""
    identity = shared("identity.json")
    raw = _rows("identity.json")
    config = f"""components:
  - id: dataset-loader
    type: datasets
    provider: huggingface
    path: json
    data_files: {q(identity)}
    split: train
    fraction: 0.1
    shuffle: true
    streaming: false
    cache_dir: {q(tmp_path / "cache")}
    trust_remote_code: false
    token: ${{env.HF_TOKEN}}
"""
    monkeypatch.delenv("HF_TOKEN", raising=False)
    unset, saved = _prepare(tmp_path, config, "dataset-loader")
    _user_error(unset, "HF_TOKEN")
    program = tmp_path / "prep" / "out" / "dataset-loader" / "prepare.py"
    assert "HF_TOKEN" in program.read_text()  # read when it runs, not pasted in
    result = run(
        program, "--output-dir", str(saved), cwd=program.parents[2], env={"HF_TOKEN": "hf_x"}
    )
    ok(result)
    assert "Traceback" not in result.stderr
    loaded = datasets.load_from_disk(str(saved))
    assert loaded.num_rows == int(len(raw) * 0.1)
    assert all(r in raw for r in loaded.to_list())
