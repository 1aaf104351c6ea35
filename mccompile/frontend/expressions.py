"""The ``${...}`` expression language (SPEC 2.2), parsed rather than pasted.

    ${ SOURCE [.PATH] [as TYPE] [| DEFAULT] }
    SOURCE = input | jobs.JOB_ID.output | env | output

``$${`` writes a literal ``${``.  A string that is exactly one expression
keeps the expression's type; an expression inside longer text is
interpolated as text.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

TYPES = ("string", "text", "integer", "number", "boolean", "list", "object", "json")
SOURCES = ("input", "jobs", "env", "output")

_NAME = r"[A-Za-z_][A-Za-z0-9_-]*"
_AS = re.compile(r"\s+as\s+([A-Za-z_]+)\s*$")
_PATH_PART = re.compile(rf"^(?:{_NAME}|[0-9]+)$")


class ExprError(ValueError):
    """A malformed expression; ``offset`` is where in the string it starts."""

    def __init__(self, message: str, offset: int = 0, suggestion: str | None = None) -> None:
        super().__init__(message)
        self.offset = offset
        self.suggestion = suggestion  # "did you mean ...?", kept apart from the message


@dataclass(frozen=True)
class Expr:
    """One ``${...}``: where the value comes from, its type and its default."""

    source: str
    name: str | None = None
    path: tuple[str, ...] = ()
    type: str | None = None
    default: str | None = None
    text: str = ""

    @property
    def has_default(self) -> bool:
        return self.default is not None


@dataclass(frozen=True)
class Interpolation:
    """Text with expressions inside it: always a string."""

    parts: tuple[str | Expr, ...]


Parsed = str | Expr | Interpolation


def has_expression(text: str) -> bool:
    return "${" in text


def parse(text: str) -> Parsed:
    """Parse a config string: plain text, one whole expression, or a mix."""
    if "${" not in text:
        return text
    parts: list[str | Expr] = []
    literal: list[str] = []
    i = 0
    n = len(text)
    while i < n:
        if text.startswith("$${", i):
            literal.append("${")
            i += 3
            continue
        if text.startswith("${", i):
            end = _closing(text, i + 2)
            if end < 0:
                raise ExprError("unterminated '${': missing '}'", i)
            if literal:
                parts.append("".join(literal))
                literal = []
            parts.append(_parse_body(text[i + 2 : end], i, text[i : end + 1]))
            i = end + 1
            continue
        literal.append(text[i])
        i += 1
    if literal:
        parts.append("".join(literal))
    whole = [p for p in parts if not (isinstance(p, str) and not p.strip())]
    if len(whole) == 1 and isinstance(whole[0], Expr):
        return whole[0]
    if all(isinstance(p, str) for p in parts):
        return "".join(p for p in parts if isinstance(p, str))
    return Interpolation(tuple(parts))


def _closing(text: str, start: int) -> int:
    depth = 0
    for j in range(start, len(text)):
        ch = text[j]
        if ch == "{":
            depth += 1
        elif ch == "}":
            if depth == 0:
                return j
            depth -= 1
    return -1


def _parse_body(body: str, offset: int, whole: str) -> Expr:
    default: str | None = None
    if "|" in body:
        body, default = body.split("|", 1)
        default = default.strip()
    ref = body.strip()
    type_: str | None = None
    m = _AS.search(" " + ref)
    if m:
        type_ = m.group(1)
        ref = (" " + ref)[: m.start()].strip()
        if type_ not in TYPES:
            raise ExprError(
                f"unknown type '{type_}' in {whole} (types: {', '.join(TYPES)})", offset
            )
    if not ref:
        raise ExprError(f"empty expression {whole}", offset)
    pieces = [p.strip() for p in ref.split(".")]
    if any(not p for p in pieces) or any(" " in p for p in pieces):
        raise ExprError(f"malformed reference '{ref}' in {whole}", offset)
    source = pieces[0]
    rest = pieces[1:]
    for part in rest:
        if not _PATH_PART.match(part):
            raise ExprError(f"malformed name '{part}' in {whole}", offset)
    if source == "input":
        name = rest[0] if rest else None
        return Expr("input", name, tuple(rest[1:]), type_, default, whole)
    if source == "jobs":
        if len(rest) < 2 or rest[1] != "output":
            raise ExprError(f"a job reference is ${{jobs.JOB_ID.output}}, got {whole}", offset)
        return Expr("jobs", rest[0], tuple(rest[2:]), type_, default, whole)
    if source == "env":
        if len(rest) != 1:
            raise ExprError(f"an environment reference is ${{env.NAME}}, got {whole}", offset)
        return Expr("env", rest[0], (), type_, default, whole)
    if source == "output":
        return Expr("output", None, tuple(rest), type_, default, whole)
    import difflib

    close = difflib.get_close_matches(source, SOURCES, n=1)
    raise ExprError(
        f"unknown source '{source}' in {whole}; expected one of {', '.join(SOURCES)}",
        offset,
        f"did you mean '{close[0]}'?" if close else None,
    )


def convert(value: str, type_: str | None) -> Any:
    """Turn a default's text into a value of ``type_`` (None: keep scalars typed)."""
    if type_ in (None,):
        return _scalar(value)
    if type_ in ("string", "text"):
        return value
    if type_ == "integer":
        try:
            return int(value)
        except ValueError:
            raise ExprError(f"default '{value}' is not an integer") from None
    if type_ == "number":
        try:
            number = float(value)
        except ValueError:
            raise ExprError(f"default '{value}' is not a number") from None
        if not math.isfinite(number):
            raise ExprError(f"default '{value}' is not a finite number")
        return number
    if type_ == "boolean":
        lowered = value.lower()
        if lowered not in ("true", "false"):
            raise ExprError(f"default '{value}' is not a boolean (true or false)")
        return lowered == "true"
    try:
        result = _finite_json(value)
    except json.JSONDecodeError as exc:
        raise ExprError(f"default '{value}' is not valid JSON ({exc.msg})") from None
    except _NotFiniteError:
        raise ExprError(f"default '{value}' holds a number that is not finite") from None
    if type_ == "list" and not isinstance(result, list):
        raise ExprError(f"default '{value}' is not a list")
    if type_ == "object" and not isinstance(result, dict):
        raise ExprError(f"default '{value}' is not an object")
    return result


def _scalar(value: str) -> Any:
    if value in ("null", "~"):
        return None
    if value in ("true", "false"):
        return value == "true"
    if re.fullmatch(r"[-+]?[0-9]+", value):
        return int(value)
    if re.fullmatch(r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?", value):
        number = float(value)
        return number if math.isfinite(number) else value  # 1e999: text, which no number takes
    if value[:1] in "[{":
        try:
            return _finite_json(value)
        except (json.JSONDecodeError, _NotFiniteError):
            return value
    return value


class _NotFiniteError(ValueError):
    """JSON's NaN, Infinity or a number too large for a float."""


def _finite_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise _NotFiniteError(text)
    return number


def _not_finite(text: str) -> Any:
    raise _NotFiniteError(text)


def _finite_json(value: str) -> Any:
    return json.loads(value, parse_float=_finite_float, parse_constant=_not_finite)
