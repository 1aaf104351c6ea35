"""The job graph: run order (ties broken by written order) and cycles."""

from __future__ import annotations

import heapq
from collections.abc import Mapping, Sequence


def find_cycle(nodes: Sequence[str], edges: Mapping[str, Sequence[str]]) -> list[str] | None:
    """Return one cycle as a path ``[a, b, ..., a]`` (a depends on b), or None.

    A depth-first search with its own stack (a chain of thousands of jobs is no
    deeper for it than two), each edge followed once.
    """
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    for root in nodes:
        if root in state:
            continue
        state[root] = 1
        path = [root]
        todo = [iter(edges.get(root, ()))]
        while todo:
            dep = next(todo[-1], None)
            if dep is None:
                todo.pop()
                state[path.pop()] = 2
            elif dep not in state:
                state[dep] = 1
                path.append(dep)
                todo.append(iter(edges.get(dep, ())))
            elif state[dep] == 1:
                return path[path.index(dep) :] + [dep]
    return None


def run_order(nodes: Sequence[str], edges: Mapping[str, Sequence[str]]) -> list[str]:
    """Topological order where every job follows what it depends on.

    Among jobs that are ready, the one written first runs first. ``edges``
    maps a job to the jobs it depends on; the graph must be acyclic.
    """
    index = {n: i for i, n in enumerate(nodes)}
    waiting = {n: len(set(edges.get(n, ()))) for n in nodes}
    dependents: dict[str, list[str]] = {n: [] for n in nodes}
    for node in nodes:
        for dep in set(edges.get(node, ())):
            dependents[dep].append(node)
    ready = [index[n] for n in nodes if waiting[n] == 0]
    heapq.heapify(ready)
    order: list[str] = []
    while ready:
        node = nodes[heapq.heappop(ready)]
        order.append(node)
        for nxt in dependents[node]:
            waiting[nxt] -= 1
            if waiting[nxt] == 0:
                heapq.heappush(ready, index[nxt])
    if len(order) != len(nodes):
        raise ValueError("the job graph has a cycle")
    return order
