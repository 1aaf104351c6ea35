"""Jinja's bytecode cache, with each entry behind the digest of its own content.

The entries hold marshalled code objects that Jinja runs: a file whose digest
does not match (truncated, corrupted, or rewritten without the digest) is
dropped and the template compiled afresh. The folder is one only its owner can
write (cache.private_folder), which is what keeps other users' code out.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mccompile.codegen.cache import seal, unseal, write_atomic


def sealed_bytecode_cache(folder: Path) -> Any:
    import jinja2

    class SealedBytecodeCache(jinja2.BytecodeCache):
        def _name(self, bucket: Any) -> str:
            return f"__jinja2_{bucket.key}.sealed"

        def load_bytecode(self, bucket: Any) -> None:
            path = folder / self._name(bucket)
            try:
                raw = path.read_bytes()
            except OSError:
                return
            data = unseal(raw)
            if data is None:
                path.unlink(missing_ok=True)
                return
            bucket.bytecode_from_string(data)

        def dump_bytecode(self, bucket: Any) -> None:
            try:
                write_atomic(folder, self._name(bucket), seal(bucket.bytecode_to_string()))
            except OSError:
                return

        def clear(self) -> None:
            for path in folder.glob("__jinja2_*.sealed"):
                path.unlink(missing_ok=True)

    return SealedBytecodeCache()
