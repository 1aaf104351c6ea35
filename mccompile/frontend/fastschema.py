"""A quick yes/no check of a document against the JSON Schema, without jsonschema.

Importing jsonschema costs more than the rest of ``mccompile validate``; most
configs are valid, and a valid config needs no error messages. :func:`is_valid`
says True only when it is sure the document is valid under draft 2020-12 for
the keywords below; anything else it does not know (a keyword, a ``$ref`` that
is not local, a value that is not plain JSON data) makes it answer False, and
the caller then runs jsonschema itself, which reports the errors. So a wrong
False only costs time; tests check on every config in the repository that a
True always agrees with jsonschema.
"""

from __future__ import annotations

import math
import re
from functools import cache
from typing import Any

_ANNOTATIONS = frozenset(
    {"description", "default", "title", "examples", "deprecated", "$comment", "$schema", "$id"}
)


class _UnsureError(Exception):
    """The check cannot decide exactly as jsonschema would."""


def is_valid(schema: dict[str, Any], data: Any) -> bool:
    """True only if ``data`` is certainly valid against ``schema``."""
    try:
        ok, _ = _Checker(schema).check(schema, data)
    except (_UnsureError, RecursionError):
        return False
    return ok


@cache
def _snake(word: str) -> str:
    return re.sub(r"([A-Z])", lambda m: "_" + m.group(1).lower(), word)


@cache
def _pattern(text: str) -> re.Pattern[str]:
    return re.compile(text)


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
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise _UnsureError
        return "object"
    raise _UnsureError


def _is_type(value: Any, name: str) -> bool:
    if isinstance(value, float) and not math.isfinite(value):
        return False  # no number type takes .nan or .inf (mccompile's rule, as validate's)
    actual = _json_type(value)
    if name == actual:
        return True
    if name == "number":
        return actual == "integer"
    if name == "integer":
        return False  # 4.0 is not an integer here (mccompile's own rule, stricter than JSON's)
    if name in ("null", "boolean", "integer", "string", "array", "object"):
        return False
    raise _UnsureError


def _equal(a: Any, b: Any) -> bool:
    ta, tb = _json_type(a), _json_type(b)
    numbers = ("integer", "number")
    if ta in numbers and tb in numbers:
        return bool(a == b)
    if ta != tb:
        return False
    if ta == "array":
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b, strict=True))
    if ta == "object":
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    return bool(a == b)


