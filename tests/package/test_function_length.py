"""No function or method in src/galmet longer than 100 lines unless a comment says why.

A function's length is ``end_lineno - lineno + 1`` of its ``def`` (decorators excluded, its
docstring and comments included). A longer one passes only with a comment containing ``long:``
and then its reason, on the line just above the ``def`` (or above its first decorator) or in the
comment block that opens its body (before its first statement after the docstring), e.g.::

    # long: the order of the random draws is the data set; one straight sequence keeps it visible
    def draw(...):
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "galmet"
#: Most lines a function may have without a ``long:`` comment.
MAX_LINES = 100
#: A ``long:`` comment with a reason after it.
REASON = re.compile(r"\blong:\s*\S")


def _comment_lines(source: str) -> dict[int, str]:
    """Line number (1-based) -> text of each ``#`` comment in ``source`` (not ``#`` in strings)."""
    tokens = tokenize.generate_tokens(io.StringIO(source).readline)
    return {tok.start[0]: tok.string for tok in tokens if tok.type == tokenize.COMMENT}


def _reason_lines(node: ast.FunctionDef | ast.AsyncFunctionDef) -> list[int]:
    """The lines where a ``long:`` comment excuses ``node``: the one above the ``def``, the one
    above its first decorator, and those from the ``def`` to its first statement after the docstring."""
    first = node.decorator_list[0].lineno if node.decorator_list else node.lineno
    body = node.body
    has_docstring = ast.get_docstring(node, clean=False) is not None
    start_of_code = body[1].lineno if has_docstring and len(body) > 1 else body[0].lineno
    return [first - 1, node.lineno - 1, *range(node.lineno, start_of_code)]


def long_functions(source: str, name: str = "<source>") -> list[tuple[str, int, str, int]]:
    """(file name, line of the ``def``, qualified name, lines) of each function in ``source``
    longer than :data:`MAX_LINES` without a ``long:`` comment that gives a reason."""
    tree = ast.parse(source)
    comments = _comment_lines(source)
    found = []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                qualname = f"{prefix}{child.name}"
                length = child.end_lineno - child.lineno + 1
                excused = any(REASON.search(comments.get(line, "")) for line in _reason_lines(child))
                if length > MAX_LINES and not excused:
                    found.append((name, child.lineno, qualname, length))
                visit(child, f"{qualname}.")
            elif isinstance(child, ast.ClassDef):
                visit(child, f"{prefix}{child.name}.")
            else:
                visit(child, prefix)

    visit(tree, "")
    return found


def package_long_functions() -> list[tuple[str, int, str, int]]:
    """:func:`long_functions` of every module under src/galmet, in file order."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE.parent).as_posix()
        found += long_functions(path.read_text(encoding="utf-8"), rel)
    return found


def test_no_function_over_100_lines_without_a_reason():
    found = package_long_functions()
    listing = "\n".join(f"  {name}:{line} {qualname} ({length} lines)" for name, line, qualname, length in found)
    assert not found, f"functions over {MAX_LINES} lines without a '# long: <reason>' comment:\n{listing}"


def _function(n_lines: int, above: str = "", first: str = "", decorator: str = "", docstring: bool = False) -> str:
    """Source of a function ``f`` of exactly ``n_lines`` lines (def line included)."""
    head = [line for line in (above, decorator) if line] + ["def f():"]
    body = ['    """Doc."""'] if docstring else []
    body += [f"    {first}"] if first else []
    body += ["    x = 1"] * (n_lines - 1 - len(body))
    return "\n".join(["import os", "", *head, *body, ""])


@pytest.mark.parametrize(
    "source, flagged",
    [
        (_function(100), False),
        (_function(101), True),
        (_function(101, above="# long: the draws must stay in one sequence"), False),
        (_function(101, above="# long:"), True),  # a reason is required
        (_function(101, above="# too long, sorry"), True),
        (_function(101, first="# long: one straight sequence of draws"), False),
        (_function(101, first="# long: after the docstring", docstring=True), False),
        (_function(101, above="# long: above the decorator", decorator="@staticmethod"), False),
        (_function(101, first="x = '# long: in a string, not a comment'"), True),
    ],
)
def test_the_check_counts_lines_and_reads_the_reason(source, flagged):
    found = long_functions(source)
    assert bool(found) is flagged, found
    if flagged:
        assert found[0][2] == "f" and found[0][3] == 101


def test_methods_and_nested_functions_are_checked():
    method = _function(120).replace("def f():", "class C:\n    def method():").replace("\n    x", "\n        x")
    assert [q for _, _, q, _ in long_functions(method)] == ["C.method"]
    nested = _function(110).replace("    x = 1", "    def inner():\n        y = 2", 1)
    assert [q for _, _, q, _ in long_functions(nested)] == ["f"]
