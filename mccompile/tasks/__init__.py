"""The training tasks: one module each, found here by the ``task:`` name.

A task module holds everything about its task and nothing about the others:

- ``NAME``, ``DESCRIPTION``, ``TEMPLATE`` (its program's template) and ``REQUIREMENTS``
  (packages beyond the common stack) and ``IMPORTS`` (standard-library modules its program
  needs);
- ``FIELDS``: its schema fragment, the trainer keys only this task reads (descriptions and
  defaults), which :mod:`mccompile.schema` joins to the common keys;
- ``SETTING_GROUPS``: the order of its keys in the program's settings block;
- ``data_format(job)`` and ``hidden(fmt)``: the data layout and the keys it never reads;
- ``check(checker, job, where)``: its semantic checks;
- ``program_model(job, values, ref)``: the frozen dataclass its template reads as ``p.task``;
- optionally ``extra_requirements(job)`` (pinned packages its settings choose) and
  ``bundle_files(job, root)`` (files copied beside the program, e.g. GRPO's reward files).

Adding a task is adding a module and a line in ``_MODULES``; see CONTRIBUTING.md.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from mccompile import ir
from mccompile.tasks import classification, dpo, grpo, kto, orpo, reward, sft

DEFAULT = "sft"
_MODULES: tuple[ModuleType, ...] = (sft, classification, dpo, kto, orpo, reward, grpo)
REGISTRY: dict[str, ModuleType] = {m.NAME: m for m in _MODULES}


def names() -> list[str]:
    return list(REGISTRY)


def get(name: Any) -> ModuleType:
    """The module of task ``name`` (the default task's for an unknown name)."""
    return REGISTRY.get(name, REGISTRY[DEFAULT]) if isinstance(name, str) else REGISTRY[DEFAULT]


def of_job(job: ir.Job) -> ModuleType:
    return get(ir.lit(job.fields.get("task", ir.Lit(DEFAULT))))


def holders(key: str) -> list[str]:
    """The tasks whose fragment holds ``key``."""
    return [name for name, module in REGISTRY.items() if key in module.FIELDS]
