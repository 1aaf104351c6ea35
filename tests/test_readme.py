"""What README.md tells a user to copy works: its configs compile, its files exist."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from mccompile.cli import main

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
CONFIGS = [
    block
    for block in re.findall(r"```yaml\n(.*?)```", README, flags=re.S)
    if block.lstrip().startswith("components:")
]


def test_the_readme_has_configs_to_copy() -> None:
    assert CONFIGS


@pytest.mark.parametrize("index", range(len(CONFIGS)))
def test_each_readme_config_compiles_with_no_error(
    index: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(CONFIGS[index])
    assert main(["validate", str(config)]) == 0, capsys.readouterr().err


def test_a_readme_config_says_nothing_that_stops_on_a_cpu() -> None:
    # bf16: true stops a CPU run before training; bf16: auto trains in fp32 there
    for block in CONFIGS:
        assert not re.search(r"^\s*bf16: true", block, flags=re.M), block


def test_the_files_the_readme_imports_are_in_the_repository() -> None:
    named = re.findall(r"mccompile import (?:axolotl|llama-factory) (\S+)", README)
    assert named
    for path in named:
        assert (ROOT / path).is_file(), path


def test_the_precommit_snippet_names_no_tag_that_does_not_exist() -> None:
    revs = re.findall(r"^\s*rev: (\S+)", README, flags=re.M)
    assert revs
    tags = subprocess.run(
        ["git", "tag", "--list"], cwd=ROOT, capture_output=True, text=True, check=False
    ).stdout.split()
    for rev in revs:  # a release tag must exist; anything else is a placeholder to fill in
        assert not re.fullmatch(r"v?\d+(\.\d+)*", rev) or rev in tags, rev
