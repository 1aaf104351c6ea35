"""The only module that touches jinja2 and black.

Templates see only the IR (and the program model built from it). Every
config value reaches code through the ``py`` filter, as a Python literal;
identifiers pass through ``ident``. Generated Python is parsed before it is
formatted, so a template bug is reported as such.
"""

from __future__ import annotations

import ast
import itertools
import json
import math
import re
import shlex
from functools import cache
from typing import Any

from mccompile.assets import resource_dir
from mccompile.ir import identifier

BLACK_LINE_LENGTH = 100


class RenderError(Exception):
    """A template produced something it must not (a bug in mccompile, not in the config)."""


def py(value: Any) -> str:
    """``value`` as a Python literal; anything but plain data is refused."""
    _check_literal(value)
    return repr(value)


def black_literal(value: Any) -> str:
    """``py(value)`` with its strings quoted as black quotes them (black leaves it as it is)."""
    from mccompile.codegen.verbatim import black_quotes

    _check_literal(value)

    def write(item: Any) -> str:
        if isinstance(item, str):
            return black_quotes(repr(item))
        if isinstance(item, list):
            return "[" + ", ".join(write(x) for x in item) + "]"
        if isinstance(item, tuple):
            return "(" + ", ".join(write(x) for x in item) + ("," if len(item) == 1 else "") + ")"
        if isinstance(item, dict):
            return "{" + ", ".join(f"{write(k)}: {write(v)}" for k, v in item.items()) + "}"
        if isinstance(item, float):
            return repr(item).replace("e+", "e")  # black writes 1e+16 as 1e16
        return repr(item)

    return write(value)


def _check_literal(value: Any) -> None:
    if value is None or isinstance(value, (bool, int, str)):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise RenderError(f"cannot write the non-finite number {value!r} as code")
        return
    if isinstance(value, (list, tuple)):
        for item in value:
            _check_literal(item)
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, (str, int)):
                raise RenderError(f"cannot write a mapping key of type {type(key).__name__}")
            _check_literal(item)
        return
    raise RenderError(f"cannot write a value of type {type(value).__name__} as code")


def text_block(value: str) -> str:
    """Text of several lines as a triple-quoted literal, its lines as written; ``py`` otherwise."""
    if "\n" not in value or any(not ch.isprintable() and ch not in "\n\t" for ch in value):
        return py(value)
    raw = 'r"""' + value + '"""'  # the text exactly as written, where a raw string can hold it
    if '"""' not in value and not value.endswith(("\\", '"')) and _reads_back(raw, value):
        return raw
    body = value.replace("\\", "\\\\").replace('"""', '\\"\\"\\"')
    if body.endswith('"'):
        body = body[:-1] + '\\"'
    literal = '"""\\\n' + body + '"""'
    return literal if _reads_back(literal, value) else py(value)


def _reads_back(literal: str, value: str) -> bool:
    """Never write what does not read back as the value."""
    try:
        return bool(ast.literal_eval(literal) == value)
    except (SyntaxError, ValueError):
        return False


def comment(text: str) -> str:
    """Text made safe for a ``#`` comment: one line, no control characters."""
    return " ".join("".join(ch if ch.isprintable() else " " for ch in text).split())


def docstring(text: str) -> str:
    """Text made safe inside a triple-quoted docstring: one line, no quotes or escapes."""
    return comment(text).replace("\\", "/").replace('"', "'")


def sh(value: Any) -> str:
    """A string or number as one shell word (quoted where needed)."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise RenderError(f"cannot write a value of type {type(value).__name__} as a shell word")
    return shlex.quote(str(value))


def yaml_scalar(value: Any) -> str:
    """None, a bool, a finite number or a string as a YAML scalar (strings double-quoted)."""
    if value is not None and not isinstance(value, (bool, int, float, str)):
        raise RenderError(f"cannot write a value of type {type(value).__name__} as YAML")
    _check_literal(value)
    return json.dumps(value)


_SBATCH_WORD = re.compile(r"--[a-z][a-z0-9-]*(=[^\s'\"\\]+)?")


def sbatch(option: Any) -> str:
    """An ``#SBATCH`` option: Slurm reads it with no shell, so only plain words pass."""
    if not isinstance(option, str) or not _SBATCH_WORD.fullmatch(option):
        raise RenderError(f"cannot write {option!r} on an #SBATCH line")
    return option


@cache
def _environment() -> Any:
    import jinja2

    from mccompile.codegen.bytecode import sealed_bytecode_cache
    from mccompile.codegen.cache import cache_dir, private_folder

    bytecode = None
    root = cache_dir()
    if root is not None and private_folder(root) is not None:
        folder = private_folder(root / "jinja")
        if folder is not None:
            bytecode = sealed_bytecode_cache(folder)
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(resource_dir("templates"))),
        bytecode_cache=bytecode,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )
    env.filters["py"] = py
    env.filters["ident"] = identifier
    env.filters["comment"] = comment
    env.filters["docstring"] = docstring
    env.filters["sh"] = sh
    env.filters["yaml"] = yaml_scalar
    env.filters["sbatch"] = sbatch
    env.filters["text_block"] = text_block
    return env


