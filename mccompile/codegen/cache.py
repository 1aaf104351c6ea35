"""A small on-disk cache for work that depends only on its input text.

Formatting with black and compiling templates cost more than everything else
in a build; their results are stored under ``$MCCOMPILE_CACHE_DIR`` (default
``$XDG_CACHE_HOME/mccompile`` or ``~/.cache/mccompile``), keyed by a hash of
the exact input and the tool's version, so a hit returns the very bytes a
miss would compute. Set ``MCCOMPILE_CACHE_DIR=off`` to disable it. A cache
that cannot be written is simply not used.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path


def cache_dir() -> Path | None:
    configured = os.environ.get("MCCOMPILE_CACHE_DIR")
    if configured == "off":
        return None
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "mccompile"


def key(*parts: str) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode("utf-8"))
        digest.update(b"\0")
    return digest.hexdigest()


class TextCache:
    """Text values by key, one file each, written atomically."""

    def __init__(self, namespace: str) -> None:
        root = cache_dir()
        self.root = root / namespace if root is not None else None

    def get(self, name: str) -> str | None:
        if self.root is None:
            return None
        try:
            return (self.root / name[:2] / name).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            return None

    def put(self, name: str, value: str) -> None:
        if self.root is None:
            return
        folder = self.root / name[:2]
        try:
            folder.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-")
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(value)
            Path(tmp).replace(folder / name)
        except OSError:
            return
