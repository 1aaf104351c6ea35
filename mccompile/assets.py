"""Where the package's data lives: templates, schemas, chat templates."""

from __future__ import annotations

from pathlib import Path

_HERE = Path(__file__).resolve().parent


def resource_dir(name: str) -> Path:
    """``templates``, ``schemas`` or ``chat_templates``: inside the installed package, or beside it
    in a checkout."""
    for candidate in (_HERE / name, _HERE.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"mccompile is installed without its {name}/ folder")
