"""mccompile's benchmark suite: one command, all measurements, BENCHMARKS.md at the repository root.

    python benchmarks/run.py            # the full run (about 20 minutes on 2 CPU cores)
    python benchmarks/run.py --quick    # a reduced run for CI smoke use (about 5 minutes)

Run it with the repository's virtual environment (.venv/bin/python): the children it starts
use the same interpreter and the ``mccompile`` script beside it. It works offline
(HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 are set for every child) and writes only under
benchmarks/.cache (data, model, builds, logs), benchmarks/results/ (raw JSON) and
BENCHMARKS.md (or --output).

Measurements (see benchmarks/README.md for how each is taken):
 1. compile latency of ``mccompile validate`` / ``build`` against ``from trl import SFTTrainer``
 2. training throughput of the generated program against benchmarks/handwritten_sft.py,
    without and with packing, runs interleaved A B A B
 3. padding: the share of real tokens in the generated program's collated batches
 4. data preparation time of the generated program, one process against all cores
 5. peak memory of LoRA against QLoRA (nf4)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks"
CACHE = BENCH / ".cache"
PY = sys.executable
MCCOMPILE = str(Path(PY).parent / "mccompile")
DATA_SOURCES = [
    ROOT.parent / "shared" / "data" / "alpaca_en_demo.json",
    ROOT.parent / "shared" / "data" / "alpaca_zh_demo.json",
]
DATA = CACHE / "alpaca_en_zh.json"
MODEL = CACHE / "model"
GUIDE_CONFIG = ROOT / "tests" / "guide" / "guide_9_8_1_1.yaml"
CONFIGS = {
    "lora": BENCH / "configs" / "alpaca_lora.yaml",
    "lora_packing": BENCH / "configs" / "alpaca_lora_packing.yaml",
    "qlora": BENCH / "configs" / "alpaca_qlora.yaml",
}
TARGETS = {
    "validate_s": 0.25,
    "build_s": 0.40,
    "build_share_of_trl_import": 0.07,
    "tokens_per_s_ratio": 0.97,
    "packed_real_share": 0.95,
}

# steps: measured optimizer steps after the warm-up, per mode; a packed step holds 4 x 512 tokens,
# an unpacked one about 4 x 160 real tokens, so both modes measure a similar number of real tokens
FULL = {
    "compile_runs": 7,
    "trl_runs": 3,
    "reps": 3,
    "warmup": 2,
    "steps": {"nopack": 20, "pack": 8},
    "whatif": True,
    "prep_reps": 3,
    "dry_runs": 3,
}
QUICK = {
    "compile_runs": 3,
    "trl_runs": 2,
    "reps": 2,
    "warmup": 1,
    "steps": {"nopack": 3, "pack": 2},
    "whatif": True,
    "prep_reps": 1,
    "dry_runs": 1,
}


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


# -- running children ----------------------------------------------------------------


def base_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        HF_HUB_OFFLINE="1",
        HF_DATASETS_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        TOKENIZERS_PARALLELISM="false",
        PYTHONUNBUFFERED="1",
        HF_DATASETS_DISABLE_PROGRESS_BARS="1",
    )
    env.update(extra)
    return env


def run_child(
    cmd: list[str],
    *,
    env: dict[str, str] | None = None,
    log_name: str | None = None,
    check: bool = True,
    timeout: float = 1800,
) -> dict:
    """Run ``cmd`` from the repository root; return wall time, exit status and its own max RSS."""
    log_path = CACHE / "logs" / f"{log_name}.log" if log_name else None
    if log_path:
        log_path.parent.mkdir(parents=True, exist_ok=True)
    out = open(log_path, "w") if log_path else subprocess.DEVNULL
    try:
        started = time.perf_counter()
        process = subprocess.Popen(
            cmd, cwd=ROOT, env=env or base_env(), stdout=out, stderr=subprocess.STDOUT
        )
        deadline = started + timeout
        while True:
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                process.kill()
                pid, status, usage = os.wait4(process.pid, 0)
                break
            time.sleep(0.002)
        wall = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
    finally:
        if log_path:
            out.close()
    result = {
        "cmd": cmd,
        "wall_s": wall,
        "rc": process.returncode,
        "maxrss_mb": usage.ru_maxrss / 1024,
        "user_s": usage.ru_utime,
        "sys_s": usage.ru_stime,
        "log": str(log_path.relative_to(ROOT)) if log_path else None,
    }
    if check and process.returncode != 0:
        tail = log_path.read_text()[-4000:] if log_path else ""
        raise RuntimeError(f"{' '.join(cmd)} exited {process.returncode}\n{tail}")
    return result


def fresh_datasets_cache(name: str) -> str:
    """A new, empty HF_DATASETS_CACHE per run: no run reads another's tokenized cache."""
    path = CACHE / "hf" / name
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return str(path)


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def rel(path: Path | str) -> str:
    return os.path.relpath(path, ROOT)


# -- machine ---------------------------------------------------------------------------


def machine() -> dict:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram_gb = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                ram_gb = int(line.split()[1]) / 1024 / 1024
    except OSError:
        pass
    code = (
        "import json, sys, torch, transformers, trl, datasets, peft, accelerate\n"
        "v = dict(python=sys.version.split()[0], torch=torch.__version__, transformers=transformers.__version__,"
        " trl=trl.__version__, datasets=datasets.__version__, peft=peft.__version__, accelerate=accelerate.__version__,"
        " torch_threads=torch.get_num_threads())\n"
        "try:\n import bitsandbytes; v['bitsandbytes'] = bitsandbytes.__version__\n"
        "except Exception as e: v['bitsandbytes'] = 'unavailable'\n"
        "import mccompile; v['mccompile'] = getattr(mccompile, '__version__', '?')\n"
        "print(json.dumps(v))"
    )
    versions = json.loads(
        subprocess.run(
            [PY, "-c", code], env=base_env(), capture_output=True, text=True, check=True, cwd=ROOT
        )
        .stdout.strip()
        .splitlines()[-1]
    )
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "cores_usable": len(os.sched_getaffinity(0))
        if hasattr(os, "sched_getaffinity")
        else os.cpu_count(),
        "ram_gb": round(ram_gb, 1) if ram_gb else None,
        "platform": platform.platform(),
        **versions,
    }


def machine_line(m: dict) -> str:
    return (
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['ram_gb']} GB RAM; python {m['python']}, "
        f"torch {m['torch']}, transformers {m['transformers']}, trl {m['trl']} "
        f"(datasets {m['datasets']}, peft {m['peft']}, accelerate {m['accelerate']}, "
        f"bitsandbytes {m['bitsandbytes']}, mccompile {m['mccompile']}); torch threads {m['torch_threads']}."
    )


def loadavg() -> float:
    try:
        return float(Path("/proc/loadavg").read_text().split()[0])
    except OSError:
        return float("nan")


# -- setup ----------------------------------------------------------------------------


def setup(results: dict) -> None:
    CACHE.mkdir(parents=True, exist_ok=True)
    rows: list = []
    for source in DATA_SOURCES:
        rows += json.loads(source.read_text(encoding="utf-8"))
    text = json.dumps(rows, ensure_ascii=False)
    if not DATA.exists() or DATA.read_text(encoding="utf-8") != text:
        DATA.write_text(text, encoding="utf-8")
    results["data"] = {
        "file": rel(DATA),
        "rows": len(rows),
        "sources": [str(s) for s in DATA_SOURCES],
    }
    info_path = MODEL / "bench_model_info.json"
    if not info_path.exists():
        log("building the benchmark model (make_model.py, preset bench)")
        run_child(
            [
                PY,
                str(BENCH / "make_model.py"),
                str(MODEL),
                "--preset",
                "bench",
                "--data",
                str(DATA),
            ],
            log_name="make_model",
        )
    results["model"] = json.loads(info_path.read_text())
    results["model"]["path"] = rel(MODEL)
    for name, config in CONFIGS.items():
        run_child(
            [MCCOMPILE, "build", str(config), "-o", str(CACHE / "build" / name), "--force"],
            env=base_env(MCCOMPILE_CACHE_DIR="off"),
            log_name=f"build_{name}",
        )


