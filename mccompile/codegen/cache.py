"""A small on-disk cache for work that depends only on its input text.

Formatting with black and compiling templates cost more than everything else
in a build; their results are stored under ``$MCCOMPILE_CACHE_DIR`` (default
``$XDG_CACHE_HOME/mccompile`` or ``~/.cache/mccompile``), keyed by a hash of
the exact input and the tool's version, so a hit returns the very bytes a
miss would compute. Set ``MCCOMPILE_CACHE_DIR=off`` to disable it. A cache
that cannot be written is simply not used, nor is one that other users can
write (the folders are made 0700); each entry carries the digest of its own
content and is dropped when it does not match.
"""

from __future__ import annotations

import hashlib
import os
import stat
import tempfile
from pathlib import Path

_HEADER = b"mccompile-cache sha256="


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


def private_folder(path: Path) -> Path | None:
    """``path`` as a folder only its owner can write (made 0700 if missing), or None.

    A folder another user can write (or one owned by another user, or a
    symlink) is not used: what it holds could have been put there by them.
    """
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = path.lstat()
    except OSError:
        return None
    if not stat.S_ISDIR(info.st_mode) or info.st_mode & 0o022:
        return None
    if hasattr(os, "getuid") and info.st_uid != os.getuid():
        return None
    return path


def seal(data: bytes) -> bytes:
    """``data`` behind a header line that holds its digest."""
    return _HEADER + hashlib.sha256(data).hexdigest().encode("ascii") + b"\n" + data


def unseal(raw: bytes) -> bytes | None:
    """The data of a sealed entry, or None where the digest does not match."""
    header, sep, data = raw.partition(b"\n")
    if not sep or not header.startswith(_HEADER):
        return None
    if header[len(_HEADER) :] != hashlib.sha256(data).hexdigest().encode("ascii"):
        return None
    return data


def write_atomic(folder: Path, name: str, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        Path(tmp).replace(folder / name)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class TextCache:
    """Text values by key, one file each, written atomically, each behind its digest.

    An entry whose digest does not match its content is dropped (deleted) and
    reads as a miss. Callers that turn an entry into code check it further
    (render.py: black's output must be the same program as its input).
    """

    def __init__(self, namespace: str) -> None:
        root = cache_dir()
        self.root = root / namespace if root is not None else None
        self._checked = False

    def _folder(self, name: str) -> Path | None:
        if self.root is not None and not self._checked:
            base = self.root.parent
            if private_folder(base) is None or private_folder(self.root) is None:
                self.root = None  # not used by this instance
            self._checked = True
        if self.root is None:
            return None
        return private_folder(self.root / name[:2])

    def get(self, name: str) -> str | None:
        folder = self._folder(name)
        if folder is None:
            return None
        try:
            raw = (folder / name).read_bytes()
        except OSError:
            return None
        data = unseal(raw)
        text = None
        if data is not None:
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError:
                text = None
        if text is None:
            self.drop(name)
        return text

    def drop(self, name: str) -> None:
        """Delete an entry that must not be used."""
        if self.root is None:
            return
        try:
            (self.root / name[:2] / name).unlink(missing_ok=True)
        except OSError:
            return

    def put(self, name: str, value: str) -> None:
        folder = self._folder(name)
        if folder is None:
            return
        try:
            write_atomic(folder, name, seal(value.encode("utf-8")))
        except OSError:
            return
