"""GPU check: mccompile's generated programs against hand-written TRL on one (or two) NVIDIA GPUs.

Prepared for a machine lent for a few minutes (one H200). In at most --time-limit seconds
(default 480) it

1. builds a ~0.94B-parameter Llama offline (random bf16 weights; hidden 2048, 16 layers,
   intermediate 5504, vocab 32,000, a byte-level BPE trained on the data) with
   benchmarks/make_model.py --preset 1b: no hub;
2. writes one config per variant and compiles it with mccompile (bf16, LoRA r 16 / alpha 32 on all
   linear layers, batch 8, max_seq_length 1024, adamw_torch): bf16 LoRA, QLoRA nf4, packing with
   attn_implementation: sdpa and with it left null (the program then takes a variable-length
   kernel where the GPU has one: flash-attn 3 / 2, else a kernels hub build if cached, since the
   GPU host may be offline; its start-up line says which, and the hand-written pair runs with the
   same kernel, or is skipped), FSDP and DeepSpeed ZeRO-3 (2 processes where 2 GPUs exist, else one
   process under the same launch config), and gradient checkpointing;
3. runs each generated train.py, and benchmarks/handwritten_sft.py with the same settings for
   the LoRA, QLoRA and packing variants, under benchmarks/harness.py for --steps optimizer steps;
   records real tokens/s (after --warmup steps), MFU, steps/s, torch.cuda.max_memory_allocated
   against the resource plan's estimate (mccompile/resources.py, at the longest batch trained
   and at max_seq_length), max RSS and wall time; for FSDP and ZeRO-3, whether the final model
   the run saved loads;
4. writes OUT/gpu_check.json and OUT/gpu_check.md after every run (a run cut short by the time
   limit still leaves the ones before it) and, with --benchmarks FILE, its section of
   BENCHMARKS.md.

A variant that would not fit in the time left is skipped and says so; a run that overruns is
killed. MFU = model FLOPs per real token (6·N + 12·L·h·s, Chowdhery et al. 2022, PaLM, appendix
B; recomputation not counted) × real tokens/s / the GPU's dense bf16 peak.

    python benchmarks/gpu_check.py --out OUT [--time-limit 480] [--steps 20] [--warmup 3]
                                   [--data FILE.json] [--work /tmp/mccompile-gpu-check]
                                   [--benchmarks BENCHMARKS.md]
    python benchmarks/gpu_check.py --out OUT --dry-run     # no GPU: every config, build, command, estimate

``--dry-run`` runs nothing on a GPU: the tokenizer and the model's config.json (no weights), every
variant's config and bundle, the hand-written script's command line, the plan's estimate per
variant, and a ``train.py --dry-run`` of the first variant on the data (CPU, data only).

Data: --data, else ../shared/data/alpaca_{en,zh}_demo.json beside the repository, else
benchmarks/.cache/alpaca_en_zh.json, else 2,000 synthetic Alpaca-format rows.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import importlib.util
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks"
STARTED = time.monotonic()
MARK_BEGIN = "<!-- section: gpu-check (benchmarks/gpu_check.py) -->"
MARK_END = "<!-- end section: gpu-check -->"

# dense bf16 peak FLOP/s by device name (no sparsity), for MFU
PEAK_BF16 = {
    "H200": 989.4e12,
    "H100": 989.4e12,
    "H800": 989.4e12,
    "B200": 2250e12,
    "A100": 312e12,
    "L40S": 362e12,
    "L4": 121e12,
    "A10G": 70e12,
    "RTX 4090": 165e12,
}


def variant(
    name,
    *,
    program="generated",
    quantization=None,
    gc=False,
    packing=False,
    attn=None,
    strategy="none",
    processes=1,
    load_check=False,
    pair=None,
):
    return {
        "name": name,
        "program": program,
        "quantization": quantization,
        "gradient_checkpointing": gc,
        "packing": packing,
        "attn": attn,
        "strategy": strategy,
        "processes": processes,
        "load_check": load_check,
        "pair": pair,
    }


# in priority order: the time limit skips from the end. attn "varlen" = attn_implementation
# left null: the generated program takes a variable-length kernel where the GPU has one, and its
# hand-written pair runs with the kernel the program took (skipped when it took none)
VARIANTS = [
    variant("lora_bf16"),
    variant("lora_bf16_trl", program="handwritten", pair="lora_bf16"),
    variant("qlora_nf4", quantization="nf4"),
    variant("qlora_nf4_trl", program="handwritten", quantization="nf4", pair="qlora_nf4"),
    variant("packed_sdpa", packing=True, attn="sdpa"),
    variant(
        "packed_sdpa_trl", program="handwritten", packing=True, attn="sdpa", pair="packed_sdpa"
    ),
    variant("packed_varlen", packing=True, attn="varlen"),
    variant(
        "packed_varlen_trl",
        program="handwritten",
        packing=True,
        attn="varlen",
        pair="packed_varlen",
    ),
    variant("fsdp", strategy="fsdp", processes=2, load_check=True),
    variant("zero3", strategy="deepspeed", processes=2, load_check=True),
    variant("lora_bf16_gc", gc=True),
]

CONFIG = """\
# gpu_check.py variant {name}: generated for this run, do not edit.
components:
  - id: gpu-trainer
    type: model-trainer
    task: sft
    model: {model}
{attn}    dataset: ${{input.dataset}}
    prompt_column: instruction
    response_column: output
    max_seq_length: {max_length}
    packing: {packing}
    peft_adapter: lora
    lora_r: 16
    lora_alpha: 32
    lora_dropout: 0.05
    lora_target_modules: all-linear
{quantization}    learning_rate: 1e-4
    num_epochs: 1
    per_device_train_batch_size: {batch_size}
    gradient_accumulation_steps: 1
    optimizer: adamw_torch
    gradient_checkpointing: {gc}
    bf16: true
    seed: 42
    logging_steps: 10
    save_steps: 100000
    output_dir: {output_dir}
{distributed}"""

LOAD_CHECK = """\
import json, sys
from peft import AutoPeftModelForCausalLM
model = AutoPeftModelForCausalLM.from_pretrained(sys.argv[1])
n = sum(p.numel() for p in model.parameters())
print(json.dumps({"loaded": True, "parameters": n}))
"""


def varlen_kernel() -> tuple[str | None, str]:
    """The variable-length kernel the generated program will likely choose here (its own
    VARLEN_KERNELS order, without loading anything), or None and why; the program's
    start-up line says what it really took (read from the run's log)."""
    try:
        import torch
    except ImportError:
        return None, "torch is not installed"
    if not torch.cuda.is_available():
        return None, "no CUDA GPU"
    major = torch.cuda.get_device_capability()[0]
    if major == 9 and importlib.util.find_spec("flash_attn_interface") is not None:
        return "flash_attention_3", "flash_attn_interface (flash-attn 3) is installed"
    if major >= 8 and importlib.util.find_spec("flash_attn") is not None:
        return "flash_attention_2", "flash_attn is installed"
    if major >= 8 and importlib.util.find_spec("kernels") is not None:
        return "kernels-community/flash-attn2", "a kernels hub build, if cached or reachable"
    return None, "neither flash_attn nor kernels is installed"


def program_attention(log_path: Path) -> tuple[str | None, str]:
    """The attention a generated program took for packed rows, from its start-up line."""
    try:
        text = log_path.read_text(errors="replace")
    except OSError:
        return None, "no log"
    for line in text.splitlines():
        if line.startswith("[setup] attention: "):
            name = line.split(": ", 1)[1].split(",")[0].split(" ")[0]
            return (name if ", variable-length:" in line else None), line
    return None, "the program said nothing about attention"


def elapsed() -> float:
    return time.monotonic() - STARTED


def log(message: str) -> None:
    print(f"[gpu_check {elapsed():6.1f}s] {message}", flush=True)


def versions() -> dict:
    out: dict = {"python": sys.version.split()[0]}
    for name in (
        "torch",
        "transformers",
        "trl",
        "datasets",
        "peft",
        "accelerate",
        "bitsandbytes",
        "tokenizers",
        "black",
        "jinja2",
        "jsonschema",
        "yaml",
    ):
        try:
            importlib.import_module(name)
            out[name] = importlib.metadata.version({"yaml": "pyyaml"}.get(name, name))
        except Exception as error:
            out[name] = f"MISSING ({type(error).__name__}: {error})"[:200]
    try:
        import torch

        out["cuda_available"] = torch.cuda.is_available()
        out["gpus"] = torch.cuda.device_count()
        out["gpu"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
        out["cuda"] = torch.version.cuda
    except Exception:
        out["cuda_available"] = False
        out["gpus"] = 0
    return out


def find_data(explicit: str | None, work: Path) -> tuple[Path, str]:
    if explicit:
        return Path(explicit).resolve(), "given"
    shared = ROOT.parent / "shared" / "data"
    sources = [shared / "alpaca_en_demo.json", shared / "alpaca_zh_demo.json"]
    target = work / "alpaca_en_zh.json"
    if all(p.is_file() for p in sources):
        rows = []
        for p in sources:
            rows += json.loads(p.read_text(encoding="utf-8"))
        target.write_text(json.dumps(rows, ensure_ascii=False), encoding="utf-8")
        return target, "alpaca_en_demo.json + alpaca_zh_demo.json"
    cached = BENCH / ".cache" / "alpaca_en_zh.json"
    if cached.is_file():
        return cached, str(cached.relative_to(ROOT))
    # synthetic Alpaca rows with a spread of lengths like the demo data's (tens to hundreds of tokens)
    sys.path.insert(0, str(ROOT / "examples"))
    from make_tiny_model import _corpus  # type: ignore[import-not-found]

    sentences = _corpus(6000, seed=1)
    rng = random.Random(0)
    rows = []
    for _ in range(2000):
        instruction = " ".join(rng.choice(sentences) for _ in range(rng.randint(1, 3)))
        output = " ".join(
            rng.choice(sentences) for _ in range(max(1, int(rng.lognormvariate(1.5, 0.9))))
        )
        rows.append({"instruction": instruction, "input": "", "output": output})
    target.write_text(json.dumps(rows), encoding="utf-8")
    return target, "synthetic (2,000 rows)"


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        HF_HUB_OFFLINE="1",
        HF_DATASETS_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        TOKENIZERS_PARALLELISM="false",
        PYTHONUNBUFFERED="1",
        HF_DATASETS_DISABLE_PROGRESS_BARS="1",
    )
    env["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(ROOT), env.get("PYTHONPATH")])
    )  # mccompile from here
    return env


def run(cmd: list[str], log_path: Path, timeout: float, env: dict[str, str] | None = None) -> dict:
    """Run in its own process group; kill the group when it overruns. Returns wall, rc, max RSS."""
    started = time.monotonic()
    with open(log_path, "w") as out:
        process = subprocess.Popen(
            cmd,
            cwd=ROOT,
            env=env or child_env(),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        timed_out = False
        while True:
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() - started > timeout:
                timed_out = True
                os.killpg(process.pid, signal.SIGKILL)
                pid, status, usage = os.wait4(process.pid, 0)
                break
            time.sleep(0.05)
    # children of accelerate launch are waited for by it; RUSAGE_CHILDREN covers every waited descendant
    return {
        "rc": os.waitstatus_to_exitcode(status),
        "timed_out": timed_out,
        "wall_s": time.monotonic() - started,
        "maxrss_mb": usage.ru_maxrss / 1024,
        "log": str(log_path),
    }


def tail(path: Path, n: int = 2500) -> str:
    try:
        return path.read_text(errors="replace")[-n:]
    except OSError:
        return ""


def plan_estimate(config: Path, processes: int, seqs: list[int]) -> dict:
    """The resource plan's memory per GPU for the compiled config, at each sequence length."""
    from dataclasses import replace

    from mccompile.frontend import compile_config
    from mccompile.plan import resources as res

    ir_config, _ = compile_config(str(config), str(config))
    job = ir_config.workflows[0].trainer
    setup, _ = res.setup_from_job(job)
    model = str(job.fields["model"].value)
    arch = res.find_architecture(model)
    if isinstance(arch, str):
        return {"unknown": arch}
    out: dict = {"architecture": arch.source, "by_seq": {}}
    for seq in seqs:
        mp = res.estimate_memory(arch, replace(setup, seq=seq), processes)
        out["by_seq"][str(seq)] = {
            "allocated_gib": mp.allocated / 2**30,
            "total_gib": mp.total / 2**30,
            "parts_gib": {p.name: p.bytes / 2**30 for p in mp.parts},
        }
    mods = res.modules(arch)
    out["parameters"] = res.count_parameters(mods)
    out["layers"], out["hidden"] = arch.num_hidden_layers, arch.hidden_size
    return out


def peak_flops(device: str | None) -> float | None:
    for name, flops in PEAK_BF16.items():
        if device and name in device:
            return flops
    return None


def summarize(metrics_path: Path, warmup: int, world: int, batch: int) -> dict:
    m = json.loads(metrics_path.read_text())
    steps = m["steps"]
    if len(steps) <= warmup:
        return {"status": f"only {len(steps)} steps recorded"}
    first = steps[warmup - 1] if warmup else {"t": m["t_train_begin"], "real": 0, "processed": 0}
    last = steps[-1]
    seconds = last["t"] - first["t"]
    real = last["real"] - first["real"]
    processed = last["processed"] - first["processed"]
    longest = 0
    prev = 0
    for st in steps:  # one micro-batch per step (no accumulation): its padded length
        longest = max(longest, (st["processed"] - prev) // max(batch, 1))
        prev = st["processed"]
    for rank in range(1, world):  # the other processes' own batches
        other = Path(f"{metrics_path}.rank{rank}")
        if other.is_file():
            o = json.loads(other.read_text())["steps"]
            if len(o) == len(steps):
                real += o[-1]["real"] - (o[warmup - 1]["real"] if warmup else 0)
                processed += o[-1]["processed"] - (o[warmup - 1]["processed"] if warmup else 0)
    out = {
        "measured_steps": len(steps) - warmup,
        "tokens_per_s": real / seconds,
        "processed_tokens_per_s": processed / seconds,
        "real_share": real / processed if processed else None,
        "steps_per_s": (len(steps) - warmup) / seconds,
        "mean_padded_length": processed / max(1, (len(steps) - warmup) * batch * world),
        "longest_batch_length": longest,
        "start_to_first_step_s": m.get("t_train_begin"),
        "trl_prepare_dataset_s": m.get("prepare_dataset_s"),
        "model_storage_gib": m.get("model_storage_bytes", 0) / 2**30,
        "trainable_parameters": m.get("trainable_parameters"),
    }
    if "cuda_max_memory_allocated" in m:
        out["cuda_max_memory_allocated_gib"] = m["cuda_max_memory_allocated"] / 2**30
        out["cuda_max_memory_reserved_gib"] = m["cuda_max_memory_reserved"] / 2**30
    return out


def add_mfu(v: dict, estimate: dict, device: str | None) -> None:
    peak = peak_flops(device)
    if not peak or "tokens_per_s" not in v or "parameters" not in estimate:
        return
    s = v.get("mean_padded_length") or 0
    per_token = 6 * estimate["parameters"] + 12 * estimate["layers"] * estimate["hidden"] * s
    v["mfu"] = per_token * v["tokens_per_s"] / (peak * v["processes"])


def num(v: dict, key: str, fmt: str) -> str:
    value = v.get(key)
    return format(value, fmt) if isinstance(value, (int, float)) else ""


def table(results: dict) -> list[str]:
    lines = [
        "| variant | program | quantization | packing / attention | strategy × processes | status"
        " | real tokens/s | vs TRL | MFU | steps/s | max_memory_allocated GiB | plan GiB (longest"
        " batch / max length) | final model loads | wall s |",
        "| --- | --- | --- | --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: |",
    ]
    by_name = {v["name"]: v for v in results["variants"]}
    for v in results["variants"]:
        est = v.get("estimate", {}).get("by_seq", {})
        plan = " / ".join(f"{e['allocated_gib']:.2f}" for e in est.values())
        ratio = ""
        if v["program"] == "generated":
            trl = next((o for o in results["variants"] if o.get("pair") == v["name"]), None)
            if trl and v.get("tokens_per_s") and trl.get("tokens_per_s"):
                ratio = f"{v['tokens_per_s'] / trl['tokens_per_s']:.2f}×"
        elif v.get("pair") in by_name:
            ratio = "baseline"
        pack = f"{'packed' if v['packing'] else 'padded'}, {v.get('attn_used') or v['attn'] or 'default'}"
        loads = {True: "yes", False: "**no**", None: ""}[v.get("loads")] if v["load_check"] else ""
        mfu = f"{100 * v['mfu']:.1f}%" if isinstance(v.get("mfu"), float) else ""
        lines.append(
            f"| {v['name']} | {v['program']} | {v['quantization'] or 'bf16'} | {pack} |"
            f" {v['strategy']} × {v['processes']} | {v['status']} | {num(v, 'tokens_per_s', '.0f')}"
            f" | {ratio} | {mfu} | {num(v, 'steps_per_s', '.2f')} |"
            f" {num(v, 'cuda_max_memory_allocated_gib', '.2f')} | {plan} | {loads} |"
            f" {num(v, 'wall_s', '.1f')} |"
        )
    return lines


def write_results(out: Path, results: dict) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "gpu_check.json").write_text(json.dumps(results, indent=1))
    model = results.get("model", {})
    lines = [
        "# gpu_check results",
        "",
        f"{results['status']}; {results.get('device') or 'no GPU'} × {results['versions'].get('gpus', 0)};"
        f" elapsed {results['elapsed_s']:.0f} s of {results['time_limit_s']:.0f} s; model"
        f" {model.get('parameters', 0) / 1e6:,.1f}M parameters; data {results.get('data_source')};"
        f" {results['steps']} steps ({results['warmup']} warm-up), batch {results['batch_size']},"
        f" max_seq_length {results['max_length']}; variable-length kernel: {results.get('varlen')}.",
        "",
        *table(results),
        "",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in results["versions"].items()),
        "",
    ]
    for v in results["variants"]:
        if v.get("command"):
            lines.append(f"- {v['name']}: `{v['command']}`")
        if v.get("reason"):
            lines.append(f"  - {v['name']}: {v['reason'][:600]}")
    (out / "gpu_check.md").write_text("\n".join(lines) + "\n")


def write_benchmarks(path: Path, results: dict, argv: list[str]) -> None:
    """This script's section of BENCHMARKS.md (replaced between its markers, else appended)."""
    dry = results["dry_run"]
    lines = [MARK_BEGIN, "## GPU check: generated programs against hand-written TRL on a GPU", ""]
    if dry:
        lines += [
            "**Not run on a GPU**: none was available where this was written. The prepared"
            " script was checked with `--dry-run` (every variant's config compiled, the"
            " commands and the plan's estimates below; the first bundle's `train.py --dry-run`"
            f" on the data: {'ok' if results.get('dry_run_check', {}).get('rc') == 0 else 'FAILED'})."
            " Measured columns are empty until it runs on a GPU.",
            "",
        ]
    lines += table(results)
    lines += [
        "",
        "Plan GiB: mccompile's estimate of `max_memory_allocated` (no CUDA context or allocator"
        " slack) at the longest batch the run trained (on a GPU run) and at max_seq_length"
        " (packed rows are full). MFU = (6·N + 12·L·h·s) × real tokens/s / dense bf16 peak.",
        "",
        f"Command: `python benchmarks/gpu_check.py {' '.join(argv)}`"
        f" ({results['elapsed_s']:.0f} s; {results.get('device') or 'no GPU'};"
        f" torch {results['versions'].get('torch')}).",
        MARK_END,
    ]
    text = "\n".join(lines) + "\n"
    old = path.read_text(encoding="utf-8") if path.exists() else "# Benchmarks\n"
    if MARK_BEGIN in old and MARK_END in old:
        head, rest = old.split(MARK_BEGIN, 1)
        after = rest.split(MARK_END, 1)[1].lstrip("\n")
        new = head + text + ("\n" + after if after else "")
    else:
        new = old.rstrip("\n") + "\n\n" + text
    path.write_text(new, encoding="utf-8")


def distributed_block(v: dict) -> str:
    if v["strategy"] == "fsdp":
        return f"    distributed:\n      strategy: fsdp\n      num_processes: {v['processes']}\n"
    if v["strategy"] == "deepspeed":
        return (
            "    distributed:\n      strategy: deepspeed\n      zero_stage: 3\n"
            f"      num_processes: {v['processes']}\n"
        )
    if v["processes"] > 1:
        return f"    distributed:\n      strategy: ddp\n      num_processes: {v['processes']}\n"
    return ""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", required=True, help="folder for gpu_check.json / gpu_check.md")
    parser.add_argument(
        "--time-limit", type=float, default=480.0, help="seconds for everything (default 480)"
    )
    parser.add_argument(
        "--steps", type=int, default=20, help="optimizer steps per run, warm-up included"
    )
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-length", type=int, default=1024)
    parser.add_argument(
        "--preset", default="1b", help="make_model.py preset (1b; tiny for a smoke test)"
    )
    parser.add_argument("--data", default=None)
    parser.add_argument(
        "--work", default="/tmp/mccompile-gpu-check", help="model, builds, logs (GBs)"
    )
    parser.add_argument("--variants", default=",".join(v["name"] for v in VARIANTS))
    parser.add_argument(
        "--benchmarks", default=None, metavar="FILE", help="write this script's section of FILE"
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="no GPU: configs, builds, commands, estimates"
    )
    parser.add_argument(
        "--allow-cpu",
        action="store_true",
        help="run without a GPU (to test this script: --preset tiny)",
    )
    args = parser.parse_args(argv)
    argv_shown = sys.argv[1:] if argv is None else argv

    out = Path(args.out).resolve()
    work = Path(args.work).resolve()
    shutil.rmtree(work / "runs", ignore_errors=True)
    for sub in ("configs", "build", "logs", "metrics", "runs", "hf"):
        (work / sub).mkdir(parents=True, exist_ok=True)
    info = versions()
    results: dict = {
        "status": "running",
        "dry_run": args.dry_run,
        "time_limit_s": args.time_limit,
        "elapsed_s": 0.0,
        "steps": args.steps,
        "warmup": args.warmup,
        "batch_size": args.batch_size,
        "max_length": args.max_length,
        "versions": info,
        "device": info.get("gpu"),
        "variants": [],
    }
    wanted = [dict(v) for v in VARIANTS if v["name"] in args.variants.split(",")]
    gpus = int(info.get("gpus") or 0)
    required = (
        "torch",
        "transformers",
        "trl",
        "datasets",
        "peft",
        "accelerate",
        "tokenizers",
        "black",
        "jinja2",
        "jsonschema",
        "yaml",
    )
    missing = [k for k in required if str(info.get(k, "")).startswith("MISSING")]
    if missing or (not args.dry_run and not args.allow_cpu and not info.get("cuda_available")):
        results["status"] = (
            ("missing packages: " + ", ".join(missing))
            if missing
            else "no CUDA GPU (use --dry-run)"
        )
        results["elapsed_s"] = elapsed()
        write_results(out, results)
        log(results["status"])
        return 2

    # 1. data and model
    data, source = find_data(args.data, work)
    results["data"], results["data_source"] = str(data), source
    model_dir = work / f"model-{args.preset}"
    log(f"data: {source}; building the {args.preset} model in {model_dir}")
    sys.path.insert(0, str(BENCH))
    from make_model import make_model  # type: ignore[import-not-found]

    info_file = model_dir / "bench_model_info.json"
    have = json.loads(info_file.read_text()) if info_file.is_file() else {}
    if (
        not have
        or (have.get("weights") is False and not args.dry_run)
        or have.get("preset") != args.preset
    ):
        shutil.rmtree(model_dir, ignore_errors=True)
        have = make_model(
            str(model_dir),
            args.preset,
            [str(data)],
            dtype="bfloat16",
            weights=not args.dry_run,
            device="cuda" if info.get("cuda_available") else "cpu",
        )
    results["model"] = have
    log(f"model: {have['parameters'] / 1e6:,.1f}M parameters ({elapsed():.0f} s)")
    kernel, why = varlen_kernel()
    results["varlen"] = kernel or f"none ({why})"

    # 2. configs, builds, commands, estimates
    env = child_env()
    configs: dict[str, Path] = {}
    for v in wanted:
        results["variants"].append(v)
        if v["strategy"] != "none":
            v["processes"] = 2 if gpus >= 2 else 1  # issue: 2 processes where 2 GPUs exist
        attn = v["attn"]
        if attn == "varlen":
            if v["program"] == "generated":
                attn = None  # the program's own choice
                v["attn_used"] = f"the program's choice (expected: {kernel or 'none: ' + why})"
            else:
                attn = kernel or "flash_attention_2"  # replaced by the program's choice at run time
                v["attn_used"] = "the generated program's choice"
        else:
            v["attn_used"] = attn
        if v["quantization"] and str(info.get("bitsandbytes", "")).startswith("MISSING"):
            v["skip"] = "bitsandbytes is not installed"
        if v["strategy"] == "deepspeed" and importlib.util.find_spec("deepspeed") is None:
            v["skip"] = "deepspeed is not installed"
        run_dir = work / "runs" / v["name"]
        metrics = work / "metrics" / f"{v['name']}.json"
        harness = [str(BENCH / "harness.py"), "train", "--metrics", str(metrics), "--"]
        if v["program"] == "handwritten":
            paired = configs.get(v["pair"] or "")
            program_args = [
                str(BENCH / "handwritten_sft.py"),
                "--model",
                str(model_dir),
                "--dataset",
                str(data),
                "--max-steps",
                str(args.steps),
                "--output-dir",
                str(run_dir),
                "--max-length",
                str(args.max_length),
                "--batch-size",
                str(args.batch_size),
                "--bf16",
                "--target-modules",
                "all-linear",
                *(["--packing"] if v["packing"] else []),
                *(["--quantization", v["quantization"]] if v["quantization"] else []),
                *(["--gradient-checkpointing"] if v["gradient_checkpointing"] else []),
                *(["--attn-implementation", attn] if attn else []),
            ]
            v["status"] = "ready"
            if paired is not None:
                v["config"] = str(paired)
        else:
            config = work / "configs" / f"{v['name']}.yaml"
            config.write_text(
                CONFIG.format(
                    name=v["name"],
                    model=model_dir,
                    attn=f"    attn_implementation: {attn}\n" if attn else "",
                    max_length=args.max_length,
                    packing=str(v["packing"]).lower(),
                    quantization=(
                        f"    quantization: {v['quantization']}\n"
                        "    bnb_4bit_compute_dtype: bfloat16\n"
                        if v["quantization"]
                        else ""
                    ),
                    batch_size=args.batch_size,
                    gc=str(v["gradient_checkpointing"]).lower(),
                    output_dir=run_dir,
                    distributed=distributed_block(v),
                )
            )
            configs[v["name"]] = config
            v["config"] = str(config)
            build = work / "build" / v["name"]
            r = run(
                [
                    sys.executable,
                    "-m",
                    "mccompile",
                    "build",
                    str(config),
                    "-o",
                    str(build),
                    "--force",
                ],
                work / "logs" / f"build_{v['name']}.log",
                timeout=120,
                env=env,
            )
            if r["rc"] != 0:
                v.update(status="build failed", reason=tail(Path(r["log"]), 600))
                continue
            v["bundle"] = str(build / "gpu-trainer")
            v["status"] = "built"
            program_args = [
                str(build / "gpu-trainer" / "train.py"),
                "--dataset",
                str(data),
                "--max-steps",
                str(args.steps),
                "--output-dir",
                str(run_dir),
            ]
        if v["strategy"] != "none" or v["processes"] > 1:
            launch = Path(v["bundle"]) / "accelerate_config.yaml"
            cmd = [
                sys.executable,
                "-m",
                "accelerate.commands.launch",
                "--config_file",
                str(launch),
                "--num_processes",
                str(v["processes"]),
                *harness,
                *program_args,
            ]
        else:
            cmd = [sys.executable, *harness, *program_args]
        v["cmd"] = cmd
        v["command"] = " ".join(cmd)
        if v.get("config"):
            try:
                v["estimate"] = plan_estimate(Path(v["config"]), v["processes"], [args.max_length])
            except Exception as error:  # the check must go on; the report says what failed
                v["estimate"] = {"unknown": f"{type(error).__name__}: {error}"}
        est = v.get("estimate", {}).get("by_seq", {}).get(str(args.max_length))
        log(
            f"{v['name']}: {v['status']}"
            + (
                f", plan {est['allocated_gib']:.2f} GiB allocated at {args.max_length}"
                if est
                else ""
            )
            + (f", will skip: {v['skip']}" if v.get("skip") else "")
            + f"\n    {v['command']}"
        )
    write_results(out, results)

    # 3. runs
    estimate = 150.0  # seconds for a first run of a 1B model: start-up, loading, the steps
    for v in results["variants"]:
        if v["status"] not in ("built", "ready") or args.dry_run:
            continue
        if v.get("skip"):
            v.update(status="skipped", reason=v["skip"])
            continue
        name = v["name"]
        if v["attn"] == "varlen" and v["program"] == "handwritten":
            took = next((o for o in results["variants"] if o["name"] == v["pair"]), {})
            if not took.get("varlen_kernel"):
                v.update(status="skipped", reason="the generated program took no variable-length kernel")
                continue
            at = v["cmd"].index("--attn-implementation") + 1
            v["cmd"][at] = v["attn_used"] = took["varlen_kernel"]
            v["command"] = " ".join(v["cmd"])
        metrics = work / "metrics" / f"{name}.json"
        for old in work.glob(f"metrics/{name}.json*"):
            old.unlink()
        left = args.time_limit - elapsed() - 5
        if left < min(estimate, 90):
            v.update(
                status="skipped",
                reason=f"time limit: {left:.0f} s left, a run needs ~{estimate:.0f} s",
            )
            continue
        log(f"run {name} (up to {left:.0f} s)")
        env_run = dict(env, HF_DATASETS_CACHE=str(work / "hf" / name))
        r = run(v["cmd"], work / "logs" / f"run_{name}.log", timeout=left, env=env_run)
        v.update(wall_s=r["wall_s"], maxrss_gib=r["maxrss_mb"] / 1024, rc=r["rc"])
        if v["attn"] == "varlen" and v["program"] == "generated":
            v["varlen_kernel"], line = program_attention(Path(r["log"]))
            v["attn_used"] = v["varlen_kernel"] or f"sdpa ({line})"
        if r["timed_out"]:
            v.update(status="killed at the time limit", reason=tail(Path(r["log"]), 400))
        elif r["rc"] != 0:
            v.update(status=f"failed (exit {r['rc']})", reason=tail(Path(r["log"]), 1500))
        else:
            try:
                v.update(summarize(metrics, args.warmup, v["processes"], args.batch_size))
                v["status"] = "ok"
            except (OSError, KeyError, ValueError) as error:
                v.update(status="no metrics", reason=repr(error))
        if v.get("config") and v.get("longest_batch_length"):
            seqs = sorted({int(v["longest_batch_length"]), args.max_length})
            try:
                v["estimate"] = plan_estimate(Path(v["config"]), v["processes"], seqs)
            except Exception as error:
                v["estimate"] = {"unknown": f"{type(error).__name__}: {error}"}
            add_mfu(v, v["estimate"], info.get("gpu"))
        if v["load_check"] and v["status"] == "ok":
            run_dir = work / "runs" / name
            lr = run(
                [sys.executable, "-c", LOAD_CHECK, str(run_dir)],
                work / "logs" / f"load_{name}.log",
                timeout=max(30, left - r["wall_s"]),
                env=env,
            )
            v["loads"] = lr["rc"] == 0
            if lr["rc"] != 0:
                v["load_reason"] = tail(Path(lr["log"]), 800)
        estimate = max(estimate * 0.5, r["wall_s"] * 1.15)
        results["elapsed_s"] = elapsed()
        write_results(out, results)
        shutil.rmtree(work / "runs" / name, ignore_errors=True)

    # 4. --dry-run: check the first build against the data (tokenizer + data only, no weights)
    if args.dry_run:
        first = next((v for v in results["variants"] if v["status"] == "built"), None)
        if first:
            r = run(
                [
                    sys.executable,
                    str(Path(first["bundle"]) / "train.py"),
                    "--dataset",
                    str(data),
                    "--dry-run",
                ],
                work / "logs" / "dry_run.log",
                timeout=300,
                env=dict(env, HF_DATASETS_CACHE=str(work / "hf" / "dry")),
            )
            results["dry_run_check"] = {
                "program": str(Path(first["bundle"]) / "train.py"),
                "rc": r["rc"],
                "wall_s": r["wall_s"],
                "tail": tail(Path(r["log"]), 800),
            }
        for v in results["variants"]:
            if v["status"] in ("built", "ready"):
                v["status"] = "dry run: not run" + (
                    f" (on a GPU: {v['skip']})" if v.get("skip") else ""
                )
        ok = bool(first) and results["dry_run_check"]["rc"] == 0
        ok = ok and all(not v["status"].startswith("build failed") for v in results["variants"])
        results["status"] = "dry-run " + ("ok" if ok else "FAILED")
    else:
        results["status"] = "done"
    for v in results["variants"]:
        v.pop("cmd", None)
    results["elapsed_s"] = elapsed()
    write_results(out, results)
    if args.benchmarks:
        write_benchmarks(Path(args.benchmarks), results, argv_shown)
    log(f"{results['status']}: {out / 'gpu_check.md'}")
    return 0 if results["status"] in ("done", "dry-run ok") else 1


if __name__ == "__main__":
    sys.exit(main())
