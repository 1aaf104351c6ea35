"""The JSON Schema of the config language: the one source of keys, types and defaults."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from mccompile.assets import resource_dir

SCHEMA_NAME = "mccompile.schema.json"


def schema_path() -> Path:
    return resource_dir("schemas") / SCHEMA_NAME


def common_schema() -> dict[str, Any]:
    """The schema file: every key but the tasks' own."""
    with schema_path().open(encoding="utf-8") as fh:
        data: dict[str, Any] = json.load(fh)
    return data


@cache
def schema() -> dict[str, Any]:
    """The whole language: the schema file with each task's keys joined to the trainer.

    The trainer takes the keys of the task it names: one ``if task is X then X's keys``
    branch per task, and ``unevaluatedProperties: false`` for the rest (as the datasets
    component does for ``provider`` and ``method``).
    """
    from mccompile import tasks

    data = common_schema()
    trainer = data["$defs"]["model_trainer"]
    trainer.pop("additionalProperties", None)
    task = trainer["properties"]["task"]
    task["anyOf"] = [{"enum": tasks.names()}]
    task["default"] = tasks.DEFAULT
    task["description"] = "; ".join(f"{m.NAME}: {m.DESCRIPTION}" for m in tasks.REGISTRY.values())
    branches = []
    for name, module in tasks.REGISTRY.items():
        condition: dict[str, Any] = {"properties": {"task": {"const": name}}}
        if name != tasks.DEFAULT:  # no task key means the default task
            condition["required"] = ["task"]
        branches.append({"if": condition, "then": {"properties": module.FIELDS}})
    trainer["allOf"] = branches
    trainer["unevaluatedProperties"] = False
    return data


def schema_text() -> str:
    """The assembled schema as ``mccompile schema`` prints it."""
    return json.dumps(schema(), indent=2, ensure_ascii=False) + "\n"


def defs() -> dict[str, Any]:
    result: dict[str, Any] = schema()["$defs"]
    return result


def trainer_fields(task: str | None = None) -> dict[str, Any]:
    """The trainer's keys for ``task`` (common keys, then the task's); every task's without one."""
    trainer = defs()["model_trainer"]
    fields: dict[str, Any] = dict(trainer["properties"])
    for branch in trainer["allOf"]:
        if task is None or branch["if"]["properties"]["task"]["const"] == task:
            for key, spec in branch["then"]["properties"].items():
                fields.setdefault(key, spec)
    return fields


def task_fields(task: str) -> dict[str, Any]:
    """The keys only ``task`` reads."""
    for branch in defs()["model_trainer"]["allOf"]:
        if branch["if"]["properties"]["task"]["const"] == task:
            fields: dict[str, Any] = branch["then"]["properties"]
            return fields
    return {}


def _branches(kind_key: str) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for branch in defs()["datasets"]["allOf"]:
        cond = branch["if"]["properties"]
        if kind_key in cond:
            out[cond[kind_key]["const"]] = branch["then"]["properties"]
    return out


def loader_fields(provider: str) -> dict[str, Any]:
    """Fields of a ``provider:`` loader (without id/type)."""
    return _branches("provider").get(provider, {})


def operation_fields(method: str) -> dict[str, Any]:
    """Fields of a ``method:`` operation."""
    return _branches("method").get(method, {})


def common_fields() -> dict[str, Any]:
    props: dict[str, Any] = defs()["datasets"]["properties"]
    return props


def providers() -> list[str]:
    return list(_branches("provider"))


def methods() -> list[str]:
    return list(_branches("method"))


def field_types(field: dict[str, Any]) -> set[str]:
    """The JSON types a field takes, besides an expression."""
    out: set[str] = set()
    for sub in [field, *field.get("anyOf", [])]:
        t = sub.get("type")
        if isinstance(t, str):
            out.add(t)
        elif isinstance(t, list):
            out.update(t)
        if "enum" in sub:
            out.update(_json_type(v) for v in sub["enum"])
        if "const" in sub:
            out.add(_json_type(sub["const"]))
    return out


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "object"
