"""Files a user names for galmet to read, checked before they are opened.

- :func:`require_regular_file`: a FIFO, character or block device, socket or folder given where a
  file is read is refused in one line *without opening it* (opening a FIFO blocks until a writer
  appears; reading a device never ends).
- :func:`special_kind`: what such a path is ("FIFO", "character device", ...), from ``stat``.
- :func:`sha256_prefix_matches`: whether an open file's sha256 starts with a given hex prefix.
"""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path
from typing import BinaryIO

from galmet.errors import ConfigError

_SPECIAL = (
    (stat.S_ISFIFO, "FIFO (named pipe)"),
    (stat.S_ISCHR, "character device"),
    (stat.S_ISBLK, "block device"),
    (stat.S_ISSOCK, "socket"),
    (stat.S_ISDIR, "directory"),
)


def special_kind(path: str | os.PathLike) -> str | None:
    """What ``path`` is when it exists and is not a regular file (``"FIFO (named pipe)"``,
    ``"character device"``, ``"block device"``, ``"socket"``, ``"directory"``); None for a
    regular file (symlinks followed) or a path that cannot be stat-ed. Never opens ``path``."""
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):
        return None
    if stat.S_ISREG(mode):
        return None
    return next((kind for test, kind in _SPECIAL if test(mode)), "special file")


def require_regular_file(path: str | os.PathLike, what: str, param: str | None = None, allow_dir: bool = False) -> Path:
    """``path`` as a Path when it is an existing regular file (or, with ``allow_dir``, a folder).

    Raises a one-line :class:`ConfigError` (``param``, when given, names the parameter that gave
    the path and starts the message)
    when it does not exist, cannot be inspected, or is a FIFO, device, socket or (unless
    ``allow_dir``) a folder. The check uses ``stat`` only: nothing is opened.
    """
    p = Path(path)
    shown = f"{param} {p}" if param else str(p)  # (the parameter first: the CLI rewrites it to its flag)
    try:
        mode = os.stat(p).st_mode
    except FileNotFoundError:
        raise ConfigError(f"{shown}: no such {what}", param=param) from None
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise ConfigError(f"{shown}: cannot read {what} ({reason})", param=param) from None
    if stat.S_ISREG(mode) or (allow_dir and stat.S_ISDIR(mode)):
        return p
    kind = special_kind(p) or "special file"
    if kind == "directory":
        raise ConfigError(f"{shown}: is a directory, expected a {what} file", param=param)
    raise ConfigError(f"{shown}: is a {kind}, not a regular file; expected a {what}", param=param)


def sha256_prefix_matches(fh: BinaryIO, prefix: str) -> tuple[bool, str]:
    """(whether the sha256 of ``fh``'s whole content starts with the hex ``prefix``, the digest).

    Reads ``fh`` from its start in 1 MiB chunks and leaves it at its start again."""
    fh.seek(0)
    digest = hashlib.sha256()
    for chunk in iter(lambda: fh.read(1 << 20), b""):
        digest.update(chunk)
    fh.seek(0)
    hexdigest = digest.hexdigest()
    return hexdigest.startswith(prefix.lower()), hexdigest
