"""The corpus of bad configs: each file in tests/bad holds one mistake.

Every file starts with comment lines naming the diagnostics a user must get:

    # expect: LINE:COL: error: SUBSTRING

(``warning`` for warnings, ``note`` for the notes that belong to an error).
The test checks that ``mccompile validate`` exits with 2, prints a
diagnostic at exactly that line and column with that severity whose message
contains the substring, prints every diagnostic in the
``file:line:col: severity: message`` form, and never a traceback; that a
file whose header has ``# only:`` lines prints exactly those diagnostics and
nothing more (no follow-on errors); and that ``mccompile build`` of the same
file exits with 2 and writes nothing.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from mccompile.cli import main
from mccompile.frontend.resolve import PREPARE_OPTIONS, TRAIN_OPTIONS

BAD = Path(__file__).parent / "bad"
CASES = sorted(BAD.glob("*.yaml"))

_EXPECT = re.compile(r"^#\s*(expect|only):\s*(\d+):(\d+):\s*(error|warning|note):\s*(.+?)\s*$")
_SUMMARY = re.compile(r": \d+ errors?(, \d+ warnings?)?$")


def _expectations(path: Path, only: bool = False) -> list[tuple[int, int, str, str]]:
    """The ``# expect:`` and ``# only:`` lines (with ``only``: the ``# only:`` lines alone)."""
    out = []
    # errors="replace": one case is deliberately not UTF-8 after its header
    for line in path.read_bytes().decode("utf-8", errors="replace").splitlines():
        if not line.startswith("#"):
            break
        m = _EXPECT.match(line)
        if m and (not only or m.group(1) == "only"):
            out.append((int(m.group(2)), int(m.group(3)), m.group(4), m.group(5)))
    return out


def _diagnostic_form(shown: str) -> re.Pattern[str]:
    return re.compile(rf"^{re.escape(shown)}:(\d+):(\d+): (error|warning|note): (.+)$")


def test_corpus_is_large_enough() -> None:
    assert len(CASES) >= 60, f"only {len(CASES)} bad configs in {BAD}"


def test_every_case_says_what_it_expects() -> None:
    for path in CASES:
        assert _expectations(path), f"{path.name} has no '# expect:' line"


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_validate_reports_the_mistake(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shown = str(path)
    code = main(["validate", shown])
    out, err = capsys.readouterr()
    printed = out + err
    assert "Traceback" not in printed, printed
    assert code == 2, f"exit code {code}, expected 2\n{printed}"

    form = _diagnostic_form(shown)
    found: list[tuple[int, int, str, str]] = []
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines, "nothing was printed on stderr"
    assert _SUMMARY.search(lines[-1]), f"no summary line at the end:\n{err}"
    for line in lines[:-1]:
        m = form.match(line)
        assert m, f"not in the file:line:col: severity: message form: {line!r}\n{err}"
        found.append((int(m.group(1)), int(m.group(2)), m.group(3), m.group(4)))

    for line_no, col, severity, substring in _expectations(path):
        hit = any(
            (ln, c, s) == (line_no, col, severity) and substring in message
            for ln, c, s, message in found
        )
        assert hit, f"expected {line_no}:{col}: {severity}: ...{substring}...\nprinted:\n{err}"

    only = _expectations(path, only=True)
    if only:
        assert len(found) == len(only), f"expected only {len(only)} diagnostic(s):\n{err}"


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_build_writes_nothing(
    path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_dir = tmp_path / "out"
    code = main(["build", str(path), "-o", str(out_dir)])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err, out + err
    assert code == 2, f"exit code {code}, expected 2\n{out}{err}"
    assert not out_dir.exists(), f"build wrote {sorted(p.name for p in out_dir.rglob('*'))}"


def test_the_reserved_option_names_are_the_programs_own() -> None:
    """Every option a generated program defines itself (no ``dest=``: not a workflow input)
    is one a workflow input may not take."""
    golden = Path(__file__).resolve().parent.parent / "golden"
    seen: dict[str, set[str]] = {"train.py": set(), "prepare.py": set()}
    for name, found in seen.items():
        for program in golden.glob(f"*/expected/*/{name}"):
            for node in ast.walk(ast.parse(program.read_text())):
                if (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Attribute)
                    and node.func.attr == "add_argument"
                    and not any(k.arg == "dest" for k in node.keywords)
                ):
                    found.update(
                        a.value.removeprefix("--")
                        for a in node.args
                        if isinstance(a, ast.Constant) and isinstance(a.value, str)
                    )
    assert seen["train.py"] and seen["prepare.py"]
    assert seen["train.py"] <= set(TRAIN_OPTIONS), seen["train.py"] - set(TRAIN_OPTIONS)
    assert seen["prepare.py"] <= set(PREPARE_OPTIONS), seen["prepare.py"]
