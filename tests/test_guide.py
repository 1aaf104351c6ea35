"""Every YAML example of the guide validates, builds, and passes the plain JSON Schema."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from jsonschema import Draft202012Validator

from mccompile.cli import main
from mccompile.diagnostics import Diagnostics
from mccompile.frontend import schema
from mccompile.frontend.loader import load

ROOT = Path(__file__).resolve().parent.parent
GUIDE = sorted((ROOT / "tests" / "guide").glob("*.yaml"))


def test_every_guide_example_is_here() -> None:
    # 34 YAML blocks in the chapter; 9.3.6 shows fp16 "or" bf16 and is kept as two variants
    assert len(GUIDE) == 35


@pytest.mark.parametrize("path", GUIDE, ids=lambda p: p.stem)
def test_guide_example_validates(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(path)]) == 0, capsys.readouterr().err
    err = capsys.readouterr().err
    assert "error" not in err


@pytest.mark.parametrize("path", GUIDE, ids=lambda p: p.stem)
def test_guide_example_builds(path: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert main(["build", str(path), "-o", str(out)]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["files"]
    for program in out.glob("*/*.py"):
        tree = ast.parse(program.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                assert all(not a.name.startswith("mccompile") for a in node.names)
            if isinstance(node, ast.ImportFrom):
                assert not (node.module or "").startswith("mccompile")


def _schema() -> dict:
    # the schema file with every task's keys joined to the trainer, as `mccompile schema` prints
    return schema.schema()


def test_schema_is_a_valid_draft_2020_12_schema() -> None:
    Draft202012Validator.check_schema(_schema())


def test_schema_command_prints_the_schema(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema"]) == 0
    assert json.loads(capsys.readouterr().out) == _schema()


@pytest.mark.parametrize("path", GUIDE, ids=lambda p: p.stem)
def test_plain_jsonschema_accepts_guide_example(path: Path) -> None:
    # as an editor would: the file as YAML data, checked by the plain library
    doc = load(path, Diagnostics(str(path)))
    assert doc is not None
    errors = list(Draft202012Validator(_schema()).iter_errors(doc.data))
    assert not errors, [e.message for e in errors]


def test_yaml_1_1_reading_would_break_the_guide() -> None:
    # why the loader reads YAML 1.2: PyYAML's 1.1 resolver makes 1e-4 a string
    text = (ROOT / "tests" / "guide" / "guide_9_8_1_1.yaml").read_text()
    assert isinstance(yaml.safe_load(text)["components"][1]["learning_rate"], str)


def test_the_compiler_never_imports_the_training_stack(tmp_path: Path) -> None:
    config = ROOT / "tests" / "guide" / "guide_9_8_1_1.yaml"
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, mccompile.cli as c;"
            " code = c.main(['build', sys.argv[1], '-o', sys.argv[2]]);"
            " stack = ('torch', 'transformers', 'trl', 'datasets', 'peft', 'accelerate');"
            " print(code, [m for m in stack if m in sys.modules])",
            str(config),
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert probe.stdout.strip().endswith("0 []"), probe.stdout + probe.stderr
