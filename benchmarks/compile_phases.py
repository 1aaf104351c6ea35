"""Section 1: compile latency of ``mccompile validate`` / ``build`` against ``from trl import
SFTTrainer``, and a cold build taken apart in-process.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

from benchlib import CACHE, GUIDE_CONFIG, MCCOMPILE, PY, ROOT, base_env, log, median, rel, run_child


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
import mccompile.codegen.render as render
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
