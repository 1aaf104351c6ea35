"""Black's output for the pieces of generated code that every config shares, shipped.

Most top-level pieces of a generated program (helper functions, the training
loop's scaffolding) come from the templates alone and are the same whatever
the config says; only a few interpolate config values. A cold build (no
cache, e.g. ``MCCOMPILE_CACHE_DIR=off``, a fresh CI machine) would format all
of them with black. This module ships black's result for the shared pieces in
``blackseed.json``, keyed like the on-disk cache by black's version, the
settings and the exact text of the piece, so a stale entry (an edited
template, another black) is only a miss and never changes the output.

Regenerate after changing a template (tests/test_blackseed.py says when)::

    python -m mccompile.blackseed

It builds every config under golden/ and tests/guide/ and keeps the pieces
that occur in the output of at least two of them.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from functools import cache
from pathlib import Path

SEED_FILE = Path(__file__).with_name("blackseed.json")
MIN_CONFIGS = 2  # a piece counts as shared when at least this many configs produce it


@cache
def _seed() -> dict[str, str]:
    try:
        with SEED_FILE.open(encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError):
        return {}
    pieces = data.get("pieces") if isinstance(data, dict) else None
    return pieces if isinstance(pieces, dict) else {}


def lookup(name: str) -> str | None:
    """Black's output for the piece with this cache key, if shipped."""
    return _seed().get(name)


def repository_configs(root: Path) -> list[Path]:
    return sorted((root / "tests" / "guide").glob("*.yaml")) + sorted(
        (root / "golden").glob("*/config.yaml")
    )


def collect(configs: Iterable[Path]) -> dict[str, tuple[str, set[str]]]:
    """Every piece black formats while building ``configs``: key -> (black's output, configs)."""
    import os

    from mccompile import render
    from mccompile.build import render_all
    from mccompile.frontend import compile_config

    found: dict[str, tuple[str, set[str]]] = {}
    current = ""
    original_black = render._black

    def recording(source: str) -> str:
        formatted = original_black(source)
        name = render.black_key(source)
        found.setdefault(name, (formatted, set()))[1].add(current)
        return formatted

    saved = os.environ.get("MCCOMPILE_CACHE_DIR")
    os.environ["MCCOMPILE_CACHE_DIR"] = "off"
    render._black = recording  # type: ignore[assignment]
    render.USE_SEED = False
    try:
        for config in configs:
            current = str(config)
            cwd = Path.cwd()
            os.chdir(config.parent)  # as a user builds it: the config named relative to here
            try:
                ir_config, _ = compile_config(config.name, config.name)
                render_all(ir_config, [])
            finally:
                os.chdir(cwd)
    finally:
        render._black = original_black  # type: ignore[assignment]
        render.USE_SEED = True
        if saved is None:
            os.environ.pop("MCCOMPILE_CACHE_DIR", None)
        else:
            os.environ["MCCOMPILE_CACHE_DIR"] = saved
    return found


def shared(found: dict[str, tuple[str, set[str]]]) -> dict[str, str]:
    return {k: out for k, (out, where) in sorted(found.items()) if len(where) >= MIN_CONFIGS}


def main() -> int:
    from mccompile.render import _black_version

    root = Path(__file__).resolve().parent.parent
    pieces = shared(collect(repository_configs(root)))
    data = {
        "about": "black output of shared pieces; regenerate: python -m mccompile.blackseed",
        "black": _black_version(),
        "pieces": pieces,
    }
    SEED_FILE.write_text(json.dumps(data, indent=0, sort_keys=True) + "\n", encoding="utf-8")
    print(f"wrote {len(pieces)} pieces to {SEED_FILE.name}", file=sys.stderr)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
