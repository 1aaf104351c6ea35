from __future__ import annotations

import pytest

from mccompile.frontend.graph import find_cycle, run_order


def test_ties_are_broken_by_written_order() -> None:
    nodes = ["c", "a", "b"]
    assert run_order(nodes, {}) == ["c", "a", "b"]


def test_dependencies_come_first() -> None:
    nodes = ["train", "load-a", "concat", "load-b"]
    edges = {"train": ["concat"], "concat": ["load-a", "load-b"]}
    assert run_order(nodes, edges) == ["load-a", "load-b", "concat", "train"]


def test_a_ready_job_written_earlier_runs_first() -> None:
    nodes = ["x", "y", "z"]
    edges = {"x": ["z"]}
    assert run_order(nodes, edges) == ["y", "z", "x"]


def test_cycle_is_a_path() -> None:
    edges = {"a": ["b"], "b": ["c"], "c": ["a"]}
    assert find_cycle(["a", "b", "c"], edges) == ["a", "b", "c", "a"]
    assert find_cycle(["a", "b"], {"a": ["b"]}) is None


def test_run_order_refuses_cycles() -> None:
    with pytest.raises(ValueError):
        run_order(["a", "b"], {"a": ["b"], "b": ["a"]})
