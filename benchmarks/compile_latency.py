"""Compile latency: ``mccompile validate`` / ``build`` against ``from trl import SFTTrainer``.

Runs each command in a fresh process, interleaved in one loop (so a burst of load
on a shared machine hits every command alike), and prints a Markdown table of
medians with each one's share of the TRL import measured in the same run.
Besides wall time it reports the CPU time of each process (user + system),
which other work on the machine disturbs much less.

    python benchmarks/compile_latency.py [--runs 9] [--trl-runs 3]
    python benchmarks/compile_latency.py --update   # also rewrite section 1 of BENCHMARKS.md
    python benchmarks/compile_latency.py --baseline ../other-checkout   # A/B two trees

The mccompile measured is the checkout this script is in (PYTHONPATH is set to
it); its modules are byte-compiled first, as installing it does. Builds: first = an empty
cache folder (the first build after installing: Jinja compiles the templates and black formats
every piece, both into the cache), warm = a primed cache folder, changed = a primed cache and a
learning rate it has never seen, no cache = ``MCCOMPILE_CACHE_DIR=off``.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "tests" / "guide" / "guide_9_8_1_1.yaml"
BENCHMARKS_MD = ROOT / "BENCHMARKS.md"
TARGETS = {  # seconds, and share of the TRL import
    "validate": (0.15, 0.04),
    "build_warm": (0.25, 0.04),
    "build_changed": (0.25, 0.04),
    "build_cold": (0.35, 0.08),
}
SAME: dict[str, bool] = {}  # per tree: the warm and the cold build wrote the same bytes
LABELS = {
    "python": "`python -c pass` (interpreter start)",
    "validate": "`mccompile validate`",
    "build_warm": "`mccompile build`, warm cache",
    "build_changed": "`mccompile build`, changed config (new learning rate each run)",
    "build_cold": "`mccompile build`, first build (empty cache folder)",
    "build_nocache": "`mccompile build`, no cache (`MCCOMPILE_CACHE_DIR=off`)",
    "trl_import": '`python -c "from trl import SFTTrainer"`',
}


def _run(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall s, CPU s) of one child process, run outside the checkout (so PYTHONPATH decides)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(
        cmd,
        env=env,
        cwd=tempfile.gettempdir(),
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def _env(tree: Path | None, **extra: str) -> dict[str, str]:
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    if tree is not None:
        env["PYTHONPATH"] = str(tree)
    env.update(extra)
    return env


def _byte_compile(tree: Path | None) -> None:
    """Write the .pyc files of the mccompile measured, as pip does when it installs."""
    found = subprocess.run(
        [sys.executable, "-c", "import mccompile, os; print(os.path.dirname(mccompile.__file__))"],
        env=_env(tree),
        cwd=tempfile.gettempdir(),
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    env = _env(tree)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    subprocess.run([sys.executable, "-m", "compileall", "-q", found], env=env, check=True)


def measure(
    runs: int, trl_runs: int, trees: dict[str, Path | None], work: Path
) -> dict[str, dict[str, list[tuple[float, float]]]]:
    text = CONFIG.read_text(encoding="utf-8")
    if "learning_rate: 1e-4" not in text:
        raise SystemExit(f"{CONFIG} no longer sets 'learning_rate: 1e-4'; update this script")
    mc = [sys.executable, "-m", "mccompile"]
    times: dict[str, dict[str, list[tuple[float, float]]]] = {}
    for label, tree in trees.items():
        _byte_compile(tree)
        warm = _env(tree, MCCOMPILE_CACHE_DIR=str(work / f"cache-{label}"))
        _run([*mc, "build", str(CONFIG), "-o", str(work / "out"), "--force"], warm)  # prime
        _run([*mc, "validate", str(CONFIG)], warm)
        times[label] = {k: [] for k in LABELS}
    stamp = int(time.time()) % 100000
    for i in range(runs):
        for label, tree in trees.items():
            t = times[label]
            warm = _env(tree, MCCOMPILE_CACHE_DIR=str(work / f"cache-{label}"))
            cold = _env(tree, MCCOMPILE_CACHE_DIR="off")
            out = str(work / f"out-{label}")
            t["python"].append(_run([sys.executable, "-c", "pass"], warm))
            t["validate"].append(_run([*mc, "validate", str(CONFIG)], warm))
            t["build_warm"].append(_run([*mc, "build", str(CONFIG), "-o", out, "--force"], warm))
            changed = work / "changed.yaml"
            lr = f"{1e-4 + (stamp * 100 + i + 1) * 1e-12:.12g}"
            changed.write_text(text.replace("learning_rate: 1e-4", f"learning_rate: {lr}"), "utf-8")
            t["build_changed"].append(
                _run([*mc, "build", str(changed), "-o", out + "-changed", "--force"], warm)
            )
            first = _env(tree, MCCOMPILE_CACHE_DIR=str(work / f"first-{label}-{i}"))
            t["build_cold"].append(
                _run([*mc, "build", str(CONFIG), "-o", out + "-cold", "--force"], first)
            )
            t["build_nocache"].append(
                _run([*mc, "build", str(CONFIG), "-o", out + "-nocache", "--force"], cold)
            )
        if (
            i % max(1, runs // trl_runs) == 0
            and len(times[next(iter(trees))]["trl_import"]) < trl_runs
        ):
            trl = _run([sys.executable, "-c", "from trl import SFTTrainer"], _env(None))
            for label in trees:
                times[label]["trl_import"].append(trl)
    for label in trees:  # the cache changes nothing in what is written
        warm_out, cold_out = work / f"out-{label}", work / f"out-{label}-cold"
        files = sorted(p.relative_to(warm_out) for p in warm_out.rglob("*") if p.is_file())
        SAME[label] = files == sorted(
            p.relative_to(cold_out) for p in cold_out.rglob("*") if p.is_file()
        ) and all((warm_out / f).read_bytes() == (cold_out / f).read_bytes() for f in files)
    while len(times[next(iter(trees))]["trl_import"]) < trl_runs:
        trl = _run([sys.executable, "-c", "from trl import SFTTrainer"], _env(None))
        for label in trees:
            times[label]["trl_import"].append(trl)
    return times


def _median(values: list[tuple[float, float]], which: int) -> float:
    return statistics.median(v[which] for v in values)


def table(t: dict[str, list[tuple[float, float]]]) -> list[str]:
    trl_wall, trl_cpu = _median(t["trl_import"], 0), _median(t["trl_import"], 1)
    lines = [
        "| command | median s | min s | max s | share of TRL import | CPU s (median) |"
        " CPU share of TRL import | target | by wall time | by CPU time |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- | --- |",
    ]
    for key, label in LABELS.items():
        wall = [v[0] for v in t[key]]
        med, cpu = _median(t[key], 0), _median(t[key], 1)
        target, by_wall, by_cpu = "", "", ""
        if key in TARGETS:
            limit, share = TARGETS[key]
            target = f"<= {limit} s and <= {share:.0%}"
            by_wall = _verdict(med <= limit and med / trl_wall <= share)
            by_cpu = _verdict(cpu <= limit and cpu / trl_cpu <= share)
        lines.append(
            f"| {label} | {med:.3f} | {min(wall):.3f} | {max(wall):.3f} | {med / trl_wall:.1%} |"
            f" {cpu:.3f} | {cpu / trl_cpu:.1%} | {target} | {by_wall} | {by_cpu} |"
        )
    return lines


def _verdict(ok: bool) -> str:
    return "met" if ok else "**MISSED**"


def load_average() -> str:
    try:
        return " / ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "?"


def section(times: dict[str, dict[str, list[tuple[float, float]]]], runs: int, load: str) -> str:
    out = [
        "## 1. Compile latency",
        "",
        f"`{CONFIG.relative_to(ROOT).as_posix()}`, fresh processes, median of {runs} runs each"
        f" (TRL import: {len(next(iter(times.values()))['trl_import'])} runs), interleaved in one"
        f" loop; {os.cpu_count()} cores, python {platform.python_version()}; load average"
        f" (1 / 5 / 15 min) {load} at the start, {load_average()} at the end. Shares are of the TRL"
        " import measured in the same loop; CPU = user + system time of the process, less"
        " disturbed by other work on a shared machine than wall time.",
        "",
    ]
    for label, t in times.items():
        if len(times) > 1:
            out += [f"**{label}**", ""]
        out += [*table(t), ""]
        out += [
            f"Output of the warm-cache build byte-identical to the cold build: {SAME.get(label)}.",
            "",
        ]
    out += [
        "What makes a build fast, each measured against the build without it: the templates"
        " compiled by Jinja and black's output of each piece of a program are kept in the cache"
        " folder (mccompile/codegen/cache.py), filled by the first build; a valid config is checked"
        " by a quick schema check without importing jsonschema (mccompile/frontend/fastschema.py;"
        " jsonschema runs only to report errors); the settings at the top of the program are"
        " written as black writes them and kept as they are where mccompile/codegen/verbatim.py"
        " can tell that black would keep them, so a changed config imports no black.",
        "",
        "Command: `python benchmarks/compile_latency.py --update`.",
        "",
    ]
    return "\n".join(out)


def update(text: str, path: Path = BENCHMARKS_MD) -> None:
    """Replace section 1 of the report at ``path`` with ``text``."""
    md = path.read_text(encoding="utf-8")
    pattern = re.compile(r"## 1\. Compile latency\n.*?(?=\n## 2\.)", re.S)
    if not pattern.search(md):
        raise SystemExit("BENCHMARKS.md has no section '## 1. Compile latency' before '## 2.'")
    path.write_text(pattern.sub(lambda _: text, md, count=1), encoding="utf-8")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--trl-runs", type=int, default=3)
    parser.add_argument("--update", action="store_true", help="rewrite section 1 of BENCHMARKS.md")
    parser.add_argument(
        "--baseline", type=Path, help="another checkout, measured in the same loop (A/B)"
    )
    args = parser.parse_args()
    trees: dict[str, Path | None] = {"this checkout": ROOT}
    if args.baseline:
        trees = {"baseline": args.baseline.resolve(), "this checkout": ROOT}
    load = load_average()
    work = Path(tempfile.mkdtemp(prefix="mccompile-latency-"))
    try:
        times = measure(args.runs, args.trl_runs, trees, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    text = section(times, args.runs, load)
    print(text)
    if args.update:
        update(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
