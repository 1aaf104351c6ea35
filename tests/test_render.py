from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import black
import pytest

from mccompile.codegen import render
from mccompile.codegen.generate import build_program, program_template
from mccompile.codegen.render import RenderError, comment, py
from mccompile.frontend import compile_config

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = sorted((ROOT / "tests" / "guide").glob("*.yaml")) + sorted(
    (ROOT / "golden").glob("*/config.yaml")
)


@pytest.mark.parametrize(
    "value",
    [None, True, 3, -2.5, 1e-4, 'it\'s "quoted"\n\\ ${x} {{y}}', [1, "a"], (1, 2), {"a": [None]}],
)
def test_py_writes_literals_that_read_back(value: object) -> None:
    assert ast.literal_eval(py(value)) == value


@pytest.mark.parametrize("value", [float("nan"), float("inf"), object(), {1.5: 2}, {"a": {1, 2}}])
def test_py_refuses_what_is_not_plain_data(value: object) -> None:
    with pytest.raises(RenderError):
        py(value)


def test_comment_is_one_printable_line() -> None:
    assert comment("a\nb\r\x00c  d") == "a b c d"


@pytest.fixture(scope="module")
def plain_env() -> object:
    """An environment that compiles every template from its text (no bytecode cache)."""
    return render._environment.__wrapped__()


@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: f"{p.parent.name}-{p.stem}")
def test_piecewise_black_equals_whole_file_black(
    config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, plain_env: Any
) -> None:
    monkeypatch.setenv("MCCOMPILE_CACHE_DIR", str(tmp_path / "cache"))
    ir_config, _ = compile_config(config)
    for wf in ir_config.workflows:
        p = build_program(ir_config, wf)
        template = program_template(wf, p)
        source = render.render_text(template, p=p)
        # the templates compiled from the bytecode cache write what they write compiled afresh
        assert plain_env.get_template(template).render(p=p) == source
        mode = black.Mode(target_versions={black.TargetVersion.PY310}, line_length=100)
        whole = black.format_str(source, mode=mode)
        assert render.format_python(source, ast.parse(source)) == whole
        # and again, from the cache
        assert render.format_python(source, ast.parse(source)) == whole
        # cold (no cache: black)
        monkeypatch.setenv("MCCOMPILE_CACHE_DIR", "off")
        assert render.format_python(source, ast.parse(source)) == whole
        # and with black for the top of the program too (no lines kept as written)
        monkeypatch.setattr(render, "USE_VERBATIM", False)
        assert render.format_python(source, ast.parse(source)) == whole
        monkeypatch.setattr(render, "USE_VERBATIM", True)


@pytest.mark.parametrize(
    "value",
    ["one line", "two\nlines", 'ends in "\n"', 'has """ in\nit', "back\\slash\n\\", "tab\t\n\x00"],
)
def test_text_block_reads_back_as_the_value(value: str) -> None:
    literal = render.text_block(value)
    assert ast.literal_eval(literal) == value
    plain = '"""' not in value and not value.endswith(('"', "\\")) and "\x00" not in value
    if "\n" in value and plain:
        assert literal == 'r"""' + value + '"""'  # written as it reads


# -- what black keeps as it is (mccompile/verbatim.py) -----------------------------------

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(10**12), 10**12)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
    | st.sampled_from(["it's", 'say "hi"', "both ' and \"", "back\\slash", "tab\t", "é中\x1b"])
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=4)
    | st.lists(inner, max_size=3).map(tuple)
    | st.dictionaries(st.text(max_size=8) | st.integers(-9, 9), inner, max_size=3),
    max_leaves=8,
)
_BLACK_MODE = black.Mode(target_versions={black.TargetVersion.PY310}, line_length=100)


@settings(max_examples=300, deadline=None)
@given(_VALUES)
def test_black_literal_is_what_black_writes(value: Any) -> None:
    written = render.black_literal(value)
    assert ast.literal_eval(written) == value or value != value  # noqa: PLR0124
    line = f"X = {written}\n"
    if len(line) <= 90:
        assert black.format_str(f"X = {py(value)}\n", mode=_BLACK_MODE) == line


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.lists(st.tuples(_VALUES, st.text(max_size=60)), min_size=1, max_size=4),
    st.integers(0, 3),
)
def test_the_kept_top_of_a_program_is_what_black_writes(
    monkeypatch: pytest.MonkeyPatch, settings_: list[tuple[Any, str]], blank: int
) -> None:
    """Settings lines of any values and notes, blank lines and comments between them, a docstring
    and imports above and code below: the output equals black's for the whole text."""
    monkeypatch.setenv("MCCOMPILE_CACHE_DIR", "off")
    lines = ["# /// script", "# ///", "", '"""A program.', "", "Run it.", '"""', ""]
    lines += ["import os", ""]
    for index, (value, text) in enumerate(settings_):
        lines.append("# -- group " + "-" * 20)
        note = comment(text)
        written = f"S{index} = {render.black_literal(value)}"
        lines.append(f"{written}  # {note}" if note else written)
        lines.extend([""] * blank)
    lines += ["TABLE = {", '    "a": 1,', "}", "", "", "def f():", "    return os.sep", ""]
    source = "\n".join(lines)
    from mccompile.codegen import verbatim

    kept = verbatim.black_keeps(source.splitlines(keepends=True), ast.parse(source), 0, len(lines))
    cut, gap = kept
    if blank <= 2 and all(verbatim._width(line) <= 100 for line in lines):
        assert cut + gap == lines.index("TABLE = {")  # every settings line is kept as written
    assert render.format_python(source, ast.parse(source)) == black.format_str(
        source, mode=_BLACK_MODE
    )
