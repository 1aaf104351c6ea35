"""GPU check: mccompile's generated programs on one (or two) NVIDIA GPUs, in a few minutes.

Prepared for a session that is lent a GPU machine for a few minutes (e.g. one H200). It

1. builds a ~0.94B-parameter Llama offline (random weights, bf16; hidden 2048, 16 layers,
   intermediate 5504, vocab 32,000 with a byte-level BPE trained on the data) with
   benchmarks/make_model.py --preset 1b;
2. writes one config per variant and compiles each with mccompile (bf16; LoRA r 16 on all linear
   layers; QLoRA nf4; gradient checkpointing off / on; and, with more than one GPU, a DDP run of
   2 processes);
3. runs each generated train.py under benchmarks/harness.py for --steps optimizer steps and
   records real tokens/s (after --warmup steps), steps/s, torch.cuda.max_memory_allocated,
   max RSS and wall time;
4. writes OUT/gpu_check.json and OUT/gpu_check.md after every run (a run cut short by the time
   limit still leaves the ones before it).

Everything is bounded by --time-limit (seconds, all of it included): a variant that would not
fit in what is left is skipped and reported as such, and a run that overruns is killed.

    python benchmarks/gpu_check.py --out OUT [--time-limit 480] [--steps 20] [--warmup 3]
                                   [--data FILE.json] [--work /tmp/mccompile-gpu-check]
    python benchmarks/gpu_check.py --out OUT --dry-run     # no GPU needed: configs, builds, data check

``--dry-run`` does the CPU-independent part: the tokenizer and the model's config.json (its
parameters counted on the meta device, no weights), the configs, the mccompile builds, and a
``train.py --dry-run`` of the first variant on the data; it writes the commands it would run.

Data: --data, else ../shared/data/alpaca_{en,zh}_demo.json beside the repository, else
benchmarks/.cache/alpaca_en_zh.json, else 2,000 synthetic Alpaca-format rows.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
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

VARIANTS = [
    # name, quantization, gradient checkpointing, processes
    ("lora_bf16", None, False, 1),
    ("lora_bf16_gc", None, True, 1),
    ("qlora_nf4", "nf4", False, 1),
    ("qlora_nf4_gc", "nf4", True, 1),
    ("lora_bf16_ddp2", None, False, 2),
]

CONFIG = """\
# gpu_check.py variant {name}: generated for this run, do not edit.
components:
  - id: gpu-trainer
    type: model-trainer
    task: sft
    model: {model}
    dataset: ${{input.dataset}}
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


