"""Diagnostics as values: every mistake found is collected, sorted and printed."""

from __future__ import annotations

import enum
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

# where a value is in a config: keys and list indexes from the top
Path_ = tuple[str | int, ...]


class ExitCode(enum.IntEnum):
    OK = 0
    DRIFT = 1
    CONFIG_ERROR = 2


class Severity(enum.Enum):
    ERROR = "error"
    WARNING = "warning"
    NOTE = "note"  # a place that belongs to the error before it (a step of a cycle)


@dataclass(frozen=True, order=True)
class Position:
    """A place in a config file, 1-based as editors show it."""

    line: int
    col: int


@dataclass(frozen=True)
class Diagnostic:
    severity: Severity
    code: str
    message: str
    path: tuple[str | int, ...] = ()
    pos: Position | None = None
    file: str = "<config>"
    # what the user probably meant ("did you mean 'lora'?"), kept apart from the message
    suggestion: str | None = None
    # the error a note belongs to: notes sort right after it
    parent: tuple[str, int, int, str] | None = None

    def sort_key(self) -> tuple[str, int, int, str]:
        line, col = (self.pos.line, self.pos.col) if self.pos else (0, 0)
        return (self.file, line, col, self.message)

    def text(self) -> str:
        """The message with its suggestion, as a person reads it."""
        return f"{self.message} ({self.suggestion})" if self.suggestion else self.message

    def format(self) -> str:
        where = self.file
        if self.pos is not None:
            where = f"{self.file}:{self.pos.line}:{self.pos.col}"
        return f"{where}: {self.severity.value}: {self.text()}"

    def as_json(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "line": self.pos.line if self.pos else None,
            "col": self.pos.col if self.pos else None,
            "severity": self.severity.value,
            "code": self.code,
            "message": self.message,
            "suggestion": self.suggestion,
        }

    def github(self) -> str:
        """A GitHub Actions workflow command, which annotates the pull request."""
        kind = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.NOTE: "notice"}
        props = [f"file={_gh_property(self.file)}"]
        if self.pos is not None:
            props += [f"line={self.pos.line}", f"col={self.pos.col}"]
        props.append(f"title={_gh_property('mccompile ' + self.code)}")
        return f"::{kind[self.severity]} {','.join(props)}::{_gh_data(self.text())}"


def _gh_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _gh_property(text: str) -> str:
    return _gh_data(text).replace(":", "%3A").replace(",", "%2C")


@dataclass
class Diagnostics:
    """A collector that every stage of the front end appends to."""

    file: str
    items: list[Diagnostic] = field(default_factory=list)

    def error(
        self,
        code: str,
        message: str,
        path: tuple[str | int, ...] = (),
        pos: Position | None = None,
        suggestion: str | None = None,
    ) -> None:
        self.items.append(
            Diagnostic(Severity.ERROR, code, message, path, pos, self.file, suggestion)
        )

    def warning(
        self,
        code: str,
        message: str,
        path: tuple[str | int, ...] = (),
        pos: Position | None = None,
        suggestion: str | None = None,
    ) -> None:
        self.items.append(
            Diagnostic(Severity.WARNING, code, message, path, pos, self.file, suggestion)
        )

    def note(
        self,
        code: str,
        message: str,
        path: tuple[str | int, ...] = (),
        pos: Position | None = None,
    ) -> None:
        """A note that belongs to the last error reported."""
        parent = next(
            (d.sort_key() for d in reversed(self.items) if d.severity is Severity.ERROR), None
        )
        self.items.append(
            Diagnostic(Severity.NOTE, code, message, path, pos, self.file, None, parent)
        )

    @property
    def has_errors(self) -> bool:
        return any(d.severity is Severity.ERROR for d in self.items)

    def has_error_at(self, path: tuple[str | int, ...]) -> bool:
        """Whether an error was reported at ``path`` or inside it (to stay quiet after it)."""
        return any(
            d.severity is Severity.ERROR and d.path[: len(path)] == path and path
            for d in self.items
        )

    def count(self, severity: Severity) -> int:
        return sum(1 for d in self.sorted() if d.severity is severity)

    def sorted(self) -> list[Diagnostic]:
        """By place; each note right after the error it belongs to, in the order reported."""
        unique: dict[tuple[Any, ...], Diagnostic] = {}
        for d in self.items:
            unique.setdefault((d.sort_key(), d.severity.value, d.code, d.parent), d)
        heads = sorted(
            (k for k, d in unique.items() if d.parent is None), key=lambda k: (k[0], k[1], k[2])
        )
        out: list[Diagnostic] = []
        for k in heads:
            head = unique[k]
            out.append(head)
            if head.severity is Severity.ERROR:
                out += [d for d in unique.values() if d.parent == head.sort_key()]
        return out


def summary(diags: Diagnostics) -> str:
    """'no errors', '2 errors, 1 warning' and the like."""
    errors = diags.count(Severity.ERROR)
    warnings = diags.count(Severity.WARNING)
    text = "no errors" if not errors else f"{errors} error{'s' if errors != 1 else ''}"
    if warnings:
        text += f", {warnings} warning{'s' if warnings != 1 else ''}"
    return text


def to_json(items: Iterable[Diagnostic]) -> str:
    return json.dumps([d.as_json() for d in items], indent=2) + "\n"


class ConfigError(Exception):
    """Raised once a stage has found errors; carries all of them."""

    def __init__(self, diagnostics: Diagnostics) -> None:
        super().__init__(f"{len(diagnostics.items)} diagnostic(s)")
        self.diagnostics = diagnostics


# -- suggestions ("did you mean ...?") ------------------------------------------


def suggest(word: str, choices: Iterable[str]) -> str:
    """' (did you mean 'x'?)' for the closest choice, or ''."""
    hint = did_you_mean(word, choices)
    return f" ({hint})" if hint else ""


def did_you_mean(word: str, choices: Iterable[str]) -> str | None:
    """ "did you mean 'x'?" for the closest choice (a diagnostic's suggestion), or None."""
    close = closest(word, choices)
    return f"did you mean '{close}'?" if close else None


def closest(word: str, choices: Iterable[str]) -> str | None:
    """The choice ``word`` most probably meant, or None."""
    written = list(choices)

    def squash(text: str) -> str:
        return text.lower().replace("_", "").replace("-", "")

    target = squash(word)
    close = [c for c in written if squash(c) == target]
    if not close and len(target) >= 3:
        close = [c for c in written if squash(c).startswith(target)]
    if not close:
        import difflib  # only when there is a mistake to explain

        close = difflib.get_close_matches(word, sorted(written), n=1, cutoff=0.6)
    return close[0] if close else None
