"""What a training run prints, line by line, and the batches it trains on."""

from __future__ import annotations

import fcntl
import importlib.util
import json
import os
import pty
import re
import struct
import subprocess
import sys
import termios
from pathlib import Path
from types import ModuleType

import pytest

from tests.e2e.helpers import build, ok, run, summary, trainer_yaml

pytestmark = pytest.mark.e2e
pytest.importorskip("trl")

STEPS = 3
NUMBER = r"\d+\.\d{3}"
STEP_LINE = re.compile(
    rf"^step (\d+)/{STEPS} \((\d+)%\)  loss ({NUMBER})  lr (\d\.\de-?\d+)  grad-norm (\S+)"
    r"(  tokens/s ([\d,]+))?  eta (\d+\.\ds|\d+m\d\ds|\d+h\d\dm)$"
)
EVAL_LINE = re.compile(rf"^eval  step {STEPS}/{STEPS}  loss ({NUMBER})  perplexity (\d+\.\d\d)$")
DONE_LINE = re.compile(
    rf"^\[done\] {STEPS} steps in \S+, train loss {NUMBER}, eval loss {NUMBER},"
    r" perplexity \d+\.\d\d, [\d,]+ tokens/s$"
)
PATH_LINE = re.compile(r"^  (adapter|model|merged|summary|loss plot):\s+(\S.*)$")
# every other line a run may print: its own reports, and named progress bars
OTHER_LINES = [
    re.compile(r"^\[(data|resume)\] "),
    re.compile(r"^\[setup\] 1 process \(NO\); precision: fp32$"),
    re.compile(r"^trainable params: [\d,]+ \|\| all params: [\d,]+ \|\| trainable%: [\d.]+$"),
    re.compile(r"^[A-Za-z][\w ]+: +(\d+%\||\d+ examples \[)"),  # a progress bar with a name
]


def _rows(count: int) -> list[dict[str, str]]:
    rows = [
        {"prompt": f"What is {i} plus one?", "response": f"It is {i + 1}."} for i in range(count)
    ]
    # a prompt longer than max_seq_length (128 tokens): no response is left after truncation
    return [*rows, {"prompt": "Why? " * 200, "response": "Because."}]


def _program(tmp_path: Path, model: Path, **fields: object) -> tuple[Path, Path, Path]:
    data = tmp_path / "qa.jsonl"
    data.write_text("".join(json.dumps(row) + "\n" for row in _rows(32)))
    output_dir = tmp_path / "run"
    settings = {
        "prompt_column": "prompt",
        "response_column": "response",
        "peft_adapter": "lora",
        "validation_split": 0.25,
        "eval_steps": 100,
        **fields,
    }
    config = "components:\n" + trainer_yaml(model, output_dir, **settings)
    return build(tmp_path, config) / "trainer" / "train.py", data, output_dir


def test_output_of_a_short_run_line_by_line(tmp_path: Path, tiny_model: Path) -> None:
    program, data, output_dir = _program(tmp_path, tiny_model)
    result = ok(run(program, "--dataset", str(data), "--max-steps", str(STEPS), cwd=tmp_path))
    everything = result.stdout + result.stderr
    assert "Warning" not in everything and "WARNING" not in everything and "warn(" not in everything
    assert "[summary]" not in everything and "{'loss'" not in everything
    assert re.search(
        r"^\[data\] dropped 1 (training|evaluation) rows with no response left", result.stdout, re.M
    )
    steps, evals, done, paths = [], [], [], []
    for line in everything.replace("\r", "\n").splitlines():
        if not line.strip():
            continue
        if match := STEP_LINE.match(line):
            steps.append(match)
        elif EVAL_LINE.match(line):
            evals.append(line)
        elif DONE_LINE.match(line):
            done.append(line)
        elif match := PATH_LINE.match(line):
            paths.append((match[1], match[2]))
        else:
            assert any(p.match(line) for p in OTHER_LINES), f"unexpected output line: {line!r}"
    assert [int(m[1]) for m in steps] == [1, 2, 3]
    assert [int(m[2]) for m in steps] == [33, 66, 100]
    assert all(m[7] for m in steps[1:])  # tokens/s once there is a step to measure
    s = summary(output_dir)
    logged = [entry["loss"] for entry in s["log_history"] if "loss" in entry]
    assert [float(m[3]) for m in steps] == [pytest.approx(loss, abs=5e-4) for loss in logged]
    assert len(evals) == 1  # one final evaluation, printed once
    assert sum("eval_loss" in entry for entry in s["log_history"]) == 1
    assert float(EVAL_LINE.match(evals[0])[1]) == pytest.approx(s["eval_loss"], abs=5e-4)
    assert len(done) == 1
    assert result.stdout.rstrip().splitlines()[-3:] == [
        done[0],
        f"  adapter:  {output_dir}",
        f"  summary:  {output_dir / 'training_summary.json'}",
    ]  # the closing block ends the output
    assert dict(paths) == {
        "adapter": str(output_dir),
        "summary": str(output_dir / "training_summary.json"),
    }
    assert all((tmp_path / path).exists() for _, path in paths)
    # the model card names the base model
    card = (output_dir / "README.md").read_text()
    assert "[None]" not in card and 'model="None"' not in card
    assert f"fine-tuned version of `{tiny_model}`" in card


