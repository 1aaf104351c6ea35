"""What the task modules share: reading a job's fields, writing schema fragments."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from mccompile import ir
from mccompile.diagnostics import Path_

# where a trainer key of a job was written: the job's input when it sets the key, else the component
Where = Callable[[str], Path_]


class Checks(Protocol):
    """What a task's checks report to (the front end's checker)."""

    base: Path  # the config's folder: files the config names are read from here

    def error(self, code: str, message: str, path: Path_) -> None: ...

    def warning(self, code: str, message: str, path: Path_) -> None: ...

# the kernels package: hub builds of attention kernels (transformers 5.25 and newer require it)
KERNELS_REQUIREMENT = "kernels>=0.18.2,<0.20"


def value(job: ir.Job, key: str) -> Any:
    """The literal of a field (None when absent or not a literal)."""
    return ir.lit(job.fields[key]) if key in job.fields else None


def is_set(job: ir.Job, key: str) -> bool:
    """Given in the config, and not as null or false."""
    return key in job.explicit and not (
        isinstance(job.fields.get(key), ir.Lit) and value(job, key) in (None, False)
    )


def is_null(job: ir.Job, key: str) -> bool:
    """A literal null (a value from an option or the environment is not)."""
    f = job.fields.get(key)
    return isinstance(f, ir.Lit) and f.value is None


def text_field(description: str, default: Any = None) -> dict[str, Any]:
    """A column name or null, possibly from an expression."""
    return {
        "description": description,
        "anyOf": [{"type": ["string", "null"]}, {"$ref": "#/$defs/expression"}],
        "default": default,
    }


def bool_field(description: str, default: bool) -> dict[str, Any]:
    return {
        "description": description,
        "anyOf": [{"type": "boolean"}, {"$ref": "#/$defs/expression"}],
        "default": default,
    }


def number_field(description: str, default: Any, **bounds: Any) -> dict[str, Any]:
    return {
        "description": description,
        "anyOf": [{"type": "number", **bounds}, {"$ref": "#/$defs/expression"}],
        "default": default,
    }
