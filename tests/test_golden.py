"""Golden tests: whole output trees, compared file by file.

Regenerate after an intended change with:

    UPDATE_GOLDEN=1 pytest tests/test_golden.py

and review the diff of golden/ like any other change.
"""

from __future__ import annotations

import difflib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mccompile.cli import main

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "golden"
CASES = sorted(p.name for p in GOLDEN.iterdir() if (p / "config.yaml").is_file())
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"


def _tree(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _build(case: str, out: Path) -> None:
    # build from inside the case folder so the config is named config.yaml, as users name theirs
    cwd = Path.cwd()
    os.chdir(GOLDEN / case)
    try:
        assert main(["build", "config.yaml", "-o", str(out)]) == 0
    finally:
        os.chdir(cwd)


def test_there_are_enough_cases() -> None:
    assert len(CASES) >= 8


@pytest.mark.parametrize("case", CASES)
def test_golden(case: str, tmp_path: Path) -> None:
    out = tmp_path / "out"
    _build(case, out)
    expected_dir = GOLDEN / case / "expected"
    if UPDATE:
        shutil.rmtree(expected_dir, ignore_errors=True)
        shutil.copytree(out, expected_dir)
        return
    actual, expected = _tree(out), _tree(expected_dir)
    problems: list[str] = []
    for path in sorted(set(actual) | set(expected)):
        if path not in actual:
            problems.append(f"missing file: {path}")
        elif path not in expected:
            problems.append(f"unexpected file: {path}")
        elif actual[path] != expected[path]:
            diff = difflib.unified_diff(
                expected[path].decode().splitlines(),
                actual[path].decode().splitlines(),
                f"expected/{path}",
                f"actual/{path}",
                lineterm="",
            )
            problems.append("\n".join(diff))
    assert not problems, (
        f"golden/{case} differs (regenerate with UPDATE_GOLDEN=1 pytest tests/test_golden.py):\n"
        + "\n".join(problems)
    )


def test_ruff_finds_nothing_in_golden_programs() -> None:
    programs = sorted(str(p) for p in GOLDEN.glob("*/expected/*/*.py"))
    assert programs
    ruff = Path(sys.executable).with_name("ruff")
    command = [str(ruff)] if ruff.exists() else [sys.executable, "-m", "ruff"]
    result = subprocess.run(
        [
            *command,
            "check",
            "--no-cache",
            "--isolated",
            "--select",
            "E,F,W,B,UP,SIM",
            "--ignore",
            "E501",
            *programs,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
