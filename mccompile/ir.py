"""The intermediate representation: what the code generator reads.

Frozen dataclasses with every reference resolved. A value is a literal, a
workflow input, another job's output, an environment variable, or text
built from those.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Lit:
    value: Any


@dataclass(frozen=True)
class InputRef:
    """A workflow input: an option of the generated program."""

    name: str


@dataclass(frozen=True)
class JobRef:
    """Another job's result (a ``datasets.Dataset``)."""

    job: str


@dataclass(frozen=True)
class EnvRef:
    """Read from the environment when the generated program runs."""

    name: str
    default: str | None = None


@dataclass(frozen=True)
class Interp:
    """Text with values inside it."""

    parts: tuple[str | InputRef | EnvRef | JobRef, ...]


@dataclass(frozen=True)
class Seq:
    """A list that holds references (e.g. concat's datasets)."""

    items: tuple[Value, ...]


Value = Lit | InputRef | JobRef | EnvRef | Interp | Seq


def lit(value: Value) -> Any:
    """The literal held by ``value`` (None where it is not a literal)."""
    return value.value if isinstance(value, Lit) else None


def refs(value: Value) -> list[InputRef | JobRef | EnvRef]:
    if isinstance(value, (InputRef, JobRef, EnvRef)):
        return [value]
    if isinstance(value, Interp):
        return [p for p in value.parts if not isinstance(p, str)]
    if isinstance(value, Seq):
        return [r for item in value.items for r in refs(item)]
    return []


@dataclass(frozen=True)
class Input:
    """A workflow input, which the program takes as ``--name``."""

    name: str
    type: str
    default: Any
    required: bool
    help: str

    @property
    def option(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def dest(self) -> str:
        return identifier(self.name)


@dataclass(frozen=True)
class Job:
    """One job in run order.

    ``kind`` is ``load`` (``provider`` set), ``op`` (``method`` set) or
    ``train``; ``fields`` are the component's fields after the job's input
    was applied, defaults filled in, in a stable order.
    """

    id: str
    component: str
    kind: str
    provider: str | None
    method: str | None
    fields: dict[str, Value]
    explicit: frozenset[str]
    depends_on: tuple[str, ...]

    @property
    def var(self) -> str:
        """The job's result in the program: ``${jobs.load-data.output}`` is ``load_data_output``."""
        return identifier(self.id) + "_output"


@dataclass(frozen=True)
class Workflow:
    id: str
    title: str | None
    description: str | None
    default: bool
    jobs: tuple[Job, ...]
    inputs: tuple[Input, ...]
    env: tuple[EnvRef, ...]
    result: str | None = None

    @property
    def trainer(self) -> Job | None:
        return next((j for j in self.jobs if j.kind == "train"), None)

    @property
    def program(self) -> str:
        return "train.py" if self.trainer else "prepare.py"


@dataclass(frozen=True)
class Config:
    file: str
    sha256: str
    workflows: tuple[Workflow, ...] = field(default_factory=tuple)
    # files the config names that the programs carry (chat templates): as written -> text
    files: dict[str, str] = field(default_factory=dict)
    root: str = ""  # the config's folder, for the files it names (never written out)


def identifier(name: str) -> str:
    """A Python identifier for an id: letters, digits and '_' only."""
    out = "".join(ch if ch.isascii() and (ch.isalnum() or ch == "_") else "_" for ch in name)
    if not out or out[0].isdigit():
        out = "_" + out
    return out
