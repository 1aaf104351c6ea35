"""mccompile's benchmark suite: one command, all measurements, BENCHMARKS.md at the repository root.

    python benchmarks/run.py            # the full run (about 20 minutes on 2 CPU cores)
    python benchmarks/run.py --quick    # a reduced run for CI smoke use (about 5 minutes)

Run it with the repository's virtual environment (.venv/bin/python): the children it starts
use the same interpreter and the ``mccompile`` script beside it. It works offline
(HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 are set for every child) and writes only under
benchmarks/.cache (data, model, builds, logs), benchmarks/results/ (raw JSON) and
BENCHMARKS.md (or --output).

Measurements (see benchmarks/README.md for how each is taken), one module each:
 1. compile_latency.py (the table, also runnable on its own) and compile_phases.py (where a
    build's time goes): ``mccompile validate`` / ``build`` against ``from trl import SFTTrainer``
 2. throughput.py: the generated program against benchmarks/handwritten_sft.py,
    without and with packing, runs interleaved A B A B
 3. real_tokens.py: the share of real tokens in the generated program's collated batches
 4. data_prep.py: data preparation time of the generated program, one process against all cores
 5. memory.py: peak memory of LoRA against QLoRA (nf4)
benchlib.py holds what they share (paths, settings, child processes, the setup); report.py
renders BENCHMARKS.md. Sections other commands write into BENCHMARKS.md (between
``<!-- section: ... -->`` and ``<!-- end section: ... -->``, e.g. benchmarks/resource_plan.py's
and benchmarks/gpu_check.py's) are kept, after this suite's report.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

import compile_latency
from benchlib import BENCH, FULL, QUICK, ROOT, loadavg, log, machine, setup
from compile_phases import bench_build_phases, bench_compile
from data_prep import bench_prep, bench_tokenization
from memory import bench_memory
from real_tokens import bench_attention, bench_padding
from report import report
from throughput import bench_throughput

SECTION = re.compile(
    r"<!-- section: (?P<name>[\w-]+).*? -->.*?<!-- end section: (?P=name) -->\n?", re.S
)


def with_kept_sections(text: str, path: Path) -> str:
    """``text`` followed by the sections other commands wrote into the file at ``path``."""
    old = path.read_text(encoding="utf-8") if path.exists() else ""
    kept = [m.group(0).rstrip("\n") for m in SECTION.finditer(old)]
    return text.rstrip("\n") + "".join("\n\n" + k for k in kept) + "\n" if kept else text


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
        out = Path(args.output)
        out.write_text(with_kept_sections(report(results, args), out), encoding="utf-8")
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
    out = Path(args.output)
    out.write_text(with_kept_sections(report(results, args), out), encoding="utf-8")
    if "compile" in sections:  # section 1's table: cold / warm builds against the TRL import
        runs = 5 if args.quick else 9
        work = Path(tempfile.mkdtemp(prefix="mccompile-latency-"))
        try:
            times = compile_latency.measure(runs, 3, {"this checkout": ROOT}, work)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        compile_latency.update(compile_latency.section(times, runs, compile_latency.load_average()), out)
    log(f"wrote {args.output} in {results['duration_s'] / 60:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
