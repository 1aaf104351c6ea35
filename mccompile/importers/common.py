"""What both importers share: reading a peer file's keys, and writing the mccompile config.

The output is written as text here (not through a YAML library) so that every setting
carries a comment naming the peer key and line it came from, and the text is the same
byte for byte on every run. :func:`emit` loads its own text back to make sure it holds
exactly the values meant.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mccompile.diagnostics import Diagnostics
from mccompile.frontend.loader import Document, load

# a plain YAML scalar that reads back as the same string (YAML 1.2 core schema)
_PLAIN = re.compile(r"^[A-Za-z_./][A-Za-z0-9_./@+-]*$")
_SPECIAL = re.compile(r"^(?:true|false|null|~|yes|no|on|off)$", re.IGNORECASE)


def scalar(value: Any) -> str:
    """One value as YAML flow text."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        text = repr(value)
        return text if re.search(r"[.eE]", text) else text + ".0"
    if isinstance(value, str):
        if _PLAIN.match(value) and not _SPECIAL.match(value):
            return value
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(scalar(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{scalar(str(k))}: {scalar(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"cannot write {type(value).__name__}")


def short(value: Any, limit: int = 70) -> str:
    """A peer value inside a comment: one line, cut when long."""
    try:
        text = scalar(value)
    except TypeError:
        text = repr(value)
    text = text.replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclass
class Entry:
    key: str
    value: Any = None
    comment: str = ""
    children: list[Entry] | None = None  # a block mapping, each child with its own comment


@dataclass
class Block:
    """A component or job: its entries, then comments (the peer keys not imported)."""

    entries: list[Entry] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def set(self, key: str, value: Any, comment: str = "") -> Entry:
        for e in self.entries:
            if e.key == key:
                e.value, e.comment, e.children = value, comment, None
                return e
        entry = Entry(key, value, comment)
        self.entries.append(entry)
        return entry

    def get(self, key: str) -> Any:
        return next((e.value for e in self.entries if e.key == key), None)

    def has(self, key: str) -> bool:
        return any(e.key == key for e in self.entries)

    def nested(self, key: str) -> Entry:
        for e in self.entries:
            if e.key == key and e.children is not None:
                return e
        entry = Entry(key, None, "", [])
        self.entries.append(entry)
        return entry


def _entry_lines(e: Entry, indent: str) -> list[str]:
    tail = f"  # {e.comment}" if e.comment else ""
    if e.children is not None:
        lines = [f"{indent}{e.key}:{tail}"]
        for child in e.children:
            lines += _entry_lines(child, indent + "  ")
        return lines
    return [f"{indent}{e.key}: {scalar(e.value)}{tail}"]


def _entry_data(e: Entry) -> Any:
    if e.children is not None:
        return {c.key: _entry_data(c) for c in e.children}
    return e.value


@dataclass
class Output:
    """The imported config: a header, components, one workflow of jobs."""

    header: list[str] = field(default_factory=list)
    components: list[Block] = field(default_factory=list)
    workflow: dict[str, Any] = field(default_factory=dict)
    jobs: list[Block] = field(default_factory=list)
    footer: list[str] = field(default_factory=list)

    def data(self) -> dict[str, Any]:
        return {
            "components": [{e.key: _entry_data(e) for e in c.entries} for c in self.components],
            "workflows": [
                {
                    **self.workflow,
                    "jobs": [{e.key: _entry_data(e) for e in j.entries} for j in self.jobs],
                }
            ],
        }

    def text(self) -> str:
        lines = [f"# {h}" if h else "#" for h in self.header]
        lines.append("components:")
        for c in self.components:
            first, *rest = c.entries
            head = _entry_lines(first, "")
            lines.append(f"  - {head[0]}")
            lines += [f"    {line}" for line in head[1:]]
            for e in rest:
                lines += _entry_lines(e, "    ")
            lines += [f"    # {n}" for n in c.notes]
            lines.append("")
        lines.append("workflows:")
        first_key = True
        for key, val in self.workflow.items():
            lines.append(f"  {'- ' if first_key else '  '}{key}: {scalar(val)}")
            first_key = False
        lines.append("    jobs:")
        for j in self.jobs:
            first, *rest = j.entries
            lines += [f"      - {_entry_lines(first, '')[0]}"]
            for e in rest:
                lines += _entry_lines(e, "        ")
            lines += [f"        # {n}" for n in j.notes]
        if self.footer:
            lines.append("")
            lines += [f"# {f}" for f in self.footer]
        return "\n".join(lines) + "\n"


def emit(out: Output) -> str:
    """The config text, checked by loading it back: it must hold exactly ``out.data()``."""
    text = out.text()
    diags = Diagnostics("<imported>")
    doc = load("<imported>", diags, text=text)
    if doc is None or diags.has_errors or doc.data != out.data():
        problems = "; ".join(d.format() for d in diags.items)
        raise ValueError(
            "a peer value cannot be written so that it reads back as itself"
            + (f": {problems}" if problems else " (NaN or infinity?)")
        )
    return text


@dataclass
class Peer:
    """A peer config being imported: its keys, where each was written, what was used."""

    name: str  # Axolotl, LLaMA-Factory
    path: Path
    doc: Document
    diags: Diagnostics
    used: set[str] = field(default_factory=set)
    not_imported: list[str] = field(default_factory=list)

    @property
    def data(self) -> dict[str, Any]:
        return self.doc.data  # type: ignore[no-any-return]

    def line(self, *path: str | int) -> int:
        pos = self.doc.kpos(tuple(path))
        return pos.line if pos else 0

    def src(self, key: str, *more: str | int) -> str:
        """'from KEY (line N)': the comment beside a setting."""
        name = ".".join(str(p) for p in (key, *more))
        return f"{self.name}: {name} (line {self.line(key, *more)})"

    def has(self, key: str) -> bool:
        return self.data.get(key) is not None

    def take(self, key: str, kinds: tuple[type, ...] | None = None) -> Any:
        """The value of ``key`` (None when absent or null), marked used; a wrong type errors."""
        self.used.add(key)
        value = self.data.get(key)
        if value is None or kinds is None:
            return value
        if isinstance(value, bool) and bool not in kinds:
            ok = False
        else:
            ok = isinstance(value, kinds) or (float in kinds and isinstance(value, int))
        if not ok:
            names = " or ".join(_KIND_NAMES[k] for k in kinds)
            self.invalid(key, f"'{key}' must be {names}, got {short(value)}")
            return None
        if float in kinds and isinstance(value, int) and not isinstance(value, bool):
            return float(value) if int not in kinds else value
        return value

    def keep_task_keys(self, trainer: Block) -> None:
        """Drop the settings the trainer's task does not read (a warning and a note each)."""
        from mccompile.frontend import schema

        task = trainer.get("task") or "sft"
        known = schema.trainer_fields(str(task))
        for entry in [e for e in trainer.entries if e.key not in known]:
            trainer.entries.remove(entry)
            why = f"task: {task} does not read {entry.key} (it applies to other tasks)"
            source = entry.comment.split(":", 1)[1].split("(")[0].strip() if entry.comment else ""
            path: tuple[str | int, ...] = (source,) if source in self.data else ()
            self.diags.warning(
                "import-dropped",
                f"{self.name} setting '{entry.key}: {short(entry.value)}' is not imported: {why}",
                path,
                self.doc.kpos(path) if path else None,
            )
            trainer.notes.append(f"not imported: {entry.key}: {short(entry.value)} ({why})")

    def invalid_keys(self) -> set[str]:
        return {str(d.path[0]) for d in self.diags.items if d.code == "import-invalid" and d.path}

    def invalid(self, key: str | tuple[str | int, ...], message: str) -> None:
        path = key if isinstance(key, tuple) else (key,)
        self.diags.error(
            "import-invalid",
            f"{message} (invalid for {self.name} itself)",
            path,
            self.doc.pos(path),
        )

    def unsupported(self, key: str, message: str) -> None:
        """A valid peer value that mccompile cannot train: the import stops."""
        self.diags.error("import-unsupported", message, (key,), self.doc.kpos((key,)))

    def drop(self, key: str | tuple[str | int, ...], why: str, block: Block | None = None) -> None:
        """A peer key with no counterpart: a warning at its place and a comment."""
        path = key if isinstance(key, tuple) else (key,)
        name = ".".join(str(p) for p in path)
        value = self.data
        for p in path:
            value = value[p]  # type: ignore[index]
        self.used.add(str(path[0]))
        self.diags.warning(
            "import-dropped",
            f"{self.name} key '{name}' is not imported: {why}",
            path,
            self.doc.kpos(path),
        )
        note = f"not imported: {name}: {short(value)} (line {self.line(*path)}: {why})"
        (block.notes if block is not None else self.not_imported).append(note)

    def approximate(self, key: str, why: str) -> None:
        """Imported, but not exactly: a warning, the comment says how."""
        self.diags.warning(
            "import-approximate",
            f"{self.name} key '{key}': {why}",
            (key,),
            self.doc.kpos((key,)),
        )

    def differs(self, key: str, name: str, why: str) -> None:
        """Imported, and trains otherwise in one named respect: a warning that says how."""
        self.diags.warning(
            "import-differs",
            f"{self.name} key '{key}' [{name}]: {why}",
            (key,),
            self.doc.kpos((key,)),
        )

    def rest(self, reasons: dict[str, str], block: Block) -> list[str]:
        """Every key not used: null ones listed as unset, the others dropped with a warning."""
        unset = []
        for key, value in self.data.items():
            if key in self.used:
                continue
            if value is None or value in ([], {}):
                unset.append(f"{key} (line {self.line(key)})")
                continue
            self.drop(key, reasons.get(key, "mccompile has no counterpart"), block)
        return unset


_KIND_NAMES = {
    int: "an integer",
    float: "a number",
    str: "a string",
    bool: "true or false",
    list: "a list",
    dict: "a mapping",
}


def local_loader(path: str) -> str | None:
    """The loader for a data file by its extension (None: not a file we know)."""
    lowered = path.lower()
    for ext, loader in (
        (".jsonl", "json"),
        (".json", "json"),
        (".csv", "csv"),
        (".parquet", "parquet"),
        (".txt", "text"),
        (".arrow", None),
    ):
        if lowered.endswith(ext):
            return loader
    return None


# DeepSpeed configs the peers ship, by file name: (ZeRO stage, offload)
KNOWN_DEEPSPEED = {
    # Axolotl deepspeed_configs/
    "zero1.json": (1, False),
    "zero1_torch_compile.json": (1, False),
    "zero2.json": (2, False),
    "zero2_torch_compile.json": (2, False),
    "zero3.json": (3, False),
    "zero3_bf16.json": (3, False),
    "zero3_bf16_cpuoffload_all.json": (3, True),
    "zero3_bf16_cpuoffload_params.json": (3, True),
    "zero3_cpuoffload.json": (3, True),
    # LLaMA-Factory examples/deepspeed/
    "ds_z0_config.json": (0, False),
    "ds_z2_config.json": (2, False),
    "ds_z2_offload_config.json": (2, True),
    "ds_z3_config.json": (3, False),
    "ds_z3_offload_config.json": (3, True),
}


def read_deepspeed(peer: Peer, key: str, value: str) -> tuple[int, bool, str] | None:
    """ZeRO stage and offload of a DeepSpeed config: read beside the peer file, else by name."""
    candidates = [peer.path.parent / value, Path(value)]
    for candidate in candidates:
        try:
            text = candidate.read_text(encoding="utf-8")
        except OSError:
            continue
        try:
            ds = json.loads(text)
            zero = ds.get("zero_optimization") or {}
            stage = int(zero.get("stage", 0))
            offload = any(
                isinstance(zero.get(k), dict)
                and str(zero[k].get("device", "none")).lower() not in ("none", "")
                for k in ("offload_optimizer", "offload_param")
            )
        except (ValueError, AttributeError, TypeError):
            peer.invalid(key, f"'{value}' is not a DeepSpeed JSON config")
            return None
        return stage, offload, f"read from {value}"
    known = KNOWN_DEEPSPEED.get(Path(value).name)
    if known is None:
        return None
    return known[0], known[1], f"{Path(value).name} not found beside the file; by its shipped name"
