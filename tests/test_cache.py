"""Nothing read from the cache reaches generated code unchecked."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from mccompile.cli import main
from mccompile.codegen import cache, render

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "tests" / "guide" / "guide_9_8_1_1.yaml"
PLANTED = '    os.system("echo planted")\n'


@pytest.fixture
def cached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "cache"
    monkeypatch.setenv("MCCOMPILE_CACHE_DIR", str(root))
    monkeypatch.setattr(render, "USE_VERBATIM", False)  # every piece through black and the cache
    render._environment.cache_clear()
    yield root
    render._environment.cache_clear()


def _build(out: Path, *extra: str) -> int:
    return main(["build", str(CONFIG), "-o", str(out), *extra])


def _program(out: Path) -> str:
    return next(out.glob("*/train.py")).read_text()


def _entry_of(root: Path, text: str) -> Path:
    """The black cache entry whose content holds ``text``."""
    found = [p for p in (root / "black").rglob("*") if p.is_file() and text in p.read_text()]
    assert len(found) == 1, found
    return found[0]


def _plant(entry: Path, valid_digest: bool) -> None:
    data = cache.unseal(entry.read_bytes())
    assert data is not None
    text = data.decode()
    head, sep, rest = text.partition("def main(")
    body = rest.index("\n") + 1
    poisoned = (head + sep + rest[:body] + PLANTED + rest[body:]).encode()
    entry.write_bytes(cache.seal(poisoned) if valid_digest else cache.seal(data)[:80] + poisoned)


@pytest.mark.parametrize("valid_digest", [True, False], ids=["same-digest", "other-digest"])
def test_a_planted_black_entry_does_not_reach_the_program(
    cached: Path, tmp_path: Path, valid_digest: bool
) -> None:
    assert _build(tmp_path / "clean") == 0
    clean = _program(tmp_path / "clean")
    entry = _entry_of(cached, "def main(")
    _plant(entry, valid_digest)
    assert PLANTED in entry.read_text()
    assert _build(tmp_path / "again") == 0
    assert _program(tmp_path / "again") == clean
    # the entry was dropped, and black's own output is in its place
    assert PLANTED not in entry.read_text() and cache.unseal(entry.read_bytes()) is not None


def test_check_notices_a_program_written_from_a_planted_entry(
    cached: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    assert _build(out) == 0
    _plant(_entry_of(cached, "def main("), valid_digest=True)
    program = next(out.glob("*/train.py"))
    text = program.read_text()
    at = text.index("\n", text.index("def main(")) + 1
    program.write_text(text[:at] + PLANTED + text[at:])  # what a poisoned build wrote
    assert _build(out, "--check") == 1
    assert "train.py: differs" in capsys.readouterr().err


def test_the_cache_folders_are_private(cached: Path, tmp_path: Path) -> None:
    assert _build(tmp_path / "out") == 0
    folders = [cached, *(p for p in cached.rglob("*") if p.is_dir())]
    assert len(folders) > 3
    for folder in folders:
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder
    entries = [p for p in cached.rglob("*") if p.is_file()]
    assert any(p.parent.name == "jinja" for p in entries)
    for entry in entries:
        assert cache.unseal(entry.read_bytes()) is not None, entry


def test_a_folder_others_can_write_is_not_used(cached: Path, tmp_path: Path) -> None:
    cached.mkdir()
    cached.chmod(0o777)
    assert _build(tmp_path / "out") == 0
    assert list(cached.iterdir()) == []
    cached.chmod(0o755)  # theirs to read, only its owner writes: used
    render._environment.cache_clear()
    assert _build(tmp_path / "again") == 0
    assert (cached / "black").is_dir() and (cached / "jinja").is_dir()


def test_a_broken_bytecode_entry_is_dropped(cached: Path, tmp_path: Path) -> None:
    assert _build(tmp_path / "clean") == 0
    entries = sorted((cached / "jinja").iterdir())
    assert entries
    for entry in entries:
        raw = entry.read_bytes()
        entry.write_bytes(raw[:-20] + b"\0" * 20)  # the code changed, the digest did not
    render._environment.cache_clear()
    assert _build(tmp_path / "again") == 0
    assert _program(tmp_path / "again") == _program(tmp_path / "clean")
    for entry in (cached / "jinja").iterdir():
        assert cache.unseal(entry.read_bytes()) is not None


def test_same_program_accepts_black_and_refuses_changed_code() -> None:
    source = "def f( a ):\n    '''  Say\n        it.  '''\n    return ( a+1 )\n"
    assert render.same_program(source, render._black(source))
    assert not render.same_program(source, render._black(source).replace("+ 1", "+ 2"))
    assert not render.same_program(source, "import os\n" + render._black(source))
    assert not render.same_program(source, "def f(a:\n")
