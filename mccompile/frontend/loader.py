"""Load YAML safely, keeping the source position of every key and value.

The guide's YAML is read as its authors meant it, which is YAML 1.2 rather
than PyYAML's YAML 1.1: ``5e-5`` is a number, ``no``/``on``/``yes`` are
strings, ``1:30`` is not sexagesimal and ``2024-01-01`` is not a date.
Duplicate keys are errors instead of the last one silently winning, and the
size of a document (bytes, nesting, alias expansion) is bounded.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mccompile.diagnostics import Diagnostics, Path_, Position

MAX_BYTES = 2 * 1024 * 1024
MAX_DEPTH = 64
MAX_NODES = 200_000

_BaseLoader: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_BaseLoader):  # type: ignore[misc, valid-type]
    """SafeLoader with YAML 1.2 core-schema scalars."""


_Loader.yaml_implicit_resolvers = {}
for _tag, _regexp, _first in [
    (
        "tag:yaml.org,2002:bool",
        r"^(?:true|True|TRUE|false|False|FALSE)$",
        "tTfF",
    ),
    (
        "tag:yaml.org,2002:int",
        r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$",
        "-+0123456789",
    ),
    (
        "tag:yaml.org,2002:float",
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$",
        "-+0123456789.",
    ),
    ("tag:yaml.org,2002:null", r"^(?:~|null|Null|NULL|)$", ["~", "n", "N", ""]),
    ("tag:yaml.org,2002:merge", r"^(?:<<)$", "<"),
]:
    _Loader.add_implicit_resolver(_tag, re.compile(_regexp), list(_first))

_STR = "tag:yaml.org,2002:str"
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_BOOL = "tag:yaml.org,2002:bool"
_NULL = "tag:yaml.org,2002:null"
_MERGE = "tag:yaml.org,2002:merge"
_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"


@dataclass
class Document:
    """Plain data (dicts, lists, scalars) plus where each part was written."""

    file: str
    data: Any
    value_pos: dict[Path_, Position] = field(default_factory=dict)
    key_pos: dict[Path_, Position] = field(default_factory=dict)
    # values already reported by the loader (a bad tag): later stages stay quiet about them
    reported: set[Path_] = field(default_factory=set)

    def was_reported(self, path: Path_) -> bool:
        return any(path[: len(p)] == p for p in self.reported)

    def pos(self, path: Path_) -> Position | None:
        """Where the value at ``path`` starts, or its nearest written ancestor."""
        for i in range(len(path), -1, -1):
            found = self.value_pos.get(path[:i])
            if found is not None:
                return found
        return None

    def kpos(self, path: Path_) -> Position | None:
        """Where the key that holds ``path`` is written (for "unknown key")."""
        return self.key_pos.get(path) or self.pos(path)

    def rename(self, old: Path_, new: Path_) -> None:
        """Move the positions recorded under ``old`` to ``new``."""
        n = len(old)
        for table in (self.value_pos, self.key_pos):
            for p in [p for p in table if p[:n] == old]:
                table[new + p[n:]] = table.pop(p)
        for p in [p for p in self.reported if p[:n] == old]:
            self.reported.discard(p)
            self.reported.add(new + p[n:])


def _position(node: yaml.Node) -> Position:
    return Position(node.start_mark.line + 1, node.start_mark.column + 1)


class _Builder:
    def __init__(self, doc: Document, diags: Diagnostics) -> None:
        self.doc = doc
        self.diags = diags
        self.nodes = 0

    def build(self, node: yaml.Node, path: Path_, depth: int) -> Any:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise _TooLargeError(
                f"the document expands to more than {MAX_NODES} values"
                " (are aliases expanding exponentially?)",
                node,
                path[:1],
            )
        if depth > MAX_DEPTH:
            raise _TooLargeError(f"the document nests deeper than {MAX_DEPTH} levels", node)
        self.doc.value_pos.setdefault(path, _position(node))
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path, depth)
        if isinstance(node, yaml.SequenceNode):
            if node.tag != _SEQ:
                self._bad_tag(node, path)
            return [self.build(item, path + (i,), depth + 1) for i, item in enumerate(node.value)]
        return self._scalar(node, path)

    def _mapping(self, node: yaml.MappingNode, path: Path_, depth: int) -> dict[str, Any]:
        if node.tag != _MAP:
            self._bad_tag(node, path)
        out: dict[str, Any] = {}
        merged: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE:
                sources = (
                    value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
                )
                for src in sources:
                    if not isinstance(src, yaml.MappingNode):
                        self.diags.error(
                            "yaml-merge", "'<<' merges only mappings", path, _position(src)
                        )
                        continue
                    value = self._mapping(src, path, depth + 1)
                    for k, v in value.items():
                        merged.setdefault(k, v)
                continue
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag != _STR:
                self.diags.error(
                    "yaml-key",
                    f"keys must be plain strings, got {key_node.value!r}",
                    path,
                    _position(key_node),
                )
                continue
            key = key_node.value
            if key in out:
                self.diags.error(
                    "duplicate-key",
                    f"duplicate key '{key}' (first written at line"
                    f" {self.doc.key_pos[path + (key,)].line})",
                    path + (key,),
                    _position(key_node),
                )
                continue
            self.doc.key_pos[path + (key,)] = _position(key_node)
            out[key] = self.build(value_node, path + (key,), depth + 1)
        for k, v in merged.items():
            out.setdefault(k, v)
        return out

    def _scalar(self, node: yaml.Node, path: Path_) -> Any:
        value = node.value
        tag = node.tag
        if tag == _STR:
            return value
        if tag == _NULL:
            return None
        if tag == _BOOL:
            return value.lower() == "true"
        if tag == _INT:
            if value.startswith("0o"):
                return int(value[2:], 8)
            return int(value, 0) if value.startswith("0x") else int(value)
        if tag == _FLOAT:
            lowered = value.lower()
            if lowered.endswith(".inf"):
                return float("-inf") if lowered.startswith("-") else float("inf")
            if lowered == ".nan":
                return float("nan")
            return float(value)
        self._bad_tag(node, path)
        return value

    def _bad_tag(self, node: yaml.Node, path: Path_) -> None:
        self.doc.reported.add(path)
        self.diags.error(
            "yaml-tag",
            f"YAML tag '{node.tag}' is not allowed (only plain YAML data is read)",
            path,
            _position(node),
        )


class _TooLargeError(Exception):
    def __init__(self, message: str, node: yaml.Node, at: Path_ | None = None) -> None:
        super().__init__(message)
        self.node = node
        self.at = at


def _syntax_error(exc: yaml.MarkedYAMLError) -> tuple[str, Path_, Position | None]:
    """A YAML error at the place to look: where an unclosed quote or bracket opens."""
    problem = exc.problem or "invalid YAML"
    context = exc.context or ""
    opened = exc.context_mark is not None and ("quoted" in context or "flow" in context)
    mark = exc.context_mark if opened else (exc.problem_mark or exc.context_mark)
    pos = Position(mark.line + 1, mark.column + 1) if mark else None
    if opened and exc.problem_mark is not None:
        message = f"YAML syntax error: {context} that starts here: {problem}"
        message += f" (line {exc.problem_mark.line + 1})"
    elif context:
        message = f"YAML syntax error: {problem} ({context})"
    else:
        message = f"YAML syntax error: {problem}"
    return message, (), pos


def _scan(text: str) -> tuple[str, Position] | None:
    """Nesting and size from the parser's events, before any tree is composed.

    libyaml composes nodes recursively, so a document nested thousands deep
    would overflow its stack; its parser keeps its own stack and is safe.
    """
    depth = 0
    for events, event in enumerate(yaml.parse(text, Loader=_Loader), 1):
        if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            depth += 1
            if depth > MAX_DEPTH:
                return f"the document nests deeper than {MAX_DEPTH} levels", _mark(event)
        elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            depth -= 1
        if events > MAX_NODES:
            return f"the document holds more than {MAX_NODES} values", _mark(event)
    return None


def _mark(event: yaml.Event) -> Position:
    mark = event.start_mark
    return Position(mark.line + 1, mark.column + 1) if mark is not None else Position(1, 1)


def load(path: str | Path, diags: Diagnostics, text: str | None = None) -> Document | None:
    """Read ``path`` (or ``text``) into a :class:`Document`, or report why not."""
    name = diags.file
    if text is None:
        try:
            raw = Path(path).read_bytes()
        except OSError as exc:
            diags.error("io", f"cannot read the config: {exc.strerror or exc}")
            return None
        if len(raw) > MAX_BYTES:
            diags.error("too-large", f"the config is {len(raw)} bytes; the limit is {MAX_BYTES}")
            return None
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            before = raw[: exc.start]
            line = before.count(b"\n") + 1
            col = len(before[before.rfind(b"\n") + 1 :].decode("utf-8", "replace")) + 1
            diags.error(
                "encoding",
                f"the config is not UTF-8 text ({exc.reason} at byte {exc.start})",
                (),
                Position(line, col),
            )
            return None
    elif len(text.encode("utf-8")) > MAX_BYTES:
        diags.error("too-large", f"the config is larger than {MAX_BYTES} bytes")
        return None
    doc = Document(file=name, data=None)
    loader = _Loader(text)
    try:
        too_large = _scan(text)
        if too_large is not None:
            diags.error("too-large", too_large[0], (), too_large[1])
            return None
        root = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        diags.error("yaml-syntax", *_syntax_error(exc))
        return None
    except yaml.YAMLError as exc:
        diags.error("yaml-syntax", f"YAML syntax error: {exc}")
        return None
    finally:
        loader.dispose()
    if root is None:
        diags.error("empty", "the config is empty", (), Position(1, 1))
        return None
    try:
        doc.data = _Builder(doc, diags).build(root, (), 0)
    except _TooLargeError as exc:
        pos = doc.kpos(exc.at) if exc.at is not None else None
        diags.error("too-large", str(exc), (), pos or _position(exc.node))
        return None
    if not isinstance(doc.data, dict):
        diags.error(
            "not-a-mapping",
            "the config must be a mapping with 'components' and 'workflows'",
            (),
            _position(root),
        )
        return None
    return doc
