"""The front end's work grows linearly with the number of jobs (counted, not timed)."""

from __future__ import annotations

import sys
from pathlib import Path
from types import FrameType
from typing import Any

from mccompile.frontend import compile_config
from mccompile.frontend.graph import find_cycle, run_order


def _chain(n: int) -> str:
    """A workflow of ``n`` dataset jobs, each reading the one before, then a trainer."""
    lines = [
        "components:",
        "  - {id: data, type: datasets, provider: local, loader: json, data_files: ./x.jsonl}",
        "  - {id: ops, type: datasets}",
        "  - id: trainer",
        "    type: model-trainer",
        "    model: ./model",
        "    dataset: ${input.dataset}",
        "workflows:",
        "  - id: chain",
        "    jobs:",
        "      - {id: j0, component: data}",
    ]
    for i in range(1, n):
        lines.append(
            f"      - {{id: j{i}, component: ops, method: deduplicate,"
            f" input: {{dataset: '${{jobs.j{i - 1}.output}}', columns: [instruction]}}}}"
        )
    lines.append(
        f"      - {{id: train, component: trainer,"
        f" input: {{dataset: '${{jobs.j{n - 1}.output}}'}}}}"
    )
    return "\n".join(lines) + "\n"


def _calls(path: Path) -> int:
    """Function calls (Python and built-in) made while compiling ``path``."""
    count = 0

    def profile(frame: FrameType, event: str, arg: Any) -> None:
        nonlocal count
        if event in ("call", "c_call"):
            count += 1

    sys.setprofile(profile)
    try:
        config, _ = compile_config(path)
    finally:
        sys.setprofile(None)
    assert len(config.workflows[0].jobs) > 1
    return count


def test_validate_is_linear_in_the_number_of_jobs(tmp_path: Path) -> None:
    small, large = tmp_path / "small.yaml", tmp_path / "large.yaml"
    small.write_text(_chain(100))
    large.write_text(_chain(800))
    _calls(small)  # caches (the schema's branches) filled before counting
    ratio = _calls(large) / _calls(small)
    # 8 times the jobs: linear work is about 8 times the calls, quadratic about 64
    assert ratio < 10, ratio


def test_a_long_chain_has_no_recursion_limit() -> None:
    n = 20_000
    nodes = [f"j{i}" for i in range(n)]
    edges = {f"j{i}": [f"j{i - 1}"] for i in range(1, n)}
    assert find_cycle(nodes, edges) is None
    assert run_order(nodes[::-1], edges) == nodes
    edges["j0"] = [f"j{n - 1}"]
    cycle = find_cycle(nodes, edges)
    assert cycle is not None and len(cycle) == n + 1 and cycle[0] == cycle[-1] == "j0"
