"""Advisory locks that make a folder exclusive to one galmet process (``filelock``: flock on
POSIX, LockFileEx on Windows; the operating system releases them when a process dies)."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from pathlib import Path

from galmet.errors import GalmetError

log = logging.getLogger(__name__)


@contextlib.contextmanager
def exclusive(folder: str | os.PathLike, name: str, what: str) -> Iterator[None]:
    """Hold the lock file ``folder/name`` for the block, or raise GalmetError at once when another
    process holds it: ``"FOLDER: another WHAT is running here"``.

    ``folder`` must exist. On a file system without locks (some network shares) the block runs
    unlocked, with a warning.
    """
    from filelock import FileLock, Timeout

    folder = Path(folder)
    lock = FileLock(folder / name, timeout=0, fallback_to_soft=False)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise GalmetError(f"{folder}: another {what} is running here (it holds {name})") from None
    except (OSError, NotImplementedError) as exc:
        log.warning("%s: cannot lock (%s); make sure no other %s uses this folder", folder, exc, what)
        yield
        return
    try:
        yield
    finally:
        lock.release()


def held_elsewhere(folder: str | os.PathLike, name: str) -> bool:
    """True when another process holds the lock file ``folder/name`` right now (False when the
    file does not exist: nothing is created)."""
    from filelock import FileLock, Timeout

    path = Path(folder) / name
    if not path.is_file():
        return False
    lock = FileLock(path, timeout=0, fallback_to_soft=False)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        return True
    except (OSError, NotImplementedError):
        return False
    lock.release()
    return False
