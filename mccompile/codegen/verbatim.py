"""Which leading lines of a generated program black would leave exactly as they are.

A cold or changed-config build used to import black (about 0.1 s) for one piece: the top of
the program, which holds the config's settings. That piece is simple on purpose: comments,
the module docstring, plain imports and ``NAME = literal  # note`` lines, written as black
writes them (``render.black_literal``). ``black_keeps`` recognises such lines by rules taken
from black's own code (strings.py ``normalize_string_quotes`` and the docstring handling in
linegen.py, numerics.py, the blank lines of lines.py ``EmptyLineTracker``), conservatively:
anything it is not sure of goes to black as before. tests/test_render.py checks the result
against black on every golden and guide config and on generated values.

Nothing here imports black.
"""

from __future__ import annotations

import ast
import re

LINE_LENGTH = 100  # render.BLACK_LINE_LENGTH

_UNESCAPED = {q: re.compile(rf"(([^\\]|^)(\\\\)*){q}") for q in "'\""}
_ESCAPED = {q: re.compile(rf"([^\\]|^)\\((?:\\\\)*){q}") for q in "'\""}


def _sub_twice(regex: re.Pattern[str], replacement: str, text: str) -> str:
    return regex.sub(replacement, regex.sub(replacement, text))


def black_quotes(literal: str) -> str:
    """A one-line string literal without prefix quoted as black quotes it: double quotes
    unless they need more escapes (black's ``normalize_string_quotes``, MIT licence)."""
    orig = literal[0]
    new = '"' if orig == "'" else "'"
    body = literal[1:-1]
    new_body = _sub_twice(_ESCAPED[new], rf"\1\2{new}", body)
    if body != new_body:  # escapes of the other quote are not needed
        body = new_body
        literal = f"{orig}{body}{orig}"
    new_body = _sub_twice(_ESCAPED[orig], rf"\1\2{orig}", new_body)
    new_body = _sub_twice(_UNESCAPED[new], rf"\1\\{new}", new_body)
    if new_body.count("\\") > body.count("\\"):
        return literal  # do not introduce more escaping
    if new_body.count("\\") == body.count("\\") and orig == '"':
        return literal  # prefer double quotes
    return f"{new}{new_body}{new}"


# -- literals ------------------------------------------------------------------------------

_STRING = re.compile(r"'(?:[^'\\\n]|\\.)*'|\"(?:[^\"\\\n]|\\.)*\"")
# numbers as black writes them: no "e+", no ".5", no "5.", no hex, no capitals
_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:e-?[0-9]+)?(?![\w.])")
_WORD = re.compile(r"(?:None|True|False)(?![\w.])")
_CLOSE = {"[": "]", "(": ")", "{": "}"}
# black's unicode escape normalization lowercases hex digits and upper-cases \N{} names
_ESCAPES = re.compile(r"\\(?:x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|N\{)")
# expressions that are no literals but stand in settings lines, as black writes them
EXPRESSIONS = ("max(1, min(8, (os.cpu_count() or 1) // 2))",)


def _string_end(text: str, at: int) -> int | None:
    m = _STRING.match(text, at)
    if m is None or black_quotes(m.group()) != m.group():
        return None
    if any(e == "\\N{" or e[2:] != e[2:].lower() for e in _ESCAPES.findall(m.group())):
        return None
    return m.end()


def literal_end(text: str, at: int) -> int | None:
    """Where the literal starting at ``text[at]`` ends, if black writes it exactly so on one
    line (None: not such a literal)."""
    for regex in (_WORD, _NUMBER):
        m = regex.match(text, at)
        if m:
            return m.end()
    if text.startswith(("'", '"'), at):
        return _string_end(text, at)
    opening = text[at : at + 1]
    if opening not in _CLOSE:
        return None
    close, pos, items = _CLOSE[opening], at + 1, 0
    if text.startswith(close, pos):
        return pos + 1
    while True:
        if opening == "{":
            key_end = _string_end(text, pos) if text.startswith(("'", '"'), pos) else None
            if key_end is None:
                m = _NUMBER.match(text, pos)
                key_end = m.end() if m else None
            if key_end is None or not text.startswith(": ", key_end):
                return None
            pos = key_end + 2
        end = literal_end(text, pos)
        if end is None:
            return None
        pos, items = end, items + 1
        if text.startswith(", ", pos):
            pos += 2
            continue
        if opening == "(" and items == 1:  # a one-tuple keeps its comma; (x) is no tuple
            return pos + 2 if text.startswith(",)", pos) else None
        return pos + 1 if text.startswith(close, pos) else None