class _Checker:
    def __init__(self, root: dict[str, Any]) -> None:
        self.root = root

    def _resolve(self, ref: str) -> Any:
        if not ref.startswith("#/"):
            raise _UnsureError
        node: Any = self.root
        for raw in ref[2:].split("/"):
            part = raw.replace("~1", "/").replace("~0", "~")
            if not isinstance(node, dict) or part not in node:
                raise _UnsureError
            node = node[part]
        return node

    def check(self, schema: Any, data: Any) -> tuple[bool, set[str]]:
        """(valid, the object keys this schema evaluated, for unevaluatedProperties)."""
        if schema is True:
            return True, set()
        if schema is False:
            return False, set()
        if not isinstance(schema, dict):
            raise _UnsureError
        seen: set[str] = set()
        ok = True
        for word, value in schema.items():
            if word in _ANNOTATIONS or word in ("$defs", "unevaluatedProperties"):
                continue
            handler = getattr(self, "_k_" + _snake(word.lstrip("$")), None)
            if handler is None:
                raise _UnsureError
            good, keys = handler(value, data, schema)
            seen |= keys
            ok = ok and good
        if "unevaluatedProperties" in schema and ok and isinstance(data, dict):
            rest = schema["unevaluatedProperties"]
            for key in data:
                if key not in seen:
                    good, _ = self.check(rest, data[key])
                    ok = ok and good
                    seen.add(key)
        return ok, seen

    # -- keywords: each returns (valid, evaluated keys) --------------------------------------

    def _k_ref(self, ref: Any, data: Any, _: dict[str, Any]) -> tuple[bool, set[str]]:
        if not isinstance(ref, str):
            raise _UnsureError
        return self.check(self._resolve(ref), data)

    def _k_type(self, names: Any, data: Any, _: dict[str, Any]) -> tuple[bool, set[str]]:
        names = [names] if isinstance(names, str) else names
        return any(_is_type(data, n) for n in names), set()

    def _k_enum(self, options: Any, data: Any, _: dict[str, Any]) -> tuple[bool, set[str]]:
        return any(_equal(data, o) for o in options), set()

    def _k_const(self, value: Any, data: Any, _: dict[str, Any]) -> tuple[bool, set[str]]:
        return _equal(data, value), set()

    def _k_any_of(self, subs: Any, data: Any, _: dict[str, Any]) -> tuple[bool, set[str]]:
        results = [self.check(s, data) for s in subs]  # every branch: annotations of all valid
        keys = set().union(*(k for good, k in results if good))
        return any(good for good, _ in results), keys

    def _k_one_of(self, subs: Any, data: Any, _: dict[str, Any]) -> tuple[bool, set[str]]:
        results = [self.check(s, data) for s in subs]
        valid = [k for good, k in results if good]
        return len(valid) == 1, (valid[0] if len(valid) == 1 else set())

    def _k_all_of(self, subs: Any, data: Any, _: dict[str, Any]) -> tuple[bool, set[str]]:
        results = [self.check(s, data) for s in subs]
        return all(good for good, _ in results), set().union(*(k for _, k in results))

    def _k_not(self, sub: Any, data: Any, _: dict[str, Any]) -> tuple[bool, set[str]]:
        return not self.check(sub, data)[0], set()

    def _k_if(self, sub: Any, data: Any, schema: dict[str, Any]) -> tuple[bool, set[str]]:
        good, keys = self.check(sub, data)
        branch = schema.get("then" if good else "else", True)
        ok, more = self.check(branch, data)
        return ok, (keys | more) if ok else set()

    def _k_then(self, *_: Any) -> tuple[bool, set[str]]:  # with "if"
        return True, set()

    _k_else = _k_then

    def _k_properties(self, props: Any, data: Any, _: dict[str, Any]) -> tuple[bool, set[str]]:
        if _json_type(data) != "object":
            return True, set()
        ok = True
        keys = set()
        for key, sub in props.items():
            if key in data:
                keys.add(key)
                ok = self.check(sub, data[key])[0] and ok
        return ok, keys

    def _k_additional_properties(
        self, sub: Any, data: Any, schema: dict[str, Any]
    ) -> tuple[bool, set[str]]:
        if "patternProperties" in schema:
            raise _UnsureError
        if not isinstance(data, dict):
            return True, set()
        known = schema.get("properties", {})
        extra = [k for k in data if k not in known]
        return all(self.check(sub, data[k])[0] for k in extra), set(extra)

    def _k_required(self, names: Any, data: Any, _: dict[str, Any]) -> tuple[bool, set[str]]:
        if not isinstance(data, dict):
            return True, set()
        return all(n in data for n in names), set()

    def _k_items(self, sub: Any, data: Any, schema: dict[str, Any]) -> tuple[bool, set[str]]:
        if "prefixItems" in schema:
            raise _UnsureError
        if not isinstance(data, list):
            return True, set()
        return all(self.check(sub, item)[0] for item in data), set()

    def _k_min_items(self, n: Any, data: Any, _: dict[str, Any]) -> tuple[bool, set[str]]:
        return not isinstance(data, list) or len(data) >= n, set()

    def _k_max_items(self, n: Any, data: Any, _: dict[str, Any]) -> tuple[bool, set[str]]:
        return not isinstance(data, list) or len(data) <= n, set()

    def _k_unique_items(self, flag: Any, data: Any, _: dict[str, Any]) -> tuple[bool, set[str]]:
        if not flag or not isinstance(data, list):
            return True, set()
        if not all(isinstance(x, str) for x in data):
            raise _UnsureError  # jsonschema's own rules for numbers, bools and containers
        return len(set(data)) == len(data), set()

    def _number(self, data: Any) -> bool:
        return _json_type(data) in ("integer", "number")

    def _k_minimum(self, n: Any, data: Any, _: dict[str, Any]) -> tuple[bool, set[str]]:
        return not self._number(data) or data >= n, set()

    def _k_maximum(self, n: Any, data: Any, _: dict[str, Any]) -> tuple[bool, set[str]]:
        return not self._number(data) or data <= n, set()

    def _k_exclusive_minimum(self, n: Any, data: Any, _: dict[str, Any]) -> tuple[bool, set[str]]:
        return not self._number(data) or data > n, set()

    def _k_exclusive_maximum(self, n: Any, data: Any, _: dict[str, Any]) -> tuple[bool, set[str]]:
        return not self._number(data) or data < n, set()

    def _k_min_length(self, n: Any, data: Any, _: dict[str, Any]) -> tuple[bool, set[str]]:
        return not isinstance(data, str) or len(data) >= n, set()

    def _k_max_length(self, n: Any, data: Any, _: dict[str, Any]) -> tuple[bool, set[str]]:
        return not isinstance(data, str) or len(data) <= n, set()

    def _k_pattern(self, text: Any, data: Any, _: dict[str, Any]) -> tuple[bool, set[str]]:
        return not isinstance(data, str) or _pattern(text).search(data) is not None, set()
