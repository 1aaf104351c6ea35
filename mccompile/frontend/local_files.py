"""Local data paths that are not there, named at their line:col before anything runs.

The generated programs read relative paths from the folder they are started in,
so a path is looked up from the current folder, as ``validate`` runs where the
program will. A path that is missing there but present beside the config is the
usual slip (running from another folder), and the warning says so.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mccompile.diagnostics import Path_

# what the programs read as a local file (templates/_data.jinja, FILE_LOADERS)
FILE_SUFFIXES = (".json", ".jsonl", ".csv", ".parquet", ".txt")
GLOB_CHARS = frozenset("*?[")


def looks_local(text: str) -> bool:
    """A trainer's ``dataset`` text the program opens as a file or folder, not a hub id."""
    return text.startswith((".", "/", "~")) or Path(text).suffix.lower() in FILE_SUFFIXES


def _matches(pattern: Path) -> bool:
    """Whether a glob pattern (relative or absolute) matches anything."""
    anchor = Path(pattern.anchor) if pattern.is_absolute() else Path()
    return next(anchor.glob(str(pattern.relative_to(anchor))), None) is not None


def paths_in(value: Any, path: Path_) -> Iterator[tuple[str, Path_]]:
    """Each path text in a ``data_files`` value (a text, a list, or splits of either)."""
    if isinstance(value, str):
        yield value, path
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from paths_in(item, (*path, index))
    elif isinstance(value, dict):
        for split, item in value.items():
            yield from paths_in(item, (*path, split))


def missing(text: str, config_dir: Path, *, folder: bool = False) -> str | None:
    """Why ``text`` names nothing here, or None when it does (or is remote)."""
    if "://" in text or not text.strip():
        return None
    expanded = Path(text).expanduser()
    if GLOB_CHARS & set(text):
        if _matches(expanded):
            return None
        what = f"no file matches {text!r}"
        beside = not expanded.is_absolute() and _matches(config_dir / expanded)
    else:
        if expanded.is_dir() if folder else expanded.exists():
            return None
        if folder and expanded.exists():
            return f"{text!r} is a file, not a folder"
        what = f"{text!r} does not exist"
        beside = (config_dir / expanded).exists()
    where = "relative paths are read from the folder the program starts in, here the current one"
    if expanded.is_absolute():
        return f"{what}; the program will stop on it unless it is there when it runs"
    if beside:
        return (
            f"{what} ({where}), but it is beside the config: start from the config's folder,"
            " or write the path from here"
        )
    return f"{what} ({where}); the program will stop on it unless it is there when it runs"
