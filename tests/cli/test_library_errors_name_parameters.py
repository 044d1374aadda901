"""No library module (anything under src/galmet outside cli/) writes a command-line flag into an
error: library errors name the API parameter and set ``param=``; the CLI says the flag."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import galmet

PACKAGE = Path(galmet.__file__).parent
FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")
#: A whole command line a message suggests running ('galmet catalog --out DIR'): its flags are that
#: command's, not a parameter of the failing call.
SUGGESTED_COMMAND = re.compile(r"galmet [a-z-]+(?: [^'\"]*)?")
#: io.safety checks whose second argument is the parameter that names the path.
PATH_CHECKS = {"check_output_dir", "check_output_file", "check_not_run_model", "check_not_inputs", "check_run_output"}

#: Modules that other branches of this restructure convert (they land separately); remove an
#: entry once its module is converted: the list should end empty.
NOT_YET_CONVERTED: set[str] = set()


def _name(func: ast.expr) -> str:
    return func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""


def _strings(node: ast.AST) -> list[str]:
    return [n.value for n in ast.walk(node) if isinstance(n, ast.Constant) and isinstance(n.value, str)]


def flag_naming_errors(source: str) -> list[tuple[int, str]]:
    """(line, flag) of every flag written into an exception (a ``raise``, or a call of a name ending
    in ``Error``) or passed as the parameter of an io.safety path check, in ``source``."""
    found: set[tuple[int, str]] = set()
    for node in ast.walk(ast.parse(source)):
        texts: list[str] = []
        if isinstance(node, ast.Raise) and node.exc is not None:
            texts = _strings(node.exc)
        elif isinstance(node, ast.Call) and _name(node.func).endswith("Error"):
            texts = _strings(node)
        elif isinstance(node, ast.Call) and _name(node.func) in PATH_CHECKS and len(node.args) > 1:
            texts = _strings(node.args[1])
        if isinstance(node, ast.Call) and _name(node.func) in PATH_CHECKS:
            texts += [s for k in node.keywords if k.arg == "option" for s in _strings(k.value)]
        texts = [SUGGESTED_COMMAND.sub("", text) for text in texts]
        found |= {(node.lineno, m.group()) for text in texts for m in FLAG.finditer(text)}
    return sorted(found)


def test_the_check_sees_a_flag_in_an_error():
    bad = 'def f(n):\n    if n < 1:\n        raise ConfigError(f"--n must be at least 1, got {n}")\n'
    assert flag_naming_errors(bad) == [(3, "--n")]
    assert flag_naming_errors('check_output_dir(out, "--out")\n') == [(1, "--out")]
    good = 'raise ConfigError(f"n must be at least 1, got {n}", param="n")\n"""see --help"""\n'
    assert flag_naming_errors(good) == []
    suggestion = "raise DataError(f\"{root}: no catalog (run 'galmet catalog --out {root}' first)\")\n"
    assert flag_naming_errors(suggestion) == []


def test_no_library_error_names_a_flag():
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).as_posix()
        if rel.startswith("cli/") or rel in NOT_YET_CONVERTED:
            continue
        offenders += [f"{rel}:{line}: {flag}" for line, flag in flag_naming_errors(path.read_text(encoding="utf-8"))]
    assert not offenders, "library errors name flags (name the parameter, set param=):\n" + "\n".join(offenders)
