"""The quick schema check never calls an invalid config valid.

jsonschema, with mccompile's numbers (validate.strict_validator), is the judge.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mccompile.diagnostics import Diagnostics
from mccompile.frontend import schema as sch
from mccompile.frontend.fastschema import is_valid
from mccompile.frontend.loader import load
from mccompile.frontend.validate import normalize, strict_validator

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = sorted(
    p
    for folder in ("tests", "golden", "examples")
    for p in (ROOT / folder).rglob("*.yaml")
    if "expected" not in p.parts
)


def _data(path: Path) -> Any:
    diags = Diagnostics(str(path))
    doc = load(path, diags)
    if doc is None:
        return None
    normalize(doc, diags)
    return doc.data


def _leaves(data: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(data, dict):
        for key, value in data.items():
            yield from _leaves(value, (*path, key))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            yield from _leaves(value, (*path, i))
    else:
        yield path


def _agrees(data: Any) -> bool:
    """False only if the quick check said valid and jsonschema finds an error."""
    if not is_valid(sch.schema(), data):
        return True
    return not any(True for _ in strict_validator().iter_errors(data))


@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_quick_check_agrees_with_jsonschema(config: Path) -> None:
    data = _data(config)
    if data is None:
        return
    assert _agrees(data)
    errors = list(strict_validator().iter_errors(data))
    # a valid config takes the quick path (else the check saves nothing)
    assert is_valid(sch.schema(), data) == (not errors)


WRONG = [None, True, 0, -1, 2.5, "", "x", [], ["q"], {}, {"k": 1}]


@pytest.mark.parametrize(
    "config",
    [ROOT / "tests" / "guide" / "guide_9_8_1_1.yaml", ROOT / "golden/quickstart/config.yaml"],
    ids=lambda p: p.parent.name + "-" + p.stem,
)
def test_quick_check_agrees_on_broken_values(config: Path) -> None:
    data = _data(config)
    for path in _leaves(data):
        for value in WRONG:
            broken = copy.deepcopy(data)
            node = broken
            for part in path[:-1]:
                node = node[part]
            node[path[-1]] = value
            assert _agrees(broken), (path, value)
        broken = copy.deepcopy(data)  # an unknown key beside it
        node = broken
        for part in path[:-1]:
            node = node[part]
        if isinstance(node, dict):
            node["no_such_key"] = 1
            assert _agrees(broken), path
