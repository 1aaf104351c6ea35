"""Section 3: the share of real tokens in the generated program's collated batches (padding),
the attention scores computed against the useful ones, and a packed step against unpacked.
"""

from __future__ import annotations

import json
import shutil
import subprocess

from benchlib import (
    BENCH,
    CACHE,
    DATA,
    MODEL,
    PY,
    ROOT,
    base_env,
    fresh_datasets_cache,
    log,
    program,
    rel,
    run_child,
)
from throughput import other_sampling, program_sampling


def bench_padding(results: dict, p: dict) -> None:
    out = {}
    whatif = other_sampling(program_sampling("lora"))
    for label, name, extra in (
        ("nopack", "lora", []),
        ("pack", "lora_packing", []),
        ("nopack_whatif", "lora", ["--sampling", whatif]),
    ):
        log(f"3. padding: {label}")
        metrics_path = CACHE / "metrics" / f"padding_{label}.json"
        out_dir = CACHE / "runs" / f"padding_{label}"
        shutil.rmtree(out_dir, ignore_errors=True)
        cmd = [
            PY,
            str(BENCH / "harness.py"),
            "padding",
            "--metrics",
            str(metrics_path),
            *extra,
            "--",
            str(program(name)),
            "--dataset",
            rel(DATA),
            "--output-dir",
            rel(out_dir),
        ]
        run_child(
            cmd,
            env=base_env(HF_DATASETS_CACHE=fresh_datasets_cache(f"padding_{label}")),
            log_name=f"padding_{label}",
        )
        shutil.rmtree(CACHE / "hf" / f"padding_{label}", ignore_errors=True)
        m = json.loads(metrics_path.read_text())
        e = m["epoch"]
        row = {
            "cmd": cmd,
            "real": e["real"],
            "processed": e["processed"],
            "batches": e["micro_batches"],
            "real_share": e["real"] / e["processed"],
            "sampling": m["sampling"],
            "attention_useful_share": m["attention_scores"]["useful"]
            / m["attention_scores"]["computed"],
        }
        if "packed_rows" in m:
            row["packed_rows"] = m["packed_rows"]
            row["bin_fill"] = m["packed_row_tokens"] / (m["packed_rows"] * m["max_length"])
        out[label] = row
    # the same figure over the measured steps of the throughput runs
    for run in results.get("throughput_runs", []):
        if run["kind"] == "generated" and not run["whatif_sampling"]:
            out.setdefault("training_runs", {}).setdefault(run["mode"], []).append(
                run["real_tokens"] / run["processed_tokens"]
            )
    results["padding"] = out


PACKED_STEP_CODE = r"""
import json, sys, time, torch
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM
from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

batches, model_dir, pad = json.loads(sys.argv[1]), sys.argv[2], int(sys.argv[3])
torch.manual_seed(0)
model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
model = get_peft_model(model, LoraConfig(task_type="CAUSAL_LM", r=16, lora_alpha=32, lora_dropout=0.05,
                                         target_modules=["q_proj", "v_proj"]))
model.train()
packed = DataCollatorForLanguageModeling(pad_token_id=pad, padding_free=True)
padded = DataCollatorForLanguageModeling(pad_token_id=pad)

def examples(lengths):
    return [{"input_ids": torch.randint(10, 1000, (n,)).tolist()} for n in lengths]

as_run, grouped = [], []
for batch in batches:
    seqs = examples(batch["sequences"])
    # as the program runs it: TRL's padding-free collator, one flattened row (position_ids restart per sequence)
    as_run.append(packed([{"input_ids": sum((e["input_ids"] for e in seqs), []), "seq_lengths": batch["sequences"]}]))
    # the same sequences unpacked: sorted by length, 4 per padded batch (what group_by_length does)
    seqs.sort(key=lambda e: len(e["input_ids"]))
    grouped.append([padded(seqs[i:i + 4]) for i in range(0, len(seqs), 4)])

def step(batch):
    model(**batch, use_cache=False).loss.backward()

best = {"as_run_s": float("inf"), "grouped_s": float("inf")}
for _ in range(2):  # alternated, best of two
    t = time.perf_counter()
    for b in as_run:
        step(b)
    best["as_run_s"] = min(best["as_run_s"], time.perf_counter() - t)
    t = time.perf_counter()
    for group in grouped:
        for b in group:
            step(b)
    best["grouped_s"] = min(best["grouped_s"], time.perf_counter() - t)
best["tokens"] = sum(sum(b["sequences"]) for b in batches)
best["grouped_processed"] = sum(int(b["input_ids"].numel()) for g in grouped for b in g)
best["batches"] = len(batches)
print(json.dumps(best))
"""


def bench_attention(results: dict) -> None:
    """Forward + backward of the benchmark model on packed batches: as run (padding-free) and unpacked."""
    metrics = json.loads((CACHE / "metrics" / "padding_pack.json").read_text())
    batches = metrics["first_batches"][:3]
    pad_id = json.loads((MODEL / "config.json").read_text())["pad_token_id"]
    log("3. padding: packed step cost, as run against unpacked")
    r = subprocess.run(
        [PY, "-c", PACKED_STEP_CODE, json.dumps(batches), str(MODEL), str(pad_id)],
        cwd=ROOT,
        env=base_env(),
        capture_output=True,
        text=True,
        check=True,
    )
    results["padding"]["attention_bench"] = json.loads(r.stdout.strip().splitlines()[-1])