def program(name: str) -> Path:
    return CACHE / "build" / name / "bench-trainer" / "train.py"


# -- 1. compile latency ---------------------------------------------------------------------


def bench_compile(results: dict, p: dict) -> None:
    log("1. compile latency")
    work = CACHE / "compile"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    warm_cache = work / "mccompile-cache"
    changed = work / "changed.yaml"
    guide_text = GUIDE_CONFIG.read_text(encoding="utf-8")
    if "learning_rate: 1e-4" not in guide_text:
        raise RuntimeError(
            f"{GUIDE_CONFIG} no longer sets 'learning_rate: 1e-4'; update bench_compile"
        )
    warm_env = base_env(MCCOMPILE_CACHE_DIR=str(warm_cache))
    cold_env = base_env(MCCOMPILE_CACHE_DIR="off")
    validate = [MCCOMPILE, "validate", str(GUIDE_CONFIG)]

    def build(config: Path, out: str) -> list[str]:
        return [MCCOMPILE, "build", str(config), "-o", str(work / out), "--force"]

    # prime the warm cache (and the page cache) once
    run_child(build(GUIDE_CONFIG, "out-warm"), env=warm_env)
    run_child(validate, env=warm_env)
    times: dict[str, list[float]] = {
        k: []
        for k in ("python", "validate", "build_warm", "build_changed", "build_cold", "trl_import")
    }
    trl_rss: list[float] = []
    trl_every = max(1, p["compile_runs"] // p["trl_runs"])
    stamp = int(time.time()) % 100000
    for i in range(p["compile_runs"]):
        times["python"].append(run_child([PY, "-c", "pass"])["wall_s"])
        times["validate"].append(run_child(validate, env=warm_env)["wall_s"])
        times["build_warm"].append(
            run_child(build(GUIDE_CONFIG, "out-warm"), env=warm_env)["wall_s"]
        )
        # a learning rate this cache has never seen: the changed piece misses, the rest hits
        lr = f"{1e-4 + (stamp * 100 + i + 1) * 1e-12:.12g}"
        changed.write_text(
            guide_text.replace("learning_rate: 1e-4", f"learning_rate: {lr}"), encoding="utf-8"
        )
        times["build_changed"].append(
            run_child(build(changed, "out-changed"), env=warm_env)["wall_s"]
        )
        times["build_cold"].append(
            run_child(build(GUIDE_CONFIG, "out-cold"), env=cold_env)["wall_s"]
        )
        if len(times["trl_import"]) < p["trl_runs"] and i % trl_every == 0:
            r = run_child([PY, "-c", "from trl import SFTTrainer"])
            times["trl_import"].append(r["wall_s"])
            trl_rss.append(r["maxrss_mb"])
    while len(times["trl_import"]) < p["trl_runs"]:
        r = run_child([PY, "-c", "from trl import SFTTrainer"])
        times["trl_import"].append(r["wall_s"])
        trl_rss.append(r["maxrss_mb"])
    # the outputs of the three builds must be the same programs (the changed one differs in one value)
    same = (work / "out-warm" / "train-alpaca" / "train.py").read_bytes() == (
        work / "out-cold" / "train-alpaca" / "train.py"
    ).read_bytes()
    results["compile"] = {
        "config": rel(GUIDE_CONFIG),
        "times_s": times,
        "medians_s": {k: median(v) for k, v in times.items()},
        "trl_import_maxrss_mb": median(trl_rss),
        "warm_equals_cold_output": same,
        "runs": p["compile_runs"],
    }


BUILD_PHASES_CODE = r"""
import json, os, sys, time
os.environ["MCCOMPILE_CACHE_DIR"] = "off"
t0 = time.perf_counter()
import jinja2
import mccompile.cli as cli
import mccompile.render as render
phases = {"import mccompile": time.perf_counter() - t0}

def timed(owner, name, key):
    original = getattr(owner, name)
    def wrapper(*a, **k):
        started = time.perf_counter()
        try:
            return original(*a, **k)
        finally:
            phases[key] = phases.get(key, 0.0) + time.perf_counter() - started
    setattr(owner, name, wrapper)

timed(jinja2.Environment, "compile", "compile Jinja templates")
timed(render, "_black", "black: import + format")
started = time.perf_counter()
cli.main(["build", sys.argv[1], "-o", sys.argv[2], "--force"])
phases["build (after imports)"] = time.perf_counter() - started
print(json.dumps(phases))
"""

IMPORT_BLACK_CODE = (
    "import time; t = time.perf_counter(); import black; print(time.perf_counter() - t)"
)


def bench_build_phases(results: dict) -> None:
    """Where a cold build's time goes, in-process (one run each, the median of 3)."""
    work = CACHE / "compile"
    runs = []
    black_imports = []
    for _ in range(3):
        r = subprocess.run(
            [PY, "-c", BUILD_PHASES_CODE, str(GUIDE_CONFIG), str(work / "out-phases")],
            cwd=ROOT,
            env=base_env(),
            capture_output=True,
            text=True,
            check=True,
        )
        runs.append(json.loads(r.stdout.strip().splitlines()[-1]))
        r = subprocess.run(
            [PY, "-c", IMPORT_BLACK_CODE],
            cwd=ROOT,
            env=base_env(),
            capture_output=True,
            text=True,
            check=True,
        )
        black_imports.append(float(r.stdout.strip().splitlines()[-1]))
    phases = {k: median([run[k] for run in runs]) for k in runs[0]}
    phases["of which black import"] = median(black_imports)
    results["compile"]["cold_phases_s"] = phases


# -- 2. throughput ---------------------------------------------------------------------------


def program_sampling(name: str = "lora") -> str:
    """The batch sampling a generated program asks for (mccompile's group_by_length setting, or TRL's default)."""
    text = program(name).read_text(encoding="utf-8")
    if (
        re.search(r"^GROUP_BY_LENGTH = True", text, re.M)
        or 'train_sampling_strategy="group_by_length",' in text
    ):
        return "group_by_length"
    return "random"


def other_sampling(sampling: str) -> str:
    return "random" if sampling == "group_by_length" else "group_by_length"


def train_cmd(
    kind: str, mode: str, max_steps: int, out_dir: Path, metrics: Path, whatif: str | None = None
) -> list[str]:
    harness = [
        PY,
        str(BENCH / "harness.py"),
        "train",
        "--metrics",
        str(metrics),
        *(["--sampling", whatif] if whatif else []),
        "--",
    ]
    if kind == "generated":
        name = {"nopack": "lora", "pack": "lora_packing", "qlora": "qlora"}[mode]
        return harness + [
            str(program(name)),
            "--dataset",
            rel(DATA),
            "--max-steps",
            str(max_steps),
            "--output-dir",
            rel(out_dir),
        ]
    extra = (
        ["--packing"] if mode == "pack" else (["--quantization", "nf4"] if mode == "qlora" else [])
    )
    return harness + [
        str(BENCH / "handwritten_sft.py"),
        "--model",
        rel(MODEL),
        "--dataset",
        rel(DATA),
        "--max-steps",
        str(max_steps),
        "--output-dir",
        rel(out_dir),
        *extra,
    ]


def steps_for(mode: str, p: dict) -> int:
    return p["steps"]["pack" if mode == "pack" else "nopack"]


def training_run(kind: str, mode: str, rep: int, p: dict, whatif: str | None = None) -> dict:
    name = f"{kind}_{mode}{'_' + whatif if whatif else ''}_{rep}"
    out_dir = CACHE / "runs" / name
    shutil.rmtree(out_dir, ignore_errors=True)
    metrics_path = CACHE / "metrics" / f"{name}.json"
    metrics_path.parent.mkdir(parents=True, exist_ok=True)
    max_steps = p["warmup"] + steps_for(mode, p)
    cmd = train_cmd(kind, mode, max_steps, out_dir, metrics_path, whatif)
    load_before = loadavg()
    child = run_child(
        cmd, env=base_env(HF_DATASETS_CACHE=fresh_datasets_cache(name)), log_name=name
    )
    m = json.loads(metrics_path.read_text())
    shutil.rmtree(CACHE / "hf" / name, ignore_errors=True)
    steps = m["steps"]
    if len(steps) != max_steps:
        raise RuntimeError(f"{name}: {len(steps)} steps recorded, expected {max_steps}")
    w = p["warmup"]
    first, last = steps[w - 1], steps[-1]
    seconds = last["t"] - first["t"]
    real = last["real"] - first["real"]
    processed = last["processed"] - first["processed"]
    step_times = [steps[i]["t"] - steps[i - 1]["t"] for i in range(w, len(steps))]
    step_real = [steps[i]["real"] - steps[i - 1]["real"] for i in range(w, len(steps))]
    step_cpu = [steps[i]["cpu"] - steps[i - 1]["cpu"] for i in range(w, len(steps))]
    return {
        "name": name,
        "kind": kind,
        "mode": mode,
        "whatif_sampling": whatif,
        "sampling": m.get("sampling"),
        "rep": rep,
        "cmd": cmd,
        "log": child["log"],
        "wall_s": child["wall_s"],
        "maxrss_mb": child["maxrss_mb"],
        "cpu_s": child["user_s"] + child["sys_s"],
        "loadavg_before": load_before,
        "measured_steps": len(step_times),
        "measured_s": seconds,
        "real_tokens": real,
        "processed_tokens": processed,
        "tokens_per_s": real / seconds,
        "processed_per_s": processed / seconds,
        "steps_per_s": len(step_times) / seconds,
        "step_times_s": step_times,
        "step_real": step_real,
        "step_cpu_s": step_cpu,
        "all_steps_real": [s["real"] for s in steps],
        "start_to_first_step_s": m["t_train_begin"],
        "trainer_init_s": m["t_trainer_init_end"] - m["t_trainer_init_begin"],
        "trl_prepare_dataset_s": m["prepare_dataset_s"],
        "train_rows": m["train_rows"],
        "model_storage_mb": m["model_storage_bytes"] / 1e6,
        "trainable_parameters": m["trainable_parameters"],
        "padding_free": m["padding_free"],
        "after_train_s": m["t_end"] - m["t_train_end"],
    }


def best_of(group: list[dict]) -> dict:
    """Per measured step, the fastest of the runs (they train the same examples): robust to bursts of load."""
    best = [min(times) for times in zip(*(r["step_times_s"] for r in group), strict=True)]
    reals = [r["step_real"] for r in group]
    same = all(x == reals[0] for x in reals)
    real = sum(reals[0])
    return {
        "best_step_times_s": best,
        "best_tokens_per_s": real / sum(best),
        "best_steps_per_s": len(best) / sum(best),
        "best_same_examples_across_runs": same,
    }


def bench_throughput(results: dict, p: dict) -> None:
    sampling = program_sampling("lora")
    whatif_sampling = other_sampling(sampling)
    runs = []
    for mode in ("nopack", "pack"):
        for rep in range(p["reps"]):
            # interleaved A B, B A, A B, ...: a drift of the machine's load cancels over two rounds
            order = ("generated", "handwritten") if rep % 2 == 0 else ("handwritten", "generated")
            for kind in order:
                log(f"2. throughput: {kind} {mode} rep {rep + 1}/{p['reps']}")
                runs.append(training_run(kind, mode, rep, p))
            if mode == "nopack" and p["whatif"]:
                log(
                    f"2. throughput: what-if generated + {whatif_sampling} sampling, rep {rep + 1}/{p['reps']}"
                )
                runs.append(training_run("generated", mode, rep, p, whatif=whatif_sampling))
    results["throughput_runs"] = runs
    summary: dict = {"program_sampling": sampling, "handwritten_sampling": "random"}
    whatif = [r for r in runs if r["whatif_sampling"]]
    if whatif:
        w = {
            key: median([r[key] for r in whatif])
            for key in ("tokens_per_s", "processed_per_s", "steps_per_s", "wall_s", "maxrss_mb")
        }
        w.update(best_of(whatif))
        w["real_share"] = median([r["real_tokens"] / r["processed_tokens"] for r in whatif])
        w["sampling"] = whatif_sampling
        if whatif_sampling == "random":
            # the generated program with the hand-written one's sampler: the same examples at every step,
            # so this pair isolates what the program itself costs
            hand = [
                r
                for r in runs
                if r["mode"] == "nopack" and r["kind"] == "handwritten" and not r["whatif_sampling"]
            ]
            hb = best_of(hand)
            w["vs_handwritten"] = {
                "ratio_best_tokens_per_s": w["best_tokens_per_s"] / hb["best_tokens_per_s"],
                "ratio_tokens_per_s": w["tokens_per_s"] / median([r["tokens_per_s"] for r in hand]),
                "ratio_best_steps_per_s": w["best_steps_per_s"] / hb["best_steps_per_s"],
                "median_best_step_time_ratio": median(
                    [
                        a / b
                        for a, b in zip(
                            w["best_step_times_s"], hb["best_step_times_s"], strict=True
                        )
                    ]
                ),
                "same_examples": all(
                    abs(a - b) / max(b, 1) < 0.02
                    for g, h in zip(whatif, hand, strict=True)
                    for a, b in zip(g["all_steps_real"], h["all_steps_real"], strict=True)
                ),
            }
        summary["whatif"] = w
    runs = [r for r in runs if not r["whatif_sampling"]]
    for mode in ("nopack", "pack"):
        gen = [r for r in runs if r["mode"] == mode and r["kind"] == "generated"]
        hand = [r for r in runs if r["mode"] == mode and r["kind"] == "handwritten"]
        # paired per-step ratios: step k of both programs trains the same examples
        paired = []
        for g, h in zip(gen, hand, strict=True):
            paired += [a / b for a, b in zip(g["step_times_s"], h["step_times_s"], strict=True)]
        s = {}
        for label, group in (("generated", gen), ("handwritten", hand)):
            s[label] = {
                key: median([r[key] for r in group])
                for key in (
                    "tokens_per_s",
                    "processed_per_s",
                    "steps_per_s",
                    "wall_s",
                    "start_to_first_step_s",
                    "trainer_init_s",
                    "trl_prepare_dataset_s",
                    "maxrss_mb",
                    "real_tokens",
                    "measured_s",
                )
            }
        s["ratio_tokens_per_s"] = s["generated"]["tokens_per_s"] / s["handwritten"]["tokens_per_s"]
        s["ratio_steps_per_s"] = s["generated"]["steps_per_s"] / s["handwritten"]["steps_per_s"]
        s["ratio_wall"] = s["generated"]["wall_s"] / s["handwritten"]["wall_s"]
        s["ratio_start"] = (
            s["generated"]["start_to_first_step_s"] / s["handwritten"]["start_to_first_step_s"]
        )
        s["median_paired_step_time_ratio"] = median(paired)
        for label, group in (("generated", gen), ("handwritten", hand)):
            s[label].update(best_of(group))
        s["ratio_best_tokens_per_s"] = (
            s["generated"]["best_tokens_per_s"] / s["handwritten"]["best_tokens_per_s"]
        )
        s["ratio_best_steps_per_s"] = (
            s["generated"]["best_steps_per_s"] / s["handwritten"]["best_steps_per_s"]
        )
        s["median_best_step_time_ratio"] = median(
            [
                a / b
                for a, b in zip(
                    s["generated"]["best_step_times_s"],
                    s["handwritten"]["best_step_times_s"],
                    strict=True,
                )
            ]
        )
        s["program_sampling"] = program_sampling("lora" if mode == "nopack" else "lora_packing")
        s["same_examples"] = s["program_sampling"] == "random" and all(
            abs(a - b) / max(b, 1) < 0.02
            for g, h in zip(gen, hand, strict=True)
            for a, b in zip(g["all_steps_real"], h["all_steps_real"], strict=True)
        )
        summary[mode] = s
    results["throughput"] = summary


# -- 3. padding ------------------------------------------------------------------------------


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


# -- 4. data preparation ------------------------------------------------------------------------


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


# -- 5. memory ------------------------------------------------------------------------------------


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


# -- report -------------------------------------------------------------------------------------


def fmt_cmd(cmd: list[str]) -> str:
    out = []
    for item in cmd:
        part = str(item)
        if part.startswith(str(ROOT) + os.sep):
            part = rel(part)
        elif part == PY:
            part = "python"
        elif part == MCCOMPILE:
            part = "mccompile"
        out.append(part)
    return " ".join(out)


def verdict(ok: bool) -> str:
    return "met" if ok else "**MISSED**"


def report(results: dict, args: argparse.Namespace) -> str:
    m = results["machine"]
    mline = machine_line(m)
    command = "python benchmarks/run.py" + (" --quick" if args.quick else "")
    p = results["params"]
    lines: list[str] = []
    add = lines.append
    add("# Benchmarks")
    add("")
    add(
        f"Generated by `{command}` on {results['date']} in {results['duration_s'] / 60:.1f} minutes"
        + (" (**--quick: reduced runs, for smoke use only**)" if args.quick else "")
        + ". Do not edit by hand;"
        " rerun the command. How each figure is taken: benchmarks/README.md. Raw data: benchmarks/results/"
        + ("quick.json" if args.quick else "latest.json")
        + " (not committed)."
    )
    add("")
    add(mline)
    add("")
    add(
        f"The machine is shared with other work (load average {results['load_start']:.2f} at the start,"
        f" {results['load_end']:.2f} at the end), so every comparison is measured side by side in the same run,"
        " interleaved, and reported as a ratio."
    )
    add("")
    model = results["model"]
    add(
        f"Benchmark model: a LlamaConfig with random weights built offline by benchmarks/make_model.py "
        f"({model['parameters'] / 1e6:.1f}M parameters, {model['parameters_non_embedding'] / 1e6:.1f}M outside the"
        f" untied embeddings; hidden {model['config']['hidden_size']}, {model['config']['num_hidden_layers']} layers,"
        f" intermediate {model['config']['intermediate_size']}, {model['config']['num_attention_heads']} heads,"
        f" vocab {model['config']['vocab_size']}: a byte-level BPE trained on the benchmark data). Data: "
        f"{results['data']['rows']} Alpaca rows (alpaca_en_demo.json + alpaca_zh_demo.json, one Alpaca-format"
        f" json file). Settings (benchmarks/configs/alpaca_lora.yaml): prompt = instruction, response = output,"
        f" max_seq_length 512, batch 4, no gradient accumulation, LoRA r 16 / alpha 32 / dropout 0.05 on q_proj +"
        f" v_proj, adamw_torch, lr 1e-4 linear, fp32, no gradient checkpointing, seed 42."
    )
    add("")

    if "compile" in results:
        c = results["compile"]
        med = c["medians_s"]
        trl = med["trl_import"]
        add("## 1. Compile latency")
        add("")
        add(
            f"`{c['config']}`, fresh processes, median of {c['runs']} runs each (TRL import: "
            f"{len(c['times_s']['trl_import'])} runs), interleaved in one loop."
        )
        add("")
        add("| command | median s | min s | max s | share of TRL import | target | |")
        add("| --- | ---: | ---: | ---: | ---: | --- | --- |")
        rows = [
            ("`python -c pass` (interpreter start)", "python", None),
            ("`mccompile validate`", "validate", ("validate_s", None)),
            ("`mccompile build`, warm cache", "build_warm", ("build_s", "share")),
            (
                "`mccompile build`, changed config (new learning rate each run)",
                "build_changed",
                ("build_s", "share"),
            ),
            (
                "`mccompile build`, cold (`MCCOMPILE_CACHE_DIR=off`)",
                "build_cold",
                ("build_s", "share"),
            ),
            ('`python -c "from trl import SFTTrainer"`', "trl_import", None),
        ]
        for label, key, target in rows:
            t = c["times_s"][key]
            share = med[key] / trl
            if target is None:
                tgt, ok = "", ""
            elif target[0] == "validate_s":
                tgt = f"<= {TARGETS['validate_s']} s"
                ok = verdict(med[key] <= TARGETS["validate_s"])
            else:
                tgt = f"<= {TARGETS['build_s']} s and <= {TARGETS['build_share_of_trl_import']:.0%}"
                ok = verdict(
                    med[key] <= TARGETS["build_s"] and share <= TARGETS["build_share_of_trl_import"]
                )
            add(
                f"| {label} | {med[key]:.3f} | {min(t):.3f} | {max(t):.3f} | {share:.1%} | {tgt} | {ok} |"
            )
        add("")
        add(
            f"Output of the warm-cache build identical to the cold build: {c['warm_equals_cold_output']}."
        )
        ph = c.get("cold_phases_s")
        if ph:
            add("")
            add(
                "Where a cold build's time goes (in one process, `MCCOMPILE_CACHE_DIR=off`, median of 3; the interpreter"
                f" start is the `python -c pass` row): importing mccompile {ph['import mccompile']:.3f} s; the build"
                f" {ph['build (after imports)']:.3f} s, of which black {ph['black: import + format']:.3f} s (its import alone"
                f" {ph['of which black import']:.3f} s, in a separate process) and compiling the Jinja templates"
                f" {ph['compile Jinja templates']:.3f} s."
            )
        add("")
        add(
            f"Command: `{command}` (section 1: `mccompile validate {c['config']}`, "
            f"`mccompile build {c['config']} -o OUT --force` with `MCCOMPILE_CACHE_DIR` = a primed folder / `off`,"
            ' against `python -c "from trl import SFTTrainer"`).'
        )
        add("")
        add(mline)
        add("")

    if "throughput" in results:
        t = results["throughput"]
        add("## 2. Training throughput: generated program against hand-written TRL")
        add("")
        add(
            f"Generated: benchmarks/configs/alpaca_lora.yaml (and `_packing`) compiled by mccompile; hand-written:"
            f" benchmarks/handwritten_sft.py with the same settings. Each run: {p['warmup']} warm-up step(s), then"
            f" {p['steps']['nopack']} measured optimizer steps without packing, {p['steps']['pack']} with packing"
            f" (a packed step holds ~3x the real tokens); {p['reps']} run(s) per program, interleaved"
            " (A B, then B A, ...). Every run of a program trains the same examples at step k (seeded sampler);"
            f" the generated program batches with `{t.get('program_sampling', 'random')}` sampling, the hand-written"
            " one with TRL's default (`random`)"
            + (
                ", so the two train different examples per step: compare tokens/s, not steps/s"
                if t.get("program_sampling") == "group_by_length"
                else ""
            )
            + ". Two estimates: the median over"
            " runs of each run's tokens/s, and the per-step best: for every step, the fastest of the runs"
            " (robust to the bursts of load of this shared machine, which can slow a step several-fold)."
        )
        add("")
        add(
            "| packing | program | real tokens/s, per-step best | real tokens/s, median of runs | steps/s, per-step best | wall s | start to first step s | TRL data prep s | max RSS MB |"
        )
        add("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        for mode in ("nopack", "pack"):
            for kind in ("generated", "handwritten"):
                s = t[mode][kind]
                add(
                    f"| {'on' if mode == 'pack' else 'off'} | {kind} | {s['best_tokens_per_s']:.1f} | {s['tokens_per_s']:.1f} |"
                    f" {s['best_steps_per_s']:.3f} | {s['wall_s']:.1f} | {s['start_to_first_step_s']:.1f} |"
                    f" {s['trl_prepare_dataset_s']:.2f} | {s['maxrss_mb']:.0f} |"
                )
        add("")
        add(
            "| packing | tokens/s ratio gen / hand, per-step best | target >= 0.97 | | tokens/s ratio, median of runs | | steps/s ratio, per-step best | median per-step time ratio (gen / hand) | wall-time ratio | start-up ratio | same examples per step |"
        )
        add("| --- | ---: | --- | --- | ---: | --- | ---: | ---: | ---: | ---: | --- |")
        for mode in ("nopack", "pack"):
            s = t[mode]
            # steps and wall time compare only where both train the same examples per step
            same = s["same_examples"]
            na = "n/a (other examples)"
            steps_ratio = f"{s['ratio_best_steps_per_s']:.3f}x" if same else na
            step_time = f"{s['median_best_step_time_ratio']:.3f}" if same else na
            add(
                f"| {'on' if mode == 'pack' else 'off'} | {s['ratio_best_tokens_per_s']:.3f}x | >= {TARGETS['tokens_per_s_ratio']}x |"
                f" {verdict(s['ratio_best_tokens_per_s'] >= TARGETS['tokens_per_s_ratio'])} |"
                f" {s['ratio_tokens_per_s']:.3f}x | {verdict(s['ratio_tokens_per_s'] >= TARGETS['tokens_per_s_ratio'])} |"
                f" {steps_ratio} | {step_time} |"
                f" {s['ratio_wall']:.3f}{'' if same else ' (other examples)'} |"
                f" {s['ratio_start']:.3f} | {same} |"
            )
        add("")
        add(
            "Real tokens are counted from the batches themselves: for every micro-batch, the sum of the lengths of"
            " the examples the collator receives (for a packed row, the sum of its packed sequences' lengths),"
            " i.e. every token that is not padding; tokens/s = real tokens of the measured steps / their time"
            " (optimizer-step end to end, warm-up excluded). Wall = the whole process"
            " (imports, data, model, steps incl. warm-up, saving); start to first step = process start to"
            " `on_train_begin`."
        )
        add("")
        wi = t.get("whatif")
        if wi:
            base = t["nopack"]["generated"]
            add(
                f"What-if (not what the program does): the generated program without packing, its trainer switched to"
                f' `train_sampling_strategy="{wi["sampling"]}"` by the harness, same number of steps, one run per'
                f" round: {wi['best_tokens_per_s']:.1f} real tokens/s per-step best (the program as generated:"
                f" {base['best_tokens_per_s']:.1f}, {base['best_tokens_per_s'] / wi['best_tokens_per_s']:.2f}x this; median"
                f" of runs {wi['tokens_per_s']:.1f} against {base['tokens_per_s']:.1f}), {wi['real_share']:.1%} of its"
                " processed tokens real."
            )
            vs = wi.get("vs_handwritten")
            if vs:
                add("")
                add(
                    "With the same sampler as the hand-written program, the generated program trains the very same"
                    " examples at every step, which isolates what the program itself costs or saves:"
                )
                add("")
                add(
                    "| generated (random sampling) / hand-written | per-step best | median of runs | target | |"
                )
                add("| --- | ---: | ---: | --- | --- |")
                add(
                    f"| real tokens/s | {vs['ratio_best_tokens_per_s']:.3f}x | {vs['ratio_tokens_per_s']:.3f}x |"
                    f" >= {TARGETS['tokens_per_s_ratio']}x | {verdict(vs['ratio_best_tokens_per_s'] >= TARGETS['tokens_per_s_ratio'])} |"
                )
                add(
                    f"| steps/s (same examples: {vs['same_examples']}) | {vs['ratio_best_steps_per_s']:.3f}x | | | |"
                )
                add(
                    f"| median per-step time ratio | {vs['median_best_step_time_ratio']:.3f} | | | |"
                )
            add("")
        runs = results["throughput_runs"]
        fastest: dict = {}
        for r in runs:
            key = (r["mode"], r["kind"], r["whatif_sampling"])
            fastest[key] = max(fastest.get(key, 0.0), r["tokens_per_s"])
        slow = [
            r
            for r in runs
            if r["tokens_per_s"] < 0.8 * fastest[(r["mode"], r["kind"], r["whatif_sampling"])]
        ]
        add(
            "Per run (real tokens/s, load average before the run; * = more than 20% below the fastest run of its kind,"
            " i.e. slowed by other work on the machine): "
            + "; ".join(
                f"{r['name']} {r['tokens_per_s']:.1f}{'*' if r in slow else ''} (load {r['loadavg_before']:.1f})"
                for r in runs
            )
            + "."
        )
        add("")
        g = next(r for r in runs if r["kind"] == "generated")
        h = next(r for r in runs if r["kind"] == "handwritten")
        add(
            f"Command: `{command}` (section 2: `{fmt_cmd(g['cmd'])}` against `{fmt_cmd(h['cmd'])}`, and the"
            " same with packing: configs/alpaca_lora_packing.yaml, `--packing`)."
        )
        add("")
        add(mline)
        add("")

    if "padding" in results:
        pd = results["padding"]
        add("## 3. Padding: the share of processed tokens that are real")
        add("")
        add(
            "One whole epoch of the generated program's own collated batches (its trainer's data loader: sampler,"
            " seed 42, collator), counted batch by batch: real = the sum of the example lengths the collator"
            " receives, processed = `input_ids.numel()` of the batch it returns."
        )
        add("")
        add(
            "| batches | packing | sampling | batches/epoch | real tokens | processed tokens | real share | target | | useful attention scores |"
        )
        add("| --- | --- | --- | ---: | ---: | ---: | ---: | --- | --- | ---: |")
        for label, desc in (
            ("nopack", "generated program"),
            ("pack", "generated program"),
            ("nopack_whatif", f"what-if: {pd['nopack_whatif']['sampling']} sampling"),
        ):
            r = pd[label]
            packing = "on (BFD, padding-free)" if label == "pack" else "off"
            tgt, ok = (
                (
                    f">= {TARGETS['packed_real_share']:.0%}",
                    verdict(r["real_share"] >= TARGETS["packed_real_share"]),
                )
                if label == "pack"
                else ("", "")
            )
            add(
                f"| {desc} | {packing} | {r['sampling']} | {r['batches']} | {r['real']} | {r['processed']} |"
                f" {r['real_share']:.1%} | {tgt} | {ok} | {r['attention_useful_share']:.1%} |"
            )
        add("")
        add(
            "Useful attention scores: the share of the query x key scores the attention kernel computes (rows x"
            " length^2 per batch) that lie within one sequence (the sum of each sequence's length^2); the rest is"
            " masked out (padding, or other sequences of a padding-free packed batch) but still computed by the"
            " default `sdpa` attention, which has no variable-length kernel on CPU."
        )
        add("")
        ab = pd.get("attention_bench")
        if ab:
            add(
                f"Measured: forward + backward of the benchmark model (LoRA) on the first {ab['batches']} packed batches"
                f" ({ab['tokens']} tokens): {ab['as_run_s']:.2f} s as the program runs them (TRL's padding-free batch, one"
                f" flattened sequence; under `sdpa` transformers turns its position_ids into a block-causal mask over"
                f" the whole batch) against {ab['grouped_s']:.2f} s for the same sequences unpacked, sorted by length"
                f" and padded in batches of 4 ({ab['grouped_processed']} processed tokens):"
                f" {ab['as_run_s'] / ab['grouped_s']:.2f}x. Best of two, alternated."
            )
            add("")
        if "bin_fill" in pd["pack"]:
            add(
                f"With packing, the {results['data']['rows']} rows become {pd['pack']['packed_rows']} packed rows of at"
                f" most 512 tokens, filled to {pd['pack']['bin_fill']:.1%} on average; TRL's padding-free collator"
                " concatenates each batch's rows into one sequence without padding, so no processed token is padding."
            )
        tr = pd.get("training_runs", {})
        if tr:
            add(
                "Over the measured steps of section 2 the generated program's batches were "
                + ", ".join(
                    f"{median(v):.1%} real ({'packing' if k == 'pack' else 'no packing'})"
                    for k, v in tr.items()
                )
                + "."
            )
        add("")
        add(
            f"Command: `{command}` (section 3: `{fmt_cmd(pd['nopack']['cmd'])}`, the same for the packing config"
            f" and with `--sampling {pd['nopack_whatif']['sampling']}`; the packed-step timing is"
            " `PACKED_STEP_CODE` in benchmarks/run.py)."
        )
        add("")
        add(mline)
        add("")

    if "prep" in results:
        pr = results["prep"]
        add("## 4. Data preparation time of the generated program")
        add("")
        variants = [
            "as_generated",
            *[k for k in pr if k.startswith("all_cores")],
            "as_generated_packing",
        ]
        add(
            f"{pr[variants[0]]['rows']} rows; median of {p['prep_reps']} run(s) each, interleaved; each run in a fresh"
            " process with an empty datasets cache. The program's own preparation is `prepare_data` (load the json,"
            " check the rows, tokenize), timed inside the process; TRL's preparation of the tokenized rows inside"
            " SFTTrainer (labels, truncation, filtering, packing) is `SFTTrainer._prepare_dataset` on them, with the"
            " program's `dataset_num_proc`."
        )
        add("")
        add(
            "| config | processes: program's tokenization / TRL (dataset_num_proc) | load tokenizer s | load json s | check s | tokenize s | prepare_data s | then TRL's passes s | data total s | ratio to as generated |"
        )
        add("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        base = pr[variants[0]]["prepare_data_s"] + pr[variants[0]]["trl_prepare_dataset_s"]
        for label in variants:
            r = pr[label]
            total = r["prepare_data_s"] + r["trl_prepare_dataset_s"]
            desc = (
                f"{r['tokenize_procs']} / {r['num_proc']} (as generated)"
                if label.startswith("as_generated")
                else f"{r['tokenize_procs']} / {r['num_proc']} (all cores, forced)"
            )
            config = "alpaca_lora_packing" if label.endswith("packing") else "alpaca_lora"
            ratio = f"{total / base:.2f}x" if not label.endswith("packing") else ""
            add(
                f"| {config} | {desc} | {r['load_tokenizer_s']:.2f} | {r['open_dataset_s']:.2f} | {r['check_data_s']:.2f} |"
                f" {r['tokenize_s']:.2f} | {r['prepare_data_s']:.2f} | {r['trl_prepare_dataset_s']:.2f} | {total:.2f} |"
                f" {ratio} |"
            )
        add("")
        add(
            "TRL's passes over the program's tokenized rows (as generated): "
            + "; ".join(
                f"{label.replace('as_generated', 'alpaca_lora').replace('_packing', '_packing')}: "
                + ", ".join(
                    f"{name} {sec:.2f} s" for name, sec in pr[label]["trl_passes_s"].items()
                )
                for label in variants
                if label.startswith("as_generated")
            )
            + "."
        )
        add("")
        d = pr["dry_run"]
        add(
            f"Cross-check: `train.py --dry-run` takes {d['wall_s']:.2f} s wall against {d['import_s']:.2f} s for"
            f" importing datasets + transformers + accelerate + torch alone: {d['minus_import_s']:.2f} s for the data"
            f" (median of {p['dry_runs']} pair(s)). The program's rule: `DATASET_NUM_PROC = {pr.get('num_proc_rule')}`"
            f" = {pr['as_generated']['num_proc']} on this {pr['cores']}-core machine, used for its own tokenization only"
            f" from {pr.get('num_proc_threshold')} rows on"
            + (
                "; TRL gets it as `dataset_num_proc` whatever the row count."
                if pr.get("trl_gets_num_proc")
                else "."
            )
        )
        add("")
        add(
            f"Command: `{command}` (section 4: `{fmt_cmd(pr[variants[0]]['cmd'])}`, and with"
            f" `--num-proc {pr['cores']} --force-num-proc`; `{fmt_cmd(d['cmd'])}`)."
        )
        add("")
        add(mline)
        add("")

    if "memory" in results:
        me = results["memory"]
        q = me["qlora"]
        add("## 5. Peak memory: LoRA against QLoRA (nf4)")
        add("")
        add(
            f"The generated program, same model and settings ({p['warmup'] + p['steps']['nopack']} steps, no packing);"
            " QLoRA = benchmarks/configs/alpaca_qlora.yaml (quantization nf4, compute dtype float32, double"
            " quantization). Max RSS of the training process (`wait4` rusage)."
        )
        add("")
        add(
            "| variant | parameters | model storage MB | max RSS MB | RSS ratio to LoRA | real tokens/s | wall s |"
        )
        add("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
        params = f"{model['parameters']:,} (trainable {q['trainable_parameters']:,})"
        add(
            f"| LoRA (fp32 base) | {params} | {me['lora_model_storage_mb']:.1f} | {me['lora_maxrss_mb']:.0f} | 1.00 |"
            f" {me['lora_tokens_per_s']:.1f} | {median([r['wall_s'] for r in me['lora_runs']]):.1f} |"
        )
        add(
            f"| QLoRA nf4 | {params} | {q['model_storage_mb']:.1f} | {q['maxrss_mb']:.0f} |"
            f" {q['maxrss_mb'] / me['lora_maxrss_mb']:.2f} | {q['tokens_per_s']:.1f} | {q['wall_s']:.1f} |"
        )
        add("")
        scale = []
        if me.get("trl_import_maxrss_mb"):
            scale.append(
                f'`python -c "from trl import SFTTrainer"` alone peaks at {me["trl_import_maxrss_mb"]:.0f} MB'
            )
        imp = me.get("import_maxrss_mb")
        if imp:
            scale.append(
                f"`import torch` at {imp['torch']:.0f} MB and `import torch, bitsandbytes` at"
                f" {imp['torch + bitsandbytes']:.0f} MB (+{imp['torch + bitsandbytes'] - imp['torch']:.0f} MB for the"
                " bitsandbytes library alone)"
            )
        if scale:
            add(
                "For scale: "
                + "; ".join(scale)
                + ". Model storage = parameters + buffers as stored (4-bit weights"
                " counted packed)."
            )
            add("")
        add(
            f"Command: `{command}` (section 5: `{fmt_cmd(q['cmd'])}` against the LoRA runs of section 2)."
        )
        add("")
        add(mline)
        add("")

    add("## Findings")
    add("")
    for finding in findings(results):
        add(f"- {finding}")
    add("")
    return "\n".join(lines)


def findings(results: dict) -> list[str]:
    """What the numbers show about the generated programs (reported, not fixed, here)."""
    out: list[str] = []
    c = results.get("compile")
    if c:
        med = c["medians_s"]
        trl = med["trl_import"]
        missed = [
            k
            for k in ("build_warm", "build_changed", "build_cold")
            if med[k] > TARGETS["build_s"] or med[k] / trl > TARGETS["build_share_of_trl_import"]
        ]
        if med["validate"] > TARGETS["validate_s"]:
            missed.insert(0, "validate")
        ph = c.get("cold_phases_s")
        if missed:
            text = (
                "Compile latency misses its target for "
                + ", ".join(
                    f"{k} ({med[k]:.3f} s, {med[k] / trl:.1%} of the TRL import)" for k in missed
                )
                + "."
            )
            if ph and "build_cold" in missed:
                text += (
                    f" In a cold build black takes {ph['black: import + format']:.3f} s (importing it"
                    f" {ph['of which black import']:.3f} s, then formatting every top-level piece) and compiling the"
                    f" Jinja templates {ph['compile Jinja templates']:.3f} s, of {med['build_cold']:.3f} s; the"
                    f" warm cache skips both ({med['build_warm']:.3f} s). Fix: most pieces come from the templates"
                    " alone and do not depend on the config: format them once at release time (ship a read-only"
                    " seed of the black cache, or make the templates emit black-clean code and run black only on"
                    " the pieces that interpolate config values), and ship the templates precompiled"
                    " (jinja2 `compile_templates` + `ModuleLoader`); the changed-config build"
                    f" ({med['build_changed']:.3f} s) pays the black import for one changed value."
                )
            out.append(text)
        else:
            out.append(
                f"Compile latency meets every target (validate {med['validate']:.3f} s, build warm"
                f" {med['build_warm']:.3f} s / changed {med['build_changed']:.3f} s / cold {med['build_cold']:.3f} s,"
                f" TRL import {trl:.2f} s)."
            )
    t = results.get("throughput")
    if t:
        for mode in ("nopack", "pack"):
            s = t[mode]
            name = "with packing" if mode == "pack" else "without packing"
            state = (
                "meets"
                if s["ratio_best_tokens_per_s"] >= TARGETS["tokens_per_s_ratio"]
                else "MISSES"
            )
            out.append(
                f"Throughput {name}: generated / hand-written = {s['ratio_best_tokens_per_s']:.3f}x real tokens/s"
                f" per-step best ({s['ratio_tokens_per_s']:.3f}x median of runs"
                + (
                    f"; {s['ratio_best_steps_per_s']:.3f}x steps/s on the same examples; median per-step time"
                    f" ratio {s['median_best_step_time_ratio']:.3f}"
                    if s["same_examples"]
                    else "; the two train other examples per step"
                )
                + f"); {state} the 0.97x target. Wall time for the same number of steps"
                f" {s['ratio_wall']:.3f}x; start to first step"
                f" {s['generated']['start_to_first_step_s']:.1f} s against {s['handwritten']['start_to_first_step_s']:.1f} s;"
                f" TRL's dataset preparation inside SFTTrainer {s['generated']['trl_prepare_dataset_s']:.2f} s against"
                f" {s['handwritten']['trl_prepare_dataset_s']:.2f} s (the hand-written one tokenizes there)."
                + (
                    " The generated program batches by length, the hand-written one at random: the gain is"
                    " the padding it avoids (next findings)."
                    if s.get("program_sampling") == "group_by_length" and mode == "nopack"
                    else ""
                )
            )
        vs = (t.get("whatif") or {}).get("vs_handwritten")
        if vs:
            state = (
                "meets"
                if vs["ratio_best_tokens_per_s"] >= TARGETS["tokens_per_s_ratio"]
                else "MISSES"
            )
            out.append(
                f"Program overhead alone (no packing; the generated program switched to the hand-written one's"
                f" random sampler, so both train the same examples at every step): {vs['ratio_best_tokens_per_s']:.3f}x"
                f" real tokens/s per-step best ({vs['ratio_tokens_per_s']:.3f}x median of runs), median per-step time"
                f" ratio {vs['median_best_step_time_ratio']:.3f}; {state} the 0.97x target."
            )
    pd = results.get("padding")
    # the best unpacked configuration measured: length-grouped batches (the program's own, or the what-if)
    grouped = None
    if t and pd:
        if t.get("program_sampling") == "group_by_length":
            grouped = (
                t["nopack"]["generated"],
                pd["nopack"],
                "the program's own length-grouped batches",
            )
        elif t.get("whatif") and t["whatif"]["sampling"] == "group_by_length":
            grouped = (t["whatif"], pd["nopack_whatif"], "length-grouped batches (what-if)")
    if grouped:
        gb, gpad, gdesc = grouped
        pk = t["pack"]["generated"]
        ab = pd.get("attention_bench")
        slower = pk["best_tokens_per_s"] < gb["best_tokens_per_s"]
        out.append(
            ("Packing is slower than not packing: " if slower else "Packing against not packing: ")
            + f"with packing the program trains {pk['best_tokens_per_s']:.1f} real tokens/s, against"
            f" {gb['best_tokens_per_s']:.1f} without packing with {gdesc}"
            f" ({pk['best_tokens_per_s'] / gb['best_tokens_per_s']:.2f}x; per-step best), although 100% of its"
            f" processed tokens are real against {gpad['real_share']:.1%}. The program sets `padding_free=PACKING or"
            " PADDING_FREE` (TRL forces padding-free for BFD packing anyway), which TRL documents as supported with"
            " FlashAttention 2/3 only, and leaves `ATTN_IMPLEMENTATION = None`, so transformers picks `sdpa`, which"
            " runs each batch as one flattened sequence of"
            f" {pd['pack']['processed'] // pd['pack']['batches']} tokens under a block-causal mask: only"
            f" {pd['pack']['attention_useful_share']:.1%} of the attention scores it computes are useful (against"
            f" {gpad['attention_useful_share']:.1%} unpacked)"
            + (
                f", and forward + backward on the same sequences takes {ab['as_run_s'] / ab['grouped_s']:.2f}x as long as"
                " in unpacked, length-grouped batches"
                if ab
                else ""
            )
            + ". Fix: with packing (or padding_free), emit a variable-length attention kernel where one is available"
            ' (`attn_implementation="flash_attention_2"` on CUDA with flash-attn installed; TRL\'s collator already'
            " passes `cu_seq_lens`), and otherwise (CPU, or no flash-attn) say so in `plan` and at start-up and"
            " recommend packing off with length grouping; a `packing: auto` could choose."
        )
    tok = results.get("tokenization")
    if tok:
        if tok["rows_differ"]:
            out.append(
                f"Tokenization boundary: the generated program tokenizes the prompt's pieces separately and"
                f" concatenates the ids, so {tok['rows_differ']} of {tok['rows']} rows get a different token sequence"
                f" than the same prompt text tokenized whole, as it is at inference ({tok['token_delta']:+d} tokens in"
                " all for the whole-text tokenization). Fix: tokenize each run of consecutive non-loss segments as one"
                " string and split only at the prompt/response boundary (or, like TRL, tokenize prompt and"
                " prompt+response and take the common prefix)."
            )
        else:
            out.append(
                f"Tokenization boundary: every prompt is tokenized whole, as at inference: 0 of {tok['rows']} rows"
                " differ from the prompt text tokenized in one piece (checked row by row against the program's own"
                " `tokenize_batch`)."
            )
    if pd:
        n, w = pd["nopack"], pd["nopack_whatif"]
        wi = t.get("whatif") if t else None
        measured = ""
        if wi:
            measured = (
                f"; measured in section 2: {t['nopack']['generated']['best_tokens_per_s']:.1f} real tokens/s"
                f" as generated against {wi['best_tokens_per_s']:.1f} with `{wi['sampling']}` sampling"
                f" ({t['nopack']['generated']['best_tokens_per_s'] / wi['best_tokens_per_s']:.2f}x, per-step best;"
                f" {t['nopack']['generated']['tokens_per_s'] / wi['tokens_per_s']:.2f}x median of runs)"
            )
        if n["sampling"] == "group_by_length":
            out.append(
                f"Padding without packing: the program batches examples of similar length (GROUP_BY_LENGTH = True):"
                f" {n['real_share']:.1%} of its processed tokens are real, against {w['real_share']:.1%} with TRL's"
                f" default random sampling ({w['processed'] / n['processed']:.2f}x the processed tokens){measured}."
            )
        else:
            out.append(
                f"Padding without packing: only {n['real_share']:.1%} of the processed tokens are real"
                f" ({n['processed'] - n['real']:,} padding tokens per epoch) with the random sampler the program uses;"
                f' `train_sampling_strategy="group_by_length"` would raise it to {w["real_share"]:.1%}'
                f" ({n['processed'] / w['processed']:.2f}x fewer processed tokens){measured}. Fix: when packing is off,"
                ' emit `train_sampling_strategy="group_by_length"` in SFTConfig.'
            )
        pk = pd["pack"]
        out.append(
            f"Padding with packing: {pk['real_share']:.1%} real tokens (target >= 95%:"
            f" {'met' if pk['real_share'] >= TARGETS['packed_real_share'] else 'MISSED'})."
        )
    pr = results.get("prep")
    if pr:
        one = pr["as_generated"]
        allc = next(pr[k] for k in pr if k.startswith("all_cores"))
        passes = ", ".join(
            f"{name.lower()} {sec:.2f} s" for name, sec in one["trl_passes_s"].items()
        )
        if one["trl_prepare_dataset_s"] < 0.1 * one["prepare_data_s"]:
            out.append(
                f"Data preparation: {one['prepare_data_s']:.2f} s in the program; TRL adds only"
                f" {one['trl_prepare_dataset_s']:.2f} s on the tokenized rows."
            )
        else:
            names = " ".join(one["trl_passes_s"]).lower()
            what = []
            if "labels" in names:
                what.append("builds `labels` from `completion_mask` with a per-token Python loop")
            if "truncat" in names:
                what.append("truncates every row to max_length again")
            if "dropping" in names:
                what.append("drops fully masked rows again")
            out.append(
                f"Data preparation: {one['prepare_data_s']:.2f} s in the program (tokenize {one['tokenize_s']:.2f} s), then"
                f" {one['trl_prepare_dataset_s']:.2f} s of TRL passes over the already tokenized rows ({passes}): TRL "
                + ", ".join(what)
                + " — the program has already truncated and filtered them; that is"
                f" {one['trl_prepare_dataset_s'] / one['prepare_data_s']:.0%} on top of the program's own preparation."
                " Fix: emit a `labels` column (-100 off the response) from `tokenize_batch` (TRL then skips its label"
                " pass) and, since the rows are final, pass `dataset_kwargs={'skip_prepare_dataset': True}` when not"
                " packing (with packing, call `trl.pack_dataset` in the program and skip the rest)."
            )
        threshold = pr.get("num_proc_threshold")
        below = (
            f", {threshold - one['rows']} short of the program's {threshold:,}-row threshold"
            if threshold and one["rows"] < threshold
            else ""
        )
        text = (
            f"Tokenization processes: the benchmark data has {one['rows']} rows{below}, so the program tokenizes in"
            f" {one['tokenize_procs']} process(es); with {allc['num_proc']} processes forced its preparation takes"
            f" {allc['prepare_data_s']:.2f} s against {one['prepare_data_s']:.2f} s"
            f" ({allc['prepare_data_s'] / one['prepare_data_s']:.2f}x) and TRL's passes {allc['trl_prepare_dataset_s']:.2f} s"
            f" against {one['trl_prepare_dataset_s']:.2f} s: at this size, more processes buy little here."
            f" `DATASET_NUM_PROC = {pr.get('num_proc_rule')}` is {one['num_proc']} on this {pr['cores']}-core machine"
        )
        if pr.get("trl_gets_num_proc"):
            text += (
                ", and it is passed to TRL as `dataset_num_proc` without the row threshold, so on a 16-core GPU"
                " host TRL's passes each start 8 worker processes even for a 50-row dataset (not measured here:"
                " 2 cores). Fix: pass TRL the same thresholded value as the program's own map."
            )
        else:
            text += "."
        out.append(text)
    me = results.get("memory")
    if me:
        q = me["qlora"]
        out.append(
            f"QLoRA (nf4) on this model: model storage {q['model_storage_mb']:.0f} MB against"
            f" {me['lora_model_storage_mb']:.0f} MB, peak RSS {q['maxrss_mb']:.0f} MB against {me['lora_maxrss_mb']:.0f} MB"
            f" ({q['maxrss_mb'] / me['lora_maxrss_mb']:.2f}x): on a model this small the peak is the Python/torch"
            " stack, activations and optimizer, not the weights (a 90 MB saving)"
            + (
                f", and the bitsandbytes library alone adds"
                f" {me['import_maxrss_mb']['torch + bitsandbytes'] - me['import_maxrss_mb']['torch']:.0f} MB"
                if me.get("import_maxrss_mb")
                else ""
            )
            + f". Real tokens/s {q['tokens_per_s']:.1f} against {me['lora_tokens_per_s']:.1f} (median of runs). QLoRA"
            " only pays off where the weights dominate memory (see gpu_check.py for the 1B model on a GPU). Nothing"
            " to fix in the program for this; a note in `plan` for CPU runs could say that nf4 saves weights only."
        )
    return out


# -- main ---------------------------------------------------------------------------------------


def use_the_venv() -> None:
    """Started with a Python that lacks the training stack: run again with the repository's .venv."""
    import importlib.util

    venv = ROOT / ".venv" / "bin" / "python"
    if importlib.util.find_spec("trl") is None and venv.exists() and Path(sys.executable) != venv:
        os.execv(str(venv), [str(venv), *sys.argv])


def main() -> int:
    use_the_venv()
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick", action="store_true", help="a reduced run (fewer runs and steps) for CI smoke use"
    )
    parser.add_argument(
        "--output", default=str(ROOT / "BENCHMARKS.md"), help="where to write the report"
    )
    parser.add_argument(
        "--sections",
        default="compile,throughput,padding,prep,memory",
        help="comma-separated subset (for development)",
    )
    parser.add_argument(
        "--from-results",
        metavar="JSON",
        help="only re-render the report from a results file (benchmarks/results/latest.json)",
    )
    args = parser.parse_args()
    if args.from_results:
        results = json.loads(Path(args.from_results).read_text())
        args.quick = results["quick"]
        Path(args.output).write_text(report(results, args), encoding="utf-8")
        log(f"wrote {args.output} from {args.from_results}")
        return 0
    p = dict(QUICK if args.quick else FULL)
    sections = set(args.sections.split(","))
    started = time.time()
    results: dict = {
        "params": p,
        "quick": args.quick,
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
        "load_start": loadavg(),
    }
    log("machine and setup")
    results["machine"] = machine()
    setup(results)
    if "compile" in sections:
        bench_compile(results, p)
        bench_build_phases(results)
    if "throughput" in sections:
        bench_throughput(results, p)
    if "padding" in sections:
        bench_padding(results, p)
        bench_attention(results)
    if "prep" in sections:
        bench_prep(results, p)
        bench_tokenization(results)
    if "memory" in sections:
        bench_memory(results, p)
    results["load_end"] = loadavg()
    results["duration_s"] = time.time() - started
    (BENCH / "results").mkdir(exist_ok=True)
    (BENCH / "results" / ("quick.json" if args.quick else "latest.json")).write_text(
        json.dumps(results, indent=1)
    )
    Path(args.output).write_text(report(results, args), encoding="utf-8")
    log(f"wrote {args.output} in {results['duration_s'] / 60:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