def write_results(out: Path, results: dict) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "gpu_check.json").write_text(json.dumps(results, indent=1))
    lines = [
        "# gpu_check results",
        "",
        f"{results['status']}; {results.get('device') or 'no GPU'}; elapsed {results['elapsed_s']:.0f} s of"
        f" {results['time_limit_s']:.0f} s; model {results.get('model', {}).get('parameters', 0) / 1e6:,.1f}M parameters;"
        f" data {results.get('data_source')}; {results['steps']} steps ({results['warmup']} warm-up), batch"
        f" {results['batch_size']}, max_seq_length {results['max_length']}, packing {results['packing']}.",
        "",
        "| variant | quantization | grad. checkpointing | processes | status | real tokens/s | steps/s |"
        " max_memory_allocated GiB | max RSS GiB | start to first step s | wall s |",
        "| --- | --- | --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for v in results["variants"]:

        def num(key: str, fmt: str, v: dict = v) -> str:
            value = v.get(key)
            return format(value, fmt) if isinstance(value, (int, float)) else ""

        lines.append(
            f"| {v['name']} | {v['quantization'] or 'none (bf16)'} | {v['gradient_checkpointing']} | {v['processes']} |"
            f" {v['status']} | {num('tokens_per_s', '.0f')} | {num('steps_per_s', '.2f')} |"
            f" {num('cuda_max_memory_allocated_gib', '.2f')} | {num('maxrss_gib', '.2f')} |"
            f" {num('start_to_first_step_s', '.1f')} | {num('wall_s', '.1f')} |"
        )
    lines += ["", "Versions: " + ", ".join(f"{k} {v}" for k, v in results["versions"].items()), ""]
    for v in results["variants"]:
        if v.get("command"):
            lines.append(
                f"- {v['name']}: `{v['command']}`"
                + (f" ({v['reason']})" if v.get("reason") else "")
            )
    (out / "gpu_check.md").write_text("\n".join(lines) + "\n")


def summarize(metrics_path: Path, warmup: int, world: int) -> dict:
    m = json.loads(metrics_path.read_text())
    steps = m["steps"]
    if len(steps) <= warmup:
        return {"status": f"only {len(steps)} steps recorded"}
    first, last = (
        steps[warmup - 1] if warmup else {"t": m["t_train_begin"], "real": 0, "processed": 0},
        steps[-1],
    )
    seconds = last["t"] - first["t"]
    real = last["real"] - first["real"]
    processed = last["processed"] - first["processed"]
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
        "start_to_first_step_s": m.get("t_train_begin"),
        "trl_prepare_dataset_s": m.get("prepare_dataset_s"),
        "model_storage_gib": m.get("model_storage_bytes", 0) / 2**30,
        "trainable_parameters": m.get("trainable_parameters"),
    }
    if "cuda_max_memory_allocated" in m:
        out["cuda_max_memory_allocated_gib"] = m["cuda_max_memory_allocated"] / 2**30
        out["cuda_max_memory_reserved_gib"] = m["cuda_max_memory_reserved"] / 2**30
    return out


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
        "--packing", action="store_true", help="compile the variants with packing: true"
    )
    parser.add_argument(
        "--preset", default="1b", help="make_model.py preset (1b; tiny for a smoke test)"
    )
    parser.add_argument("--data", default=None)
    parser.add_argument(
        "--work", default="/tmp/mccompile-gpu-check", help="model, builds, logs (GBs)"
    )
    parser.add_argument("--variants", default=",".join(v[0] for v in VARIANTS))
    parser.add_argument(
        "--dry-run", action="store_true", help="no GPU: configs, builds and a data check only"
    )
    parser.add_argument(
        "--allow-cpu",
        action="store_true",
        help="run without a GPU (to test this script: --preset tiny)",
    )
    args = parser.parse_args(argv)

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
        "packing": args.packing,
        "versions": info,
        "device": info.get("gpu"),
        "variants": [],
    }
    wanted = [v for v in VARIANTS if v[0] in args.variants.split(",")]
    gpus = int(info.get("gpus") or 0)
    missing = [
        k
        for k in (
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
        if str(info.get(k, "")).startswith("MISSING")
    ]
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

    # 2. configs and builds
    env = child_env()
    for name, quantization, gc, processes in wanted:
        variant = {
            "name": name,
            "quantization": quantization,
            "gradient_checkpointing": gc,
            "processes": processes,
        }
        results["variants"].append(variant)
        if processes > 1 and gpus < processes and not args.dry_run and not args.allow_cpu:
            variant.update(status="skipped", reason=f"{gpus} GPU(s)")
            continue
        if quantization and str(info.get("bitsandbytes", "")).startswith("MISSING"):
            variant.update(status="skipped", reason="bitsandbytes is not installed")
            continue
        config = work / "configs" / f"{name}.yaml"
        config.write_text(
            CONFIG.format(
                name=name,
                model=model_dir,
                max_length=args.max_length,
                packing=str(args.packing).lower(),
                quantization=(
                    f"    quantization: {quantization}\n    bnb_4bit_compute_dtype: bfloat16\n"
                    if quantization
                    else ""
                ),
                batch_size=args.batch_size,
                gc=str(gc).lower(),
                output_dir=work / "runs" / name,
                distributed=(
                    f"    distributed:\n      strategy: ddp\n      num_processes: {processes}\n"
                    if processes > 1
                    else ""
                ),
            )
        )
        build = work / "build" / name
        r = run(
            [sys.executable, "-m", "mccompile", "build", str(config), "-o", str(build), "--force"],
            work / "logs" / f"build_{name}.log",
            timeout=120,
            env=env,
        )
        if r["rc"] != 0:
            variant.update(status="build failed", reason=tail(Path(r["log"]), 600))
            continue
        variant["program"] = str(build / "gpu-trainer" / "train.py")
        variant["status"] = "built"
    write_results(out, results)

    # 3. runs
    estimate = 150.0  # seconds for a first run of a 1B model: start-up, loading, the steps
    for variant in results["variants"]:
        if variant["status"] != "built":
            continue
        name = variant["name"]
        program = Path(variant["program"])
        metrics = work / "metrics" / f"{name}.json"
        for old in work.glob(f"metrics/{name}.json*"):
            old.unlink()
        harness = [str(BENCH / "harness.py"), "train", "--metrics", str(metrics), "--"]
        program_args = [
            str(program),
            "--dataset",
            str(data),
            "--max-steps",
            str(args.steps),
            "--output-dir",
            str(work / "runs" / name),
        ]
        if variant["processes"] > 1:
            cmd = [
                sys.executable,
                "-m",
                "accelerate.commands.launch",
                "--config_file",
                str(program.parent / "accelerate_config.yaml"),
                "--num_processes",
                str(variant["processes"]),
                *harness,
                *program_args,
            ]
        else:
            cmd = [sys.executable, *harness, *program_args]
        variant["command"] = " ".join(cmd)
        if args.dry_run:
            continue
        left = args.time_limit - elapsed() - 5
        if left < min(estimate, 90):
            variant.update(
                status="skipped",
                reason=f"time limit: {left:.0f} s left, a run needs ~{estimate:.0f} s",
            )
            continue
        log(f"run {name} (up to {left:.0f} s)")
        env_run = dict(env, HF_DATASETS_CACHE=str(work / "hf" / name))
        r = run(cmd, work / "logs" / f"run_{name}.log", timeout=left, env=env_run)
        variant.update(wall_s=r["wall_s"], maxrss_gib=r["maxrss_mb"] / 1024, rc=r["rc"])
        if r["timed_out"]:
            variant.update(status="killed at the time limit", reason=tail(Path(r["log"]), 400))
        elif r["rc"] != 0:
            variant.update(status=f"failed (exit {r['rc']})", reason=tail(Path(r["log"]), 1500))
        else:
            try:
                variant.update(summarize(metrics, args.warmup, variant["processes"]))
                variant["status"] = "ok"
            except (OSError, KeyError, ValueError) as error:
                variant.update(status="no metrics", reason=repr(error))
        estimate = max(estimate * 0.5, r["wall_s"] * 1.15)
        results["elapsed_s"] = elapsed()
        write_results(out, results)
        shutil.rmtree(work / "runs" / name, ignore_errors=True)

    # 4. --dry-run: check the first build against the data (tokenizer + data only, no weights)
    if args.dry_run:
        first = next((v for v in results["variants"] if v["status"] == "built"), None)
        if first:
            r = run(
                [sys.executable, first["program"], "--dataset", str(data), "--dry-run"],
                work / "logs" / "dry_run.log",
                timeout=300,
                env=dict(env, HF_DATASETS_CACHE=str(work / "hf" / "dry")),
            )
            results["dry_run_check"] = {
                "program": first["program"],
                "rc": r["rc"],
                "wall_s": r["wall_s"],
                "tail": tail(Path(r["log"]), 800),
            }
            for variant in results["variants"]:
                if variant["status"] == "built":
                    variant["status"] = "dry-run: built, not run"
        results["status"] = "dry-run " + (
            "ok" if first and results["dry_run_check"]["rc"] == 0 else "FAILED"
        )
    else:
        results["status"] = "done"
    results["elapsed_s"] = elapsed()
    write_results(out, results)
    log(f"{results['status']}: {out / 'gpu_check.md'}")
    return 0 if results["status"] in ("done", "dry-run ok") else 1


if __name__ == "__main__":
    sys.exit(main())
