"""Section 5: peak memory (RSS) of the generated program with LoRA against QLoRA (nf4)."""

from __future__ import annotations

from benchlib import PY, log, median, run_child
from throughput import training_run


def bench_memory(results: dict, p: dict) -> None:
    imports = {}
    for label, code in (
        ("torch", "import torch"),
        ("torch + bitsandbytes", "import torch, bitsandbytes"),
    ):
        imports[label] = median([run_child([PY, "-c", code])["maxrss_mb"] for _ in range(2)])
    log("5. memory: QLoRA (nf4) run of the generated program")
    q = training_run("generated", "qlora", 0, p)
    lora = [
        r
        for r in results.get("throughput_runs", [])
        if r["kind"] == "generated" and r["mode"] == "nopack" and not r["whatif_sampling"]
    ]
    if not lora:
        log("5. memory: LoRA run of the generated program")
        lora = [training_run("generated", "nopack", 0, p)]
    results["memory"] = {
        "qlora": q,
        "lora_runs": [
            {k: r[k] for k in ("name", "maxrss_mb", "tokens_per_s", "model_storage_mb", "wall_s")}
            for r in lora
        ],
        "lora_maxrss_mb": median([r["maxrss_mb"] for r in lora]),
        "lora_tokens_per_s": median([r["tokens_per_s"] for r in lora]),
        "lora_model_storage_mb": lora[0]["model_storage_mb"],
        "lora_cmd": lora[0]["cmd"],
        "trl_import_maxrss_mb": results.get("compile", {}).get("trl_import_maxrss_mb"),
        "import_maxrss_mb": imports,
    }
