"""Configs written as a user would (tests/configs/*.yaml): each validates, builds, and passes the
plain JSON Schema an editor reads."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from mccompile.cli import main
from mccompile.diagnostics import Diagnostics
from mccompile.frontend import schema
from mccompile.frontend.loader import load

CONFIGS = sorted((Path(__file__).parent / "configs").glob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_config_builds_without_diagnostics(
    path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["build", str(path), "-o", str(tmp_path / "out")]) == 0
    assert "warning" not in capsys.readouterr().err
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["files"]
    for program in (tmp_path / "out").glob("*/*.py"):
        ast.parse(program.read_text())


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_plain_jsonschema_accepts_config(path: Path) -> None:
    doc = load(path, Diagnostics(str(path)))
    assert doc is not None
    errors = list(Draft202012Validator(schema.schema()).iter_errors(doc.data))
    assert not errors, [e.message for e in errors]
