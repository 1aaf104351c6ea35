"""--model: the option every training program takes when the config names its model,
shown with its value in --help, the bundle README and the plan."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from mccompile.cli import main

ROOT = Path(__file__).resolve().parent.parent
QUICKSTART = ROOT / "examples" / "quickstart.yaml"
MODEL = "./.demo/tiny-model"  # examples/quickstart.yaml's model


def test_help_shows_the_model_it_trains_by_default(tmp_path: Path) -> None:
    pytest.importorskip("datasets")
    assert main(["build", str(QUICKSTART), "-o", str(tmp_path / "out")]) == 0
    shown = subprocess.run(
        [sys.executable, "train.py", "--help"],
        cwd=tmp_path / "out" / "quickstart",
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    assert f"(default: {MODEL})" in re.sub(r"\s+", " ", shown).replace("( ", "(")
    readme = (tmp_path / "out" / "quickstart" / "README.md").read_text()
    assert f"| `--model` | `{MODEL}` |" in readme


def test_plan_names_the_model_option(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", str(QUICKSTART)]) == 0
    assert f"--model (default '{MODEL}'), --output-dir" in capsys.readouterr().out