def render_text(template: str, **context: Any) -> str:
    text: str = _environment().get_template(template).render(**context)
    return text


def render_python(template: str, **context: Any) -> str:
    source = render_text(template, **context)
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        lines = source.splitlines()
        shown = lines[exc.lineno - 1] if exc.lineno and exc.lineno <= len(lines) else ""
        raise RenderError(
            f"template {template} produced invalid Python at line {exc.lineno}: {exc.msg}\n"
            f"    {shown}"
        ) from None
    return format_python(source, tree)


def _chunks(source: str, tree: ast.Module) -> list[tuple[int, int]]:
    """The source cut before each top-level def, class and ``if``: (first, end) line indexes.

    Black formats each of these pieces exactly as it would inside the whole
    module, so they can be formatted (and cached) one by one and joined with
    the two blank lines black puts between top-level definitions.
    """
    starts = [0]
    for node in tree.body[1:]:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef, ast.If)):
            first = min([node.lineno, *(d.lineno for d in getattr(node, "decorator_list", []))])
            starts.append(first - 1)
    bounds = [*starts, len(source.splitlines())]
    return [(a, b) for a, b in itertools.pairwise(bounds) if a < b]


def black_key(chunk: str) -> str:
    """The cache key of a piece: black's version, its settings and the exact text."""
    from mccompile.codegen.cache import key

    return key(_black_version(), str(BLACK_LINE_LENGTH), "py310", chunk)


USE_VERBATIM = True  # keep the lines black would leave as they are without running black


def format_python(source: str, tree: ast.Module) -> str:
    """Black, piece by piece: the leading lines it would keep as they are (verbatim.py),
    the rest from the cache, or black."""
    from mccompile.codegen.cache import TextCache
    from mccompile.codegen.verbatim import black_keeps

    cache = TextCache("black")
    lines = source.splitlines(keepends=True)

    def black_of(text: str) -> str:
        name = black_key(text)
        formatted = cache.get(name)
        if formatted is not None and not same_program(text, formatted):
            cache.drop(name)  # not what black makes of this text: never written out
            formatted = None
        if formatted is None:
            formatted = _black(text)
            cache.put(name, formatted)
        return formatted

    out: list[str] = []
    for first, end in _chunks(source, tree):
        cut, blank = black_keeps(lines, tree, first, end) if USE_VERBATIM else (first, 0)
        if cut == first:
            out.append(black_of("".join(lines[first:end])))
            continue
        rest = "".join(lines[cut:end]).lstrip("\n")
        kept = "".join(lines[first:cut]).rstrip("\n") + "\n"
        out.append(kept + "\n" * blank + black_of(rest) if rest.strip() else kept)
    return "\n\n".join(part.rstrip("\n") + "\n" for part in out if part.strip())


def same_program(source: str, formatted: str) -> bool:
    """Whether ``formatted`` is ``source`` as black may write it: the same syntax tree,
    docstrings compared by their words (black reindents them). A cache entry is used only
    when it is."""
    try:
        return _tree_of(source) == _tree_of(formatted)
    except (SyntaxError, ValueError):
        return False


def _tree_of(text: str) -> str:
    tree = ast.parse(text)
    bodies: list[list[ast.stmt]] = [tree.body]
    while bodies:  # the statement lists where a docstring can be (not every node: faster)
        body = bodies.pop()
        first = body[0] if body else None
        doc = first.value if isinstance(first, ast.Expr) else None
        if isinstance(doc, ast.Constant) and isinstance(doc.value, str):
            doc.value = " ".join(doc.value.split())
        for node in body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                bodies.append(node.body)
            elif isinstance(node, (ast.If, ast.For, ast.While, ast.With, ast.Try)):
                bodies += [node.body, getattr(node, "orelse", []), getattr(node, "finalbody", [])]
                bodies += [h.body for h in getattr(node, "handlers", [])]
    return ast.dump(tree)


@cache
def _black_version() -> str:
    """Black's version, without importing black or ``importlib.metadata`` (both slow)."""
    try:
        from _black_version import version  # type: ignore[import-untyped,unused-ignore]

        return str(version)
    except ImportError:  # pragma: no cover - an unusual install of black
        from importlib.metadata import version as dist_version

        return dist_version("black")


def _black(source: str) -> str:
    import black
    from black.mode import Mode, TargetVersion

    mode = Mode(target_versions={TargetVersion.PY310}, line_length=BLACK_LINE_LENGTH)
    formatted: str = black.format_str(source, mode=mode)
    return formatted
