"""Diagnostics as values: every mistake found is collected, sorted and printed."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class ExitCode(enum.IntEnum):
    OK = 0
    DRIFT = 1
    CONFIG_ERROR = 2


class Severity(enum.Enum):
    ERROR = "error"
    WARNING = "warning"


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

    def sort_key(self) -> tuple[str, int, int, str]:
        line, col = (self.pos.line, self.pos.col) if self.pos else (0, 0)
        return (self.file, line, col, self.message)

    def format(self) -> str:
        where = self.file
        if self.pos is not None:
            where = f"{self.file}:{self.pos.line}:{self.pos.col}"
        return f"{where}: {self.severity.value}: {self.message}"


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
    ) -> None:
        self.items.append(Diagnostic(Severity.ERROR, code, message, path, pos, self.file))

    def warning(
        self,
        code: str,
        message: str,
        path: tuple[str | int, ...] = (),
        pos: Position | None = None,
    ) -> None:
        self.items.append(Diagnostic(Severity.WARNING, code, message, path, pos, self.file))

    @property
    def has_errors(self) -> bool:
        return any(d.severity is Severity.ERROR for d in self.items)

    def sorted(self) -> list[Diagnostic]:
        unique = {(d.sort_key(), d.severity.value, d.code): d for d in self.items}
        return [unique[k] for k in sorted(unique)]


class ConfigError(Exception):
    """Raised once a stage has found errors; carries all of them."""

    def __init__(self, diagnostics: Diagnostics) -> None:
        super().__init__(f"{len(diagnostics.items)} diagnostic(s)")
        self.diagnostics = diagnostics
