"""Commands import only what they use: the cost of a start shows in every editor and hook."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "tests" / "guide" / "guide_9_8_1_1.yaml"
HEAVY = ("jinja2", "black", "jsonschema", "importlib.metadata", "difflib")

CODE = """
import sys
from mccompile.cli import main
code = main(sys.argv[1:])
print("imported:", *(m for m in {heavy!r} if m in sys.modules))
raise SystemExit(code)
"""


def _imported(*args: str, cache: str = "off") -> set[str]:
    env = dict(os.environ, MCCOMPILE_CACHE_DIR=cache, PYTHONPATH=str(ROOT))
    done = subprocess.run(
        [sys.executable, "-c", CODE.format(heavy=HEAVY), *args],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    last = done.stdout.splitlines()[-1].split()
    assert last[0] == "imported:"
    return set(last[1:])


@pytest.mark.parametrize("command", ["validate", "plan"])
def test_validate_and_plan_of_a_valid_config_import_no_template_or_schema_engine(
    command: str,
) -> None:
    assert _imported(command, str(CONFIG)) == set()


def test_a_warm_build_imports_no_black(tmp_path: Path) -> None:
    args = ("build", str(CONFIG), "-o", str(tmp_path / "out"), "--force")
    _imported(*args, cache=str(tmp_path / "cache"))  # primes the cache
    assert _imported(*args, cache=str(tmp_path / "cache")) == {"jinja2"}


def test_a_changed_build_imports_no_black(tmp_path: Path) -> None:
    """The settings at the top of the program are written as black writes them and kept as
    they are (mccompile/verbatim.py); the rest of the program is in the cache from the build
    before."""
    args = ("build", str(CONFIG), "-o", str(tmp_path / "out"), "--force")
    assert "black" in _imported(*args, cache=str(tmp_path / "cache"))  # a first build runs black
    changed = tmp_path / "changed.yaml"
    changed.write_text(CONFIG.read_text().replace("learning_rate: 1e-4", "learning_rate: 3.7e-5"))
    assert "3.7e-5" in changed.read_text()
    args = ("build", str(changed), "-o", str(tmp_path / "out2"), "--force")
    assert _imported(*args, cache=str(tmp_path / "cache")) == {"jinja2"}
