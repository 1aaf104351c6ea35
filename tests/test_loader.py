from __future__ import annotations

from typing import Any

import pytest

from mccompile.diagnostics import Diagnostics, Position
from mccompile.frontend import loader
from mccompile.frontend.loader import Document, load


def _load(text: str) -> tuple[Document | None, list[str]]:
    diags = Diagnostics("c.yaml")
    doc = load("c.yaml", diags, text=text)
    return doc, [d.format() for d in diags.sorted()]


def test_scalars_read_as_yaml_1_2() -> None:
    doc, errors = _load(
        "lr: 5e-5\nb: 1e-4\nno_bool: no\non: on\nt: true\nclock: 1:30\nday: 2024-01-01\n"
        "oct: 0o17\nhex: 0x10\nnull_: ~\nint: 42\nneg: -3.5\n"
    )
    assert errors == []
    assert doc is not None
    assert doc.data == {
        "lr": 5e-5,
        "b": 1e-4,
        "no_bool": "no",
        "on": "on",
        "t": True,
        "clock": "1:30",
        "day": "2024-01-01",
        "oct": 15,
        "hex": 16,
        "null_": None,
        "int": 42,
        "neg": -3.5,
    }


def test_positions_of_keys_and_values() -> None:
    doc, _ = _load("components:\n  - id: a\n    lora_r: 8\n")
    assert doc is not None
    assert doc.kpos(("components", 0, "lora_r")) == Position(3, 5)
    assert doc.pos(("components", 0, "lora_r")) == Position(3, 13)
    # a missing path falls back to its nearest ancestor
    assert doc.pos(("components", 0, "nothing")) == Position(2, 5)


def test_duplicate_key_is_an_error_at_the_second() -> None:
    _, errors = _load("a: 1\nb: 2\na: 3\n")
    assert errors == ["c.yaml:3:1: error: duplicate key 'a' (first written at line 1)"]


def test_merge_keys_and_aliases() -> None:
    doc, errors = _load("base: &b {x: 1, y: 2}\nother:\n  <<: *b\n  y: 3\n")
    assert errors == []
    assert doc is not None
    assert doc.data["other"] == {"x": 1, "y": 3}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a: [1, 2\nb: 3\n", "YAML syntax error"),
        ("", "the config is empty"),
        ("- 1\n- 2\n", "must be a mapping"),
        ("a: !!python/object:os.system x\n", "YAML tag"),
        ("? [1, 2]\n: x\n", "keys must be plain strings"),
    ],
)
def test_bad_documents(text: str, message: str) -> None:
    _, errors = _load(text)
    assert any(message in e for e in errors), errors


def test_alias_bomb_ends_quickly(monkeypatch: pytest.MonkeyPatch) -> None:
    lines = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 9):
        prev, name = chr(96 + i), chr(97 + i)
        lines.append(f"{name}: &{name} [" + ", ".join([f"*{prev}"] * 10) + "]")
    calls = 0
    build = loader._Builder.build

    def counted(self: Any, *args: Any) -> Any:
        nonlocal calls
        calls += 1
        return build(self, *args)

    monkeypatch.setattr(loader._Builder, "build", counted)
    doc, errors = _load("\n".join(lines) + "\n")
    # the work stops at the limit, not at the 10**9 values the aliases expand to
    assert calls == loader.MAX_NODES + 1
    assert doc is None
    assert any("expands to more than" in e for e in errors)


def test_deep_nesting_is_refused() -> None:
    doc, errors = _load("a: " + "[" * 200 + "]" * 200 + "\n")
    assert doc is None
    assert any("nests deeper" in e for e in errors)


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("a: " + "[" * 50_000 + "]" * 50_000 + "\n", "1:67"),
        ("a: " + "{b: " * 50_000 + "1" + "}" * 50_000 + "\n", "1:256"),
        ("a:\n" + "".join("  " * i + "-\n" for i in range(1, 1000)), "65:129"),
    ],
    ids=["flow-sequences", "flow-mappings", "block-sequences"],
)
def test_nesting_is_refused_before_the_tree_is_built(text: str, where: str) -> None:
    # libyaml composes its tree recursively: 50,000 levels overflowed its stack
    doc, errors = _load(text)
    assert doc is None
    assert errors == [f"c.yaml:{where}: error: the document nests deeper than 64 levels"]


def test_too_many_values_are_refused_before_the_tree_is_built() -> None:
    doc, errors = _load("a: [" + "1, " * (loader.MAX_NODES + 10) + "1]\n")
    assert doc is None
    message = f"the document holds more than {loader.MAX_NODES} values"
    # at the value past the limit (a few events of the stream come before the values)
    assert errors == [f"c.yaml:1:{5 + 3 * (loader.MAX_NODES - 5)}: error: {message}"]


def test_huge_file_is_refused() -> None:
    doc, errors = _load("a: '" + "x" * (3 * 1024 * 1024) + "'\n")
    assert doc is None
    assert any("larger than" in e or "limit" in e for e in errors)
