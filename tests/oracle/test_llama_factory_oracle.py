"""Imported LLaMA-Factory configs train the text LLaMA-Factory itself trains.

For each case of cases.json, the test writes the LLaMA-Factory config, imports it with
``mccompile import llama-factory``, builds it, and runs the generated program's data path
(its own load_tokenizer, prepare_tokenizer and prepare_data, no weights loaded) on the same
demo rows with the same tiny tokenizer. Each row's decoded input and decoded trained spans
are compared with LLaMA-Factory's (fixtures/, written by make_llama_factory_fixtures.py):
text first, then token ids (where the fixture's vocabulary is this tokenizer's).

A difference is allowed only where DIFFERENCES names it for the case: the import must then
state it (a warning with that name at import time), and the rows must indeed differ, so
the entry goes when the importer learns to carry it.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from mccompile.cli import main
from tests.conftest import ROOT

HERE = Path(__file__).resolve().parent
FIXTURES = HERE / "fixtures"
CASES = json.loads((HERE / "cases.json").read_text(encoding="utf-8"))
DATA = ROOT / ".." / "shared" / "data"

# case -> the differences the import states, by the name it states them with
DIFFERENCES: dict[str, tuple[str, ...]] = {
    "alpaca_en_llama3": ("alpaca-input-separator",),
    "alpaca_en_llama3_train_on_prompt": ("alpaca-input-separator",),
    "alpaca_zh_qwen": ("alpaca-input-separator", "end-of-turn-newline"),
    "glaive_toolcall_qwen3": ("end-of-turn-newline", "think-block-in-prompt", "tool-definitions"),
    "identity_default": ("end-of-turn-newline",),
    "dpo_en_llama3": ("eos-after-end-of-turn",),
    "kto_en_llama3": ("eos-after-end-of-turn",),
}
# case -> the reason the import refuses it (exit 2)
REFUSED: dict[str, str] = {
    "glaive_toolcall_qwen": "template: qwen with tool-call data",
}


@pytest.fixture(scope="module")
def oracle_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fixtures' tokenizer: examples/make_tiny_model.py with its chat template."""
    spec = importlib.util.spec_from_file_location(
        "make_tiny_model", ROOT / "examples" / "make_tiny_model.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    path = tmp_path_factory.mktemp("models") / "tiny-chat"
    module.make_tiny_model(str(path), chat_template=True)
    return path


def fixture(case: str) -> dict[str, Any]:
    path = FIXTURES / f"{case}.json"
    if not path.exists():
        pytest.skip(
            f"no oracle fixture {path.name}: run tests/oracle/make_llama_factory_fixtures.py"
            " in a virtual environment with llamafactory==0.9.5"
        )
    return json.loads(path.read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def llama_factory_config(case: str, model: Path) -> dict[str, Any]:
    settings = CASES["cases"][case]
    config = dict(settings["llama_factory"])
    config.update(
        model_name_or_path=str(model),
        do_train=True,
        finetuning_type="lora",
        dataset_dir="data",
        cutoff_len=config.get("cutoff_len", 2048),
        max_samples=settings.get("rows", 8),
        per_device_train_batch_size=2,
        output_dir="./run",
    )
    return config


def load_program(path: Path) -> Any:
    name = f"oracle_program_{abs(hash(str(path)))}"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def spans(ids: list[int], mask: list[bool]) -> list[list[int]]:
    out: list[list[int]] = []
    previous = False
    for token, trained in zip(ids, mask, strict=True):
        if trained and not previous:
            out.append([])
        if trained:
            out[-1].append(token)
        previous = trained
    return out


def encoded(tokenizer: Any, ids: list[int], mask: list[bool]) -> dict[str, Any]:
    trained = spans(ids, mask)
    return {
        "input": tokenizer.decode(ids, skip_special_tokens=False),
        "trained": [tokenizer.decode(s, skip_special_tokens=False) for s in trained],
        "input_ids": ids,
        "trained_ids": trained,
    }


def program_rows(program: Any, stage: str) -> tuple[list[dict[str, Any]], Any]:
    """The generated program's rows: what its trainer is given, decoded like the fixtures."""
    args = program.parse_args([])
    tokenizer = program.load_tokenizer()
    if hasattr(program, "prepare_tokenizer"):
        tokenizer = program.prepare_tokenizer(tokenizer)
    train_data, _ = program.prepare_data(args, tokenizer)
    rows: list[dict[str, Any]] = []
    for row in train_data:
        if stage == "sft":
            mask = [label != -100 for label in row["labels"]]
            rows.append(encoded(tokenizer, row["input_ids"], mask))
            continue
        # preference rows: the trainer's prompt and completion texts; TRL tokenizes the
        # prompt and the completion apart and adds the end-of-sequence token the completion lacks
        completions = ("chosen", "rejected") if stage == "dpo" else ("completion",)
        item: dict[str, Any] = {}
        for key in completions:
            prompt, completion = program.rendered(row["prompt"], row[key], tokenizer)
            if not completion.endswith(tokenizer.eos_token):
                completion += tokenizer.eos_token
            head = tokenizer(prompt, add_special_tokens=False)["input_ids"]
            tail = tokenizer(completion, add_special_tokens=False)["input_ids"]
            item[key] = encoded(tokenizer, head + tail, [False] * len(head) + [True] * len(tail))
        if stage == "kto":
            item = {**item["completion"], "kto_tag": bool(row["label"])}
        rows.append(item)
    return rows, tokenizer


def text_of(row: dict[str, Any]) -> Any:
    if "chosen" in row:
        return {k: (row[k]["input"], row[k]["trained"]) for k in ("chosen", "rejected")}
    return (row["input"], row["trained"], row.get("kto_tag"))


def ids_of(row: dict[str, Any]) -> Any:
    if "chosen" in row:
        return {k: (row[k]["input_ids"], row[k]["trained_ids"]) for k in ("chosen", "rejected")}
    return (row["input_ids"], row["trained_ids"])


def _cut(row: dict[str, Any], cutoff: int) -> bool:
    parts = [row["chosen"], row["rejected"]] if "chosen" in row else [row]
    return any(len(part["input_ids"]) >= cutoff for part in parts)


def _alpaca_rows(case: str) -> list[dict[str, str]]:
    name = CASES["cases"][case]["llama_factory"]["dataset"]
    path = DATA / CASES["dataset_info"][name]["file_name"]
    return json.loads(path.read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def _blank_line_input(text: Any, case: str) -> Any:
    """LLaMA-Factory's text as mccompile joins instruction and input: with a blank line."""
    out, trained, tag = text
    for row in _alpaca_rows(case)[: CASES["cases"][case].get("rows", 8)]:
        if row.get("input"):
            out = out.replace(
                f"{row['instruction']}\n{row['input']}", f"{row['instruction']}\n\n{row['input']}"
            )
            trained = [
                t.replace(
                    f"{row['instruction']}\n{row['input']}",
                    f"{row['instruction']}\n\n{row['input']}",
                )
                for t in trained
            ]
    return (out, trained, tag)


def _untrained_newline(text: Any, case: str) -> Any:
    """LLaMA-Factory's spans without the newline after the end-of-turn token."""
    out, trained, tag = text
    return (out, [t[:-1] if t.endswith("\n") else t for t in trained], tag)


def _eos_after_end_of_turn(text: Any, case: str) -> Any:
    """LLaMA-Factory's completions with the tokenizer's own EOS after the end-of-turn token."""
    if isinstance(text, dict):
        return {k: _eos_after_end_of_turn((*v, None), case)[:2] for k, v in text.items()}
    out, trained, tag = text
    return (out + "</s>", [*trained[:-1], trained[-1] + "</s>"], tag)


# a stated difference, applied to LLaMA-Factory's rows: what mccompile trains by design
AS_DESIGNED = {
    "alpaca-input-separator": _blank_line_input,
    "end-of-turn-newline": _untrained_newline,
    "eos-after-end-of-turn": _eos_after_end_of_turn,
}


@pytest.mark.parametrize("case", sorted(CASES["cases"]))
def test_imported_config_trains_what_llama_factory_trains(
    case: str,
    oracle_model: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    expected = fixture(case)
    data = tmp_path / "data"
    data.mkdir()
    for entry in CASES["dataset_info"].values():
        if not (DATA / entry["file_name"]).is_file():
            pytest.skip(f"the shared sample data is not beside the repository ({DATA})")
        shutil.copy(DATA / entry["file_name"], data / entry["file_name"])
    (data / "dataset_info.json").write_text(json.dumps(CASES["dataset_info"]), encoding="utf-8")
    peer = tmp_path / "llama_factory.yaml"
    peer.write_text(yaml.safe_dump(llama_factory_config(case, oracle_model)), encoding="utf-8")
    config = tmp_path / "config.yaml"
    capsys.readouterr()
    code = main(["import", "llama-factory", str(peer), "-o", str(config)])
    stated = capsys.readouterr()
    said = stated.out + stated.err
    if case in REFUSED:
        assert code == 2 and REFUSED[case] in said, said
        return
    assert code == 0, said
    out = tmp_path / "out"
    assert main(["build", str(config), "-o", str(out)]) == 0
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    program = load_program(out / "train" / "train.py")
    stage = expected["llama_factory"]["stage"]
    rows, _ = program_rows(program, stage)
    assert len(rows) == len(expected["rows"])
    differences = DIFFERENCES.get(case, ())
    for name in differences:
        assert f"[{name}]" in said, f"the import does not state the difference {name!r}:\n{said}"
    # rows LLaMA-Factory cut to cutoff_len: it cuts prompt and response in proportion,
    # mccompile the end of the row, as the import states ([truncation]); compared apart
    cutoff = llama_factory_config(case, oracle_model)["cutoff_len"]
    assert "[truncation]" in said
    keep = [not _cut(row, cutoff) for row in expected["rows"]]
    assert any(keep)
    rows = [r for r, k in zip(rows, keep, strict=True) if k]
    expected["rows"] = [r for r, k in zip(expected["rows"], keep, strict=True) if k]
    if stage == "kto":  # the KTO program shuffles its rows (each batch mixes the labels)
        rows = sorted(rows, key=lambda r: r["input"])
        expected["rows"] = sorted(expected["rows"], key=lambda r: r["input"])
    texts = [text_of(r) for r in rows]
    wanted = [text_of(r) for r in expected["rows"]]
    if differences:
        assert texts != wanted, f"{case} trains LLaMA-Factory's text: drop {differences}"
        if not set(differences) <= set(AS_DESIGNED):
            return  # a difference the test cannot undo: stated, and the rows differ
        designed = wanted
        for name in differences:
            designed = [AS_DESIGNED[name](row, case) for row in designed]
        for index, (got, want) in enumerate(zip(texts, designed, strict=True)):
            assert got == want, f"{case} row {index}: differs beyond {differences}" + _diff(
                got, want
            )
        # the rows the differences leave alone are the same to the token
        same = [i for i, (a, b) in enumerate(zip(wanted, designed, strict=True)) if a == b]
        rows = [rows[i] for i in same]
        expected["rows"] = [expected["rows"][i] for i in same]
        texts, wanted = [texts[i] for i in same], [wanted[i] for i in same]
    for index, (got, want) in enumerate(zip(texts, wanted, strict=True)):
        assert got == want, f"{case} row {index}: the text differs from LLaMA-Factory's" + _diff(
            got, want
        )
    # ids second, where the fixture's tokenizer is this one (the same BPE training)
    assert _same_vocabulary(oracle_model, expected), "the tiny tokenizer changed: regenerate"
    for index, (got, want) in enumerate(zip(rows, expected["rows"], strict=True)):
        assert ids_of(got) == ids_of(want), f"{case} row {index}: the ids differ"


def _diff(got: Any, want: Any) -> str:
    a, b = json.dumps(got, ensure_ascii=False), json.dumps(want, ensure_ascii=False)
    i = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), len(a))
    start = max(0, i - 60)
    return f"\n  mccompile:     ...{a[start : i + 100]}\n  LLaMA-Factory: ...{b[start : i + 100]}"


def _same_vocabulary(model: Path, expected: dict[str, Any]) -> bool:
    sys.path.insert(0, str(HERE))
    try:
        from make_llama_factory_fixtures import vocabulary_digest
    finally:
        sys.path.remove(str(HERE))
    from transformers import AutoTokenizer

    digest: str = vocabulary_digest(AutoTokenizer.from_pretrained(str(model)))
    return digest == expected["vocabulary"]
