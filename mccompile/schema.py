"""The JSON Schema of the config language: the one source of keys, types and defaults."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

_HERE = Path(__file__).resolve().parent
SCHEMA_NAME = "mccompile.schema.json"


def resource_dir(name: str) -> Path:
    """``templates`` or ``schemas``: inside the installed package, or beside it in a checkout."""
    for candidate in (_HERE / name, _HERE.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"mccompile is installed without its {name}/ folder")


def schema_path() -> Path:
    return resource_dir("schemas") / SCHEMA_NAME


@cache
def schema() -> dict[str, Any]:
    with schema_path().open(encoding="utf-8") as fh:
        data: dict[str, Any] = json.load(fh)
    return data


def defs() -> dict[str, Any]:
    result: dict[str, Any] = schema()["$defs"]
    return result


def trainer_fields() -> dict[str, Any]:
    fields: dict[str, Any] = defs()["model_trainer"]["properties"]
    return fields


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
