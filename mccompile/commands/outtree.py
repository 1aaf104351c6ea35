"""What an output folder holds, and how a rebuild carries over what mccompile did not write.

mccompile writes only regular files and the folders that hold them. Everything
else in OUT (symlinks, empty folders, FIFOs, files the manifest does not list)
is the user's: a rebuild with ``--force`` recreates it in the new tree exactly
(a symlink still points where it pointed, modes are kept), and refuses, leaving
OUT as it was, what it cannot recreate (a socket, a device) or what stands where
it must write a file.
"""

from __future__ import annotations

import os
import shutil
import stat
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Tree:
    """OUT's entries by their path relative to OUT (symlinks are not followed)."""

    files: dict[str, bytes] = field(default_factory=dict)  # regular files: their bytes
    others: dict[str, str] = field(default_factory=dict)  # anything else: what it is


def scan(out: Path) -> Tree:
    tree = Tree()
    if not out.is_dir():
        return tree
    todo = [out]
    while todo:
        folder = todo.pop()
        with os.scandir(folder) as entries:
            children = sorted(entries, key=lambda e: e.name)
        if not children and folder != out:
            tree.others[folder.relative_to(out).as_posix()] = "an empty folder"
        for entry in children:
            path = Path(entry.path)
            rel = path.relative_to(out).as_posix()
            mode = entry.stat(follow_symlinks=False).st_mode
            if stat.S_ISLNK(mode):
                tree.others[rel] = "a symlink"
            elif stat.S_ISDIR(mode):
                todo.append(path)
            elif stat.S_ISREG(mode):
                tree.files[rel] = path.read_bytes()
            elif stat.S_ISFIFO(mode):
                tree.others[rel] = "a FIFO"
            elif stat.S_ISSOCK(mode):
                tree.others[rel] = "a socket"
            else:
                tree.others[rel] = "a device file"
    return tree


def _recreatable(kind: str) -> bool:
    return kind in ("a symlink", "an empty folder", "a FIFO")


def refusal(tree: Tree, written: set[str]) -> str | None:
    """Why the user's entries cannot all be kept beside the files to write, or None."""
    parents = {"/".join(p.split("/")[:i]) for p in written for i in range(1, p.count("/") + 1)}
    for rel, kind in sorted(tree.others.items()):
        if rel in written or rel in parents:
            return f"{rel} is {kind} where mccompile writes a file or folder; move it away"
        if not _recreatable(kind):
            return f"{rel} is {kind}, which a rebuild cannot carry over; move it away"
    for rel in sorted(tree.files):
        if rel in parents:
            return f"{rel} is a file where mccompile writes a folder; move it away"
    return None


def carry_over(out: Path, staging: Path, tree: Tree, keep_files: set[str]) -> None:
    """Recreate the user's entries of OUT in the staging tree, with their modes."""
    for rel in sorted(keep_files):
        target = staging / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(tree.files[rel])
        shutil.copymode(out / rel, target)
    for rel, kind in sorted(tree.others.items()):
        source, target = out / rel, staging / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if kind == "a symlink":
            target.symlink_to(source.readlink())
            continue
        if kind == "an empty folder":
            target.mkdir()
        else:
            os.mkfifo(target)
        shutil.copymode(source, target)
    # folders that were there keep their modes
    for root, folders, _ in os.walk(staging):  # symlinks to folders are not followed
        for name in folders:
            folder = Path(root) / name
            before = out / folder.relative_to(staging)
            if not folder.is_symlink() and before.is_dir() and not before.is_symlink():
                shutil.copymode(before, folder)
