"""Section 2: training throughput of the generated program against benchmarks/handwritten_sft.py,
without and with packing, runs interleaved A B A B (real tokens/s, per-step best).
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

from benchlib import (
    BENCH,
    CACHE,
    DATA,
    MODEL,
    PY,
    base_env,
    fresh_datasets_cache,
    loadavg,
    log,
    median,
    program,
    rel,
    run_child,
)


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
        name = {
            "nopack": "lora",
            "pack": "lora_packing",
            "auto": "lora_packing_auto",
            "qlora": "qlora",
        }[mode]
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
            if mode == "nopack":
                # packing: auto decides on the machine: on a CPU, length-grouped batches (unpacked)
                log(f"2. throughput: generated, packing: auto, rep {rep + 1}/{p['reps']}")
                runs.append(training_run("generated", "auto", rep, p))
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
    auto = [r for r in runs if r["mode"] == "auto"]
    if auto:
        a = {
            key: median([r[key] for r in auto])
            for key in ("tokens_per_s", "steps_per_s", "wall_s", "maxrss_mb")
        }
        a.update(best_of(auto))
        a["setup_line"] = program_line(auto[0], "[setup] packing:")
        a["packed"] = any(r["padding_free"] for r in auto)
        a["same_examples_as_nopack"] = all(
            r["all_steps_real"] == g["all_steps_real"]
            for r in auto
            for g in runs
            if g["mode"] == "nopack" and g["kind"] == "generated" and not g["whatif_sampling"]
        )
        summary["auto"] = a
    runs = [r for r in runs if not r["whatif_sampling"] and r["mode"] != "auto"]
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
        s["setup_line"] = program_line(gen[0], "[setup] attention:")
        s["speed_warning"] = program_line(gen[0], "[speed] warning:")
        summary[mode] = s
    results["throughput"] = summary


def program_line(run: dict, start: str) -> str | None:
    """The first line of a run's log that starts with ``start`` (what the program said)."""
    log_path = BENCH.parent / run["log"]
    for line in log_path.read_text(encoding="utf-8", errors="replace").splitlines():
        if line.startswith(start):
            return line
    return None
