"""Exceptions a user can cause; the CLI turns each into one line and exit code 2."""

from __future__ import annotations


class GalmetError(Exception):
    """A problem with the user's input (file, row, column, option) rather than a bug.

    The message is one line that says what is wrong and where (file, objID, column).
    """


class DataError(GalmetError):
    """Bad dataset content: missing or undecodable image, wrong size or mode, bad label."""


class ConfigError(GalmetError):
    """A bad option or configuration value."""


def one_line(exc: BaseException, limit: int = 200) -> str:
    """``TypeName: first line of the message`` (at most ``limit`` characters of it), for
    wrapping a foreign exception into a one-line galmet error."""
    text = str(exc)
    first = text.splitlines()[0] if text else ""
    return f"{type(exc).__name__}: {first[:limit]}" if first else type(exc).__name__
