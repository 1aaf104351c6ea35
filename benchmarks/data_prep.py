"""Section 4: data preparation time of the generated program (its own processes against all
cores), and TRL's passes over the rows it prepared.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess

from benchlib import (
    BENCH,
    CACHE,
    DATA,
    PY,
    ROOT,
    base_env,
    fresh_datasets_cache,
    log,
    median,
    program,
    rel,
    run_child,
)

IMPORTS_OF_DRY_RUN = "import datasets, torch, accelerate; from transformers import AutoTokenizer"


def bench_prep(results: dict, p: dict) -> None:
    cores = (
        len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    )
    # 0: keep the program's own DATASET_NUM_PROC and its 2,000-row rule
    variants = [("as_generated", 0, False), (f"all_cores_{cores}", cores, True)]
    configs = {
        "as_generated": "lora",
        f"all_cores_{cores}": "lora",
        "as_generated_packing": "lora_packing",
    }
    runs = []
    for rep in range(p["prep_reps"]):
        for label, procs, force in variants + [("as_generated_packing", 0, False)]:
            log(f"4. data preparation: {label} rep {rep + 1}/{p['prep_reps']}")
            metrics_path = CACHE / "metrics" / f"prep_{label}_{rep}.json"
            cmd = [
                PY,
                str(BENCH / "harness.py"),
                "prep",
                "--metrics",
                str(metrics_path),
                "--program",
                str(program(configs[label])),
                "--dataset",
                rel(DATA),
                "--num-proc",
                str(procs),
            ]
            if force:
                cmd.append("--force-num-proc")
            child = run_child(
                cmd,
                env=base_env(HF_DATASETS_CACHE=fresh_datasets_cache("prep")),
                log_name=f"prep_{label}_{rep}",
            )
            m = json.loads(metrics_path.read_text())
            runs.append(
                {"label": label, "num_proc": procs, "cmd": cmd, "wall_s": child["wall_s"], **m}
            )
    walls, imports = [], []
    for rep in range(p["dry_runs"]):
        log(f"4. data preparation: --dry-run {rep + 1}/{p['dry_runs']}")
        cmd = [PY, str(program("lora")), "--dataset", rel(DATA), "--dry-run"]
        walls.append(
            run_child(
                cmd,
                env=base_env(HF_DATASETS_CACHE=fresh_datasets_cache("dry")),
                log_name=f"dry_run_{rep}",
            )["wall_s"]
        )
        # what the dry run imports before it touches the data
        imports.append(run_child([PY, "-c", IMPORTS_OF_DRY_RUN])["wall_s"])
    shutil.rmtree(CACHE / "hf", ignore_errors=True)
    summary = {}
    for label, procs, force in variants + [("as_generated_packing", 0, False)]:
        group = [r for r in runs if r["label"] == label]
        program_procs = group[0][
            "num_proc"
        ]  # DATASET_NUM_PROC in the run (the program's own for "as generated")
        rows = group[0]["rows"]
        summary[label] = {
            "num_proc": program_procs,
            "tokenize_procs": procs if force else (program_procs if rows >= 2000 else 1),
            "prepare_data_s": median([r["prepare_data_s"] for r in group]),
            "open_dataset_s": median([r["phases_s"].get("open_dataset", 0.0) for r in group]),
            "check_data_s": median([r["phases_s"].get("check_data", 0.0) for r in group]),
            "tokenize_s": median([r["phases_s"].get("tokenize", 0.0) for r in group]),
            "trl_prepare_dataset_s": median([r["trl_prepare_dataset_s"] for r in group]),
            "load_tokenizer_s": median([r["load_tokenizer_s"] for r in group]),
            "trl_passes_s": {
                name: median([r["trl_passes_s"].get(name, 0.0) for r in group])
                for name in group[0]["trl_passes_s"]
            },
            "rows": group[0]["rows"],
            "cmd": group[0]["cmd"],
        }
    summary["dry_run"] = {
        "wall_s": median(walls),
        "import_s": median(imports),
        "minus_import_s": median([a - b for a, b in zip(walls, imports, strict=True)]),
        "cmd": [PY, rel(program("lora")), "--dataset", rel(DATA), "--dry-run"],
    }
    summary["cores"] = cores
    summary["runs"] = runs
    text = program("lora").read_text(encoding="utf-8")
    line = re.search(r"^DATASET_NUM_PROC = (.*?)(\s+#.*)?$", text, re.M)
    threshold = re.search(r"len\(dataset\) >= ([\d_]+)", text)
    summary["num_proc_rule"] = line.group(1) if line else "?"
    summary["num_proc_threshold"] = int(threshold.group(1).replace("_", "")) if threshold else None
    summary["trl_gets_num_proc"] = "dataset_num_proc=DATASET_NUM_PROC" in text
    results["prep"] = summary


def bench_tokenization(results: dict) -> None:
    """How many rows the generated program tokenizes differently from the prompt tokenized whole."""
    code = r"""
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("g", sys.argv[1]); g = importlib.util.module_from_spec(spec)
spec.loader.exec_module(g)
tok = g.load_tokenizer()
rows = json.load(open(sys.argv[2], encoding="utf-8"))
adds_bos = tok.bos_token is not None and tok("a")["input_ids"][:1] == [tok.bos_token_id]
fmt = "prompt_response"
differ = extra = 0
for row in rows:
    batch = {k: [row[k]] for k in row}
    ids = g.tokenize_batch(batch, fmt, tok, adds_bos)["input_ids"][0]
    prompt = "".join(text for text, loss in g.row_segments(row, fmt, tok, adds_bos) if not loss)
    whole = tok(prompt + row[g.RESPONSE_COLUMN] + tok.eos_token, add_special_tokens=False)["input_ids"][:g.MAX_SEQ_LENGTH]
    if ids != whole:
        differ += 1
        extra += len(whole) - len(ids)
print(json.dumps({"rows": len(rows), "rows_differ": differ, "token_delta": extra}))
"""
    r = subprocess.run(
        [PY, "-c", code, str(program("lora")), str(DATA)],
        cwd=ROOT,
        env=base_env(),
        capture_output=True,
        text=True,
        check=True,
    )
    results["tokenization"] = json.loads(r.stdout.strip().splitlines()[-1])
