"""LLaMA-Factory's own preprocessing of its demo files, written as JSON fixtures.

For each case of CASES (a dataset of shared/data, a template, a stage), this runs
LLaMA-Factory's get_template_and_fix_tokenizer and its dataset loader (the alpaca / sharegpt
converters, then the supervised, pairwise or feedback processor) with the tiny tokenizer the
tests build (examples/make_tiny_model.py, with its chat template), and writes each row's
decoded input and decoded trained spans (the runs of labels != -100) with their ids to
tests/oracle/fixtures/CASE.json. tests/oracle/test_llama_factory_oracle.py compares the
programs mccompile builds from the same LLaMA-Factory configs with them.

It needs LLaMA-Factory, in a virtual environment of its own (not the project's); from the
repository root:

    python3 -m venv ../lf-venv
    ../lf-venv/bin/pip install torch==2.13.0 llamafactory==0.9.5
    HF_HUB_OFFLINE=1 ../lf-venv/bin/python tests/oracle/make_llama_factory_fixtures.py

The cases' LLaMA-Factory settings are in tests/oracle/cases.json, which the test reads too.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("DISABLE_VERSION_CHECK", "1")

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
DATA = (ROOT / ".." / "shared" / "data").resolve()
FIXTURES = HERE / "fixtures"
ROWS = 8  # rows per case (max_samples), unless the case says "rows"


def cases() -> dict[str, dict[str, Any]]:
    return json.loads((HERE / "cases.json").read_text(encoding="utf-8"))["cases"]  # type: ignore[no-any-return]


def dataset_info() -> dict[str, Any]:
    return json.loads((HERE / "cases.json").read_text(encoding="utf-8"))["dataset_info"]  # type: ignore[no-any-return]


def vocabulary_digest(tokenizer: Any) -> str:
    """A digest of the base vocabulary: ids are compared only where it is the same."""
    vocab = sorted(tokenizer.get_vocab().items(), key=lambda kv: kv[1])
    return hashlib.sha256(json.dumps(vocab).encode()).hexdigest()[:16]


def spans(ids: list[int], labels: list[int]) -> list[list[int]]:
    """The runs of ids whose label is not -100."""
    out: list[list[int]] = []
    previous = False
    for token, label in zip(ids, labels, strict=True):
        trained = label != -100
        if trained and not previous:
            out.append([])
        if trained:
            out[-1].append(token)
        previous = trained
    return out


def encoded(tokenizer: Any, ids: list[int], labels: list[int]) -> dict[str, Any]:
    trained = spans(ids, labels)
    return {
        "input": tokenizer.decode(ids, skip_special_tokens=False),
        "trained": [tokenizer.decode(s, skip_special_tokens=False) for s in trained],
        "input_ids": ids,
        "trained_ids": trained,
    }


def _audio_stub() -> None:
    """LLaMA-Factory's multimodal plugin imports torchaudio at the top; text rows never use it,
    and a torchaudio built for another torch fails to load: a stand-in module then."""
    try:
        import torchaudio  # noqa: F401
    except (ImportError, OSError, RuntimeError):
        import types

        sys.modules["torchaudio"] = types.ModuleType("torchaudio")


def run_case(name: str, case: dict[str, Any], model: Path, data_dir: Path) -> dict[str, Any]:
    _audio_stub()
    from llamafactory.data import get_dataset, get_template_and_fix_tokenizer
    from llamafactory.hparams import DataArguments, ModelArguments
    from transformers import AutoTokenizer, Seq2SeqTrainingArguments

    settings = case["llama_factory"]
    stage = {"sft": "sft", "dpo": "rm", "kto": "kto"}[settings["stage"]]
    tokenizer = AutoTokenizer.from_pretrained(str(model))
    base_digest = vocabulary_digest(tokenizer)
    data_args = DataArguments(
        template=settings["template"],
        dataset=settings["dataset"],
        dataset_dir=str(data_dir),
        cutoff_len=settings.get("cutoff_len", 2048),
        max_samples=case.get("rows", ROWS),
        train_on_prompt=settings.get("train_on_prompt", False),
        overwrite_cache=True,
    )
    model_args = ModelArguments(model_name_or_path=str(model))
    with tempfile.TemporaryDirectory() as out:
        training_args = Seq2SeqTrainingArguments(output_dir=out, report_to="none")
        template = get_template_and_fix_tokenizer(tokenizer, data_args)
        module = get_dataset(template, model_args, data_args, training_args, stage, tokenizer)
        rows = list(module["train_dataset"])
    result: list[dict[str, Any]] = []
    for row in rows:
        if stage == "rm":
            result.append(
                {
                    "chosen": encoded(tokenizer, row["chosen_input_ids"], row["chosen_labels"]),
                    "rejected": encoded(
                        tokenizer, row["rejected_input_ids"], row["rejected_labels"]
                    ),
                }
            )
        else:
            item = encoded(tokenizer, row["input_ids"], row["labels"])
            if stage == "kto":
                item["kto_tag"] = bool(row["kto_tags"])
            result.append(item)
    return {
        "case": name,
        "llama_factory": settings,
        "llamafactory_version": _version("llamafactory"),
        "transformers_version": _version("transformers"),
        "vocabulary": base_digest,
        "eos_token": tokenizer.eos_token,
        "added_special_tokens": sorted(
            t for t in tokenizer.get_added_vocab() if t not in ("<unk>", "<s>", "</s>", "<pad>")
        ),
        "rows": result,
    }


def dump(fixture: dict[str, Any]) -> str:
    """The fixture as JSON with one row a line: small, and a regenerated row shows as one line."""
    head = {k: v for k, v in fixture.items() if k != "rows"}
    lines = [json.dumps(head, ensure_ascii=False, indent=1)[:-2] + ',\n "rows": [']
    rows = [
        " " + json.dumps(row, ensure_ascii=False, separators=(",", ":")) for row in fixture["rows"]
    ]
    return "\n".join(lines) + "\n" + ",\n".join(rows) + "\n ]\n}\n"


def _version(name: str) -> str:
    from importlib.metadata import version

    return version(name)


def main() -> int:
    spec = importlib.util.spec_from_file_location(
        "make_tiny_model", ROOT / "examples" / "make_tiny_model.py"
    )
    assert spec and spec.loader
    tiny = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tiny)
    FIXTURES.mkdir(exist_ok=True)
    only = set(sys.argv[1:])
    with tempfile.TemporaryDirectory() as tmp:
        model = Path(tiny.make_tiny_model(str(Path(tmp) / "tiny-chat"), chat_template=True))
        data_dir = Path(tmp) / "data"
        data_dir.mkdir()
        info = dataset_info()
        for entry in info.values():
            (data_dir / entry["file_name"]).symlink_to(DATA / entry["file_name"])
        (data_dir / "dataset_info.json").write_text(json.dumps(info), encoding="utf-8")
        for name, case in cases().items():
            if only and name not in only:
                continue
            fixture = run_case(name, case, model, data_dir)
            path = FIXTURES / f"{name}.json"
            path.write_text(dump(fixture), encoding="utf-8")
            print(f"{path.relative_to(ROOT)}: {len(fixture['rows'])} rows")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
