"""Exceptions a user can cause; the CLI turns each into one line and exit code 2."""

from __future__ import annotations

import re


class GalmetError(Exception):
    """A problem with the user's input (file, row, column, option) rather than a bug.

    The message is one line that says what is wrong and where (file, objID, column): control
    characters in it (a newline in a file name, a tab in a CSV cell) are written as escapes.

    A library error about a parameter names the parameter as the Python API spells it
    (``batch_size``) and sets ``param`` to that name; the command line rewrites it to the flag
    the user typed (``--batch-size``) with :func:`for_flags`. The library never names a flag.
    """

    def __init__(self, *args: object, param: str | tuple[str, ...] | None = None) -> None:
        if len(args) == 1 and isinstance(args[0], str):
            args = (single_line(args[0]),)
        super().__init__(*args)
        #: The API parameter the message is about (None: not about one parameter; a tuple: about
        #: several, e.g. two that exclude each other).
        self.param = param


class DataError(GalmetError):
    """Bad dataset content: missing or undecodable image, wrong size or mode, bad label."""


class ConfigError(GalmetError):
    """A bad option or configuration value."""


_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]")


def single_line(text: str) -> str:
    """``text`` with every control character (newline, tab, escape, ...) written as a Python
    escape, so a message that quotes a file name or a cell can never span lines."""
    return _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


#: What may not touch a parameter name that :func:`for_flags` rewrites: a word character, a
#: dash, or a path's ``/``, ``\\`` or ``.`` (``runs/out/x.csv`` and ``out.csv`` keep their ``out``).
_WORDISH = r"[\w./\\-]"


def for_flags(exc: GalmetError, flags: dict[str, str]) -> str:
    """The message of ``exc`` as a command line says it: its parameter name replaced by the flag.

    ``flags`` maps API parameter names to what the user typed (``{"batch_size": "--batch-size"}``);
    the first whole-word occurrence of ``exc.param`` (of each, for a tuple; never part of a path)
    becomes the flag. An error without a parameter, or with one the command has no flag for,
    keeps its message.
    """
    text = str(exc)
    params = (exc.param,) if isinstance(exc.param, str) else exc.param or ()
    for param in params:  # (a tuple of parameters: each one's first occurrence)
        flag = flags.get(param)
        if flag:
            # (a full stop or comma after the name ends a sentence; a dot inside a name is a path)
            text = re.sub(rf"(?<!{_WORDISH}){re.escape(param)}(?![\w/\\-]|\.\w)", flag, text, count=1)
    return text


def one_line(exc: BaseException, limit: int = 200) -> str:
    """``TypeName: first line of the message`` (at most ``limit`` characters of it), for
    wrapping a foreign exception into a one-line galmet error."""
    text = str(exc)
    first = text.splitlines()[0] if text else ""
    return f"{type(exc).__name__}: {first[:limit]}" if first else type(exc).__name__