# -- lines ---------------------------------------------------------------------------------

_ASSIGN = re.compile(r"[A-Za-z_][A-Za-z0-9_]* = ")
_IMPORT = re.compile(r"import [A-Za-z_][\w.]*|from [\w.]+ import [A-Za-z_]\w*")


def _width(line: str) -> int:
    """At least the width black gives the line (it counts wide characters twice)."""
    return sum(1 if ord(ch) < 128 else 2 for ch in line)


def _comment_ok(line: str) -> bool:
    return line == "#" or (line.startswith("# ") and line == line.rstrip() and "\t" not in line)


def _assignment_ok(line: str) -> bool:
    m = _ASSIGN.match(line)
    if m is None or _width(line) > LINE_LENGTH or "\t" in line:
        return False
    value = line[m.end() :]
    expression = next((e for e in EXPRESSIONS if value.startswith(e)), None)
    end = m.end() + len(expression) if expression else literal_end(line, m.end())
    if end is None:
        return False
    tail = line[end:]
    return tail == "" or (tail.startswith("  # ") and _comment_ok(tail[2:]) and tail[4:] != "")


def _docstring_ok(text: str) -> bool:
    """A module docstring black leaves as it is: plain triple quotes on their own closing
    line, no backslash or tab, no space to strip, no indentation to remove."""
    if not (text.startswith('"""') and text.endswith('\n"""')) or len(text) < 7:
        return False
    body = text[3:-3]
    if "\\" in body or "\t" in body or "\r" in body or '"""' in body or body[0] in ' "\n':
        return False
    lines = body.split("\n")
    if any(line != line.rstrip() for line in lines):
        return False
    # the indentation black removes: the smallest of the lines after the first
    indents = [len(line) - len(line.lstrip()) for line in lines[1:] if line.strip()]
    return bool(indents) and min(indents) == 0


def _statement_kind(node: ast.stmt, lines: list[str], index: int) -> str | None:
    """docstring / import / assign for a statement black leaves as it is, else None."""
    text = "".join(lines[node.lineno - 1 : node.end_lineno]).rstrip("\n")
    if (
        index == 0
        and isinstance(node, ast.Expr)
        and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, str)
    ):
        return "docstring" if _docstring_ok(text) else None
    if "\n" in text:
        return None
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        return "import" if _IMPORT.fullmatch(text) else None
    if isinstance(node, ast.Assign):
        return "assign" if _assignment_ok(text) else None
    return None


def _blank_ok(blank: int, previous: str | None, current: str) -> bool:
    """Black's blank lines before a line at module level (lines.py EmptyLineTracker): none at
    the top, one after the module docstring and after the last import, at most two else."""
    if previous is None:
        return blank == 0
    if previous == "docstring" or (previous == "import" and current != "import"):
        return blank == 1
    return blank <= 2


def black_keeps(lines: list[str], tree: ast.Module, first: int, end: int) -> tuple[int, int]:
    """The leading lines of ``lines[first:end]`` (a piece of the program) that black leaves
    as they are: (the index of the first line that needs black, the blank lines black puts
    before it). ``(first, 0)`` when nothing can be kept; only the top of a program (``first``
    0) is looked at, the other pieces start with a def, class or if."""
    if first != 0:
        return first, 0
    previous: str | None = None
    pos = 0
    for index, node in enumerate(tree.body):
        if node.lineno > end:
            break
        kind = _statement_kind(node, lines, index)
        if kind is None:
            break
        # the comments and blank lines before the statement, then the statement
        state, blank, ok = previous, 0, True
        for at in range(pos, node.lineno):
            text = lines[at].rstrip("\n")
            if not text:
                blank += 1
                continue
            current = kind if at == node.lineno - 1 else "comment"
            if (current == "comment" and not _comment_ok(text)) or not _blank_ok(
                blank, state, current
            ):
                ok = False
                break
            state, blank = current, 0
        if not ok:
            break
        previous, pos = kind, node.end_lineno or node.lineno
    if pos == 0:
        return 0, 0
    # then blank lines, and the first line black formats
    following = next((at for at in range(pos, end) if lines[at].strip()), None)
    if following is None:
        return end, 0  # the whole piece is kept (black drops its trailing blank lines)
    text = lines[following]
    if text.startswith(("@", "def ", "class ", "async ", '"', "'")):
        return 0, 0  # black treats these by other rules
    current = "import" if text.startswith(("import ", "from ")) else "other"
    blank = following - pos
    if not _blank_ok(blank, previous, current):
        return 0, 0
    return pos, blank
