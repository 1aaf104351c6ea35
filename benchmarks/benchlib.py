"""What every section of the benchmark suite shares: paths, settings, child processes, the
machine, the benchmark setup (data, model, builds) and command formatting.
"""

from __future__ import annotations

import json
import os
import platform
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
    "lora_packing_auto": BENCH / "configs" / "alpaca_lora_packing_auto.yaml",
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
