"""Filter conditions (data in the config) compiled to small, readable Python expressions.

Every column name and value reaches the code through ``py`` (a literal); the
operators map to fixed code. A condition given at run time is interpreted by
the program instead (``check_condition`` / ``matches`` in its helpers).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mccompile.codegen.render import py

_COMPARE = {
    "eq": "==",
    "neq": "!=",
    "gt": ">",
    "gte": ">=",
    "lt": "<",
    "lte": "<=",
    "in": "in",
    "not-in": "not in",
}


@dataclass(frozen=True)
class Compiled:
    code: str
    text: str
    columns: tuple[str, ...]
    helpers: frozenset[str]


def compile_condition(cond: dict[str, Any]) -> Compiled:
    """``cond`` as a Python expression over ``row``, with a one-line description."""
    columns: list[str] = []
    helpers: set[str] = set()

    def walk(node: dict[str, Any], top: bool) -> tuple[str, str]:
        if "all" in node or "any" in node:
            key = "all" if "all" in node else "any"
            joiner = " and " if key == "all" else " or "
            parts = [walk(sub, False) for sub in node[key]]
            code = joiner.join(c for c, _ in parts)
            text = joiner.join(t for _, t in parts)
            return (code, text) if top or len(parts) == 1 else (f"({code})", f"({text})")
        if "not" in node:
            code, text = walk(node["not"], False)
            return f"not ({code})", f"not ({text})"
        column = str(node["column"])
        if column not in columns:
            columns.append(column)
        op = node["operator"]
        value = node.get("value")
        subject = f"row[{py(column)}]"
        described = column
        if node.get("length"):
            helpers.add("length")
            subject = f"length({subject})"
            described = f"length of {column}"
        text = f"{described} {op}" + (f" {value!r}" if "value" in node else "")
        if op in _COMPARE:
            return f"{subject} {_COMPARE[op]} {py(value)}", text
        if op == "contains":
            return f"{py(value)} in {subject}", text
        if op == "starts-with":
            return f"str({subject}).startswith({py(value)})", text
        if op == "ends-with":
            return f"str({subject}).endswith({py(value)})", text
        if op == "match":
            helpers.add("re")
            return f"re.search({py(value)}, str({subject})) is not None", text
        helpers.add("is_empty")
        if op == "empty":
            return f"is_empty({subject})", text
        return f"not is_empty({subject})", text

    code, text = walk(cond, True)
    return Compiled(code, text, tuple(columns), frozenset(helpers))
