"""The precompiled templates are exactly what Jinja compiles from today's templates."""

from __future__ import annotations

from mccompile import precompiled, render

HINT = "templates changed: regenerate with `python -m mccompile.precompiled` and commit it"


def test_every_template_is_precompiled_from_its_current_text() -> None:
    compiled = render.compile_templates()
    assert compiled
    stale = [
        name for name, (src, opts, _) in compiled.items() if not precompiled.find(name, src, opts)
    ]
    assert not stale, f"stale or missing: {', '.join(stale)}; {HINT}"
    for name, (source, options, code) in compiled.items():
        path = precompiled.FOLDER / f"{precompiled.module_name(name)}.py"
        assert path.read_text(encoding="utf-8") == precompiled.header(name, source, options) + code
    kept = {p.stem for p in precompiled.FOLDER.glob("t_*.py")}
    assert kept == {precompiled.module_name(n) for n in compiled}, HINT


def test_a_precompiled_template_of_other_text_is_not_used() -> None:
    source, options, _ = render.compile_templates()["launch.sh.jinja"]
    assert precompiled.find("launch.sh.jinja", source, options) is not None
    assert precompiled.find("launch.sh.jinja", source + "\n", options) is None
    assert precompiled.find("launch.sh.jinja", source, options + "x") is None
    assert precompiled.find("no-such.jinja", source, options) is None