def test_a_terminal_gets_a_progress_bar(tmp_path: Path, tiny_model: Path) -> None:
    program, data, _ = _program(tmp_path, tiny_model)
    leader, follower = pty.openpty()
    # a terminal of 120 columns (a new one has none, and tqdm draws nothing in no room)
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    env = {**os.environ, "HF_DATASETS_CACHE": str(tmp_path / ".hf-cache")}
    process = subprocess.Popen(
        [sys.executable, str(program), "--dataset", str(data), "--max-steps", str(STEPS)],
        cwd=tmp_path,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=follower,
        stderr=follower,
    )
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the program closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    assert process.wait(timeout=300) == 0
    text = b"".join(chunks).decode("utf-8", "replace")
    text = re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", text)  # the cursor moves between the bars
    assert re.search(
        rf"training: +100%\|.*\| {STEPS}/{STEPS} \[\d\d:\d\d<\d\d:\d\d, .*loss {NUMBER}\]", text
    ), text[-3000:]
    lines = [line.strip() for line in re.split(r"[\r\n]+", text)]
    assert not any(line.startswith("step ") for line in lines)  # the bar, not the log lines
    assert sum(bool(EVAL_LINE.match(line)) for line in lines) == 1
    assert "evaluating: " in text  # and one while it evaluates
    assert "[done] 3 steps" in text


def _module(program: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"generated_{abs(hash(program))}", program)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("packing", [False, True])
def test_loss_on_response_tokens_only(tmp_path: Path, tiny_model: Path, packing: bool) -> None:
    """The rows reach the model as the program prepared them; prompt tokens carry no loss."""
    program, data, _ = _program(tmp_path, tiny_model, packing=packing)
    os.environ["HF_DATASETS_CACHE"] = str(tmp_path / ".hf-cache")
    module = _module(program)
    args = module.parse_args(["--dataset", str(data), "--output-dir", str(tmp_path / "run")])
    tokenizer = module.load_tokenizer()
    module.PACKING = False
    rows, _ = module.prepare_data(args, tokenizer)
    masks = {tuple(row["input_ids"]): row["completion_mask"] for row in rows}
    module.PACKING = packing
    train_data, eval_data = module.prepare_data(args, tokenizer)
    assert len(train_data) < len(rows) if packing else len(train_data) == len(rows)

    from trl import SFTTrainer

    trainer = SFTTrainer(
        model=module.load_model("fp32"),
        args=module.training_config(args, True, "fp32"),
        train_dataset=train_data,
        eval_dataset=eval_data,
        processing_class=tokenizer,
        peft_config=module.lora_config(),
    )
    assert trainer.train_dataset is train_data  # no pass of TRL's over the rows
    checked = 0
    for batch in trainer.get_train_dataloader():
        ids, labels = batch["input_ids"], batch["labels"]
        if packing:  # one row of concatenated examples; each restarts its positions at 0
            starts = (batch["position_ids"][0] == 0).nonzero().flatten().tolist()
            segments = [(0, a, b) for a, b in zip(starts, [*starts[1:], ids.shape[1]], strict=True)]
        else:
            segments = [(r, 0, int(batch["attention_mask"][r].sum())) for r in range(ids.shape[0])]
        for r, a, b in segments:
            piece = tuple(ids[r, a:b].tolist())
            if piece not in masks:  # padding at the end of a packed row
                assert set(labels[r, a:b].tolist()) == {-100}
                continue
            mask = masks[piece]
            expected = [t if m else -100 for t, m in zip(piece, mask, strict=True)]
            if packing:
                expected[0] = -100  # TRL's collator: no label where a packed example starts
            assert labels[r, a:b].tolist() == expected
            assert 0 in mask and 1 in mask  # both prompt and response tokens were checked
            checked += 1
        if not packing:
            assert (labels[batch["attention_mask"] == 0] == -100).all()
    assert checked == len(train_data) if not packing else checked == len(rows)
