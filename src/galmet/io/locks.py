"""Advisory locks that make a folder exclusive to one galmet process.

Every command that writes into a folder holds ``FOLDER/.galmet.lock`` (:data:`galmet.layout.RUN_LOCK`)
while it does: an ``flock`` on POSIX (``filelock``'s LockFileEx on Windows), taken without
waiting. A second galmet run into the same folder fails at once, in one line naming the first
one's process id (``"DIR is in use by another galmet run (pid N, 'galmet synth')"``). The
operating system releases the lock when its process ends, however it ends (``kill -9``
included), so a crashed run never leaves the folder locked; a run that ends normally removes the
lock file too. The lock file is opened without following a symlink or blocking on a FIFO, and
must be a regular file holding nothing but galmet's record of its holder (``PID 'galmet CMD'``):
anything else at its name (a user's file, a link, a FIFO, a folder) is refused in one line and
left as it is.

- :func:`exclusive`: hold the lock of an existing folder for a block.
- :func:`locked_folder`: create the folder if needed and hold its lock; a folder this call
  created is removed again when nothing but bookkeeping was written into it.
- :func:`holds_folder_lock`: the same as a decorator of a library function, by parameter name.
- :func:`held_elsewhere`: whether another process holds a folder's lock now.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path

from galmet.errors import GalmetError
from galmet.io.ownership import is_lock_record, open_bookkeeping
from galmet.layout import RUN_LOCK

log = logging.getLogger(__name__)

try:  # POSIX
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]


def _busy(folder: Path, holder: str) -> GalmetError:
    return GalmetError(
        f"{folder} is in use by another galmet run ({holder}); wait for it to finish or use another folder"
    )


def _holder_of(data: bytes) -> str:
    """What a lock file's content says of its holder: ``pid N, WHAT`` (or ``pid unknown``)."""
    text = data.decode("utf-8", errors="replace").strip().splitlines()
    if text and text[0].split(" ", 1)[0].isdigit():
        pid, _, what = text[0].partition(" ")
        return f"pid {pid}, {what}" if what else f"pid {pid}"
    return "pid unknown"


def _holder(path: Path) -> str:
    """What the lock file ``path`` says of its holder (read without following a link or
    blocking on a FIFO: :func:`galmet.io.ownership.open_bookkeeping`)."""
    try:
        fd = open_bookkeeping(path, os.O_RDONLY, "lock file")
    except (OSError, GalmetError):
        return "pid unknown"
    try:
        return _holder_of(os.read(fd, 4096))
    finally:
        os.close(fd)


@contextlib.contextmanager
def exclusive(folder: str | os.PathLike, name: str = RUN_LOCK, what: str = "galmet") -> Iterator[None]:
    """Hold the lock file ``folder/name`` for the block, or raise GalmetError at once when another
    process (or another open of it in this process) holds it (see the module docstring).

    ``folder`` must exist. ``what`` names this run in the lock file (``'galmet synth'``), so a
    second run can say who holds the folder. On a file system without locks (some network
    shares) the block runs unlocked, with a warning.
    """
    folder = Path(folder)
    if fcntl is None:  # pragma: no cover - Windows
        with _exclusive_filelock(folder, name, what):
            yield
        return
    path = folder / name
    try:
        fd = _locked_fd(path, folder)
    except OSError as exc:  # a read-only folder, or no locks on this file system
        log.warning("%s: cannot lock (%s); make sure no other galmet run uses this folder", folder, exc.strerror)
        yield
        return
    try:
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()} {what}\n".encode(), 0)
        yield
    finally:
        # the lock file goes while still held (a run that opened it meanwhile sees it gone and
        # opens a new one: _locked_fd), so a finished run leaves none behind
        with contextlib.suppress(OSError):
            if os.lstat(path).st_ino == os.fstat(fd).st_ino:  # ours (not a file put there since)
                path.unlink()
        os.close(fd)  # (closing the last descriptor releases the flock)


def _locked_fd(path: Path, folder: Path) -> int:
    """An open descriptor of ``path`` holding its flock; GalmetError when another holds it, or
    when ``path`` is not a regular file (a symlink is never followed, a FIFO never blocked on) or
    holds anything but galmet's record of its holder. A lock file removed (by its holder, under
    the lock) between the open and the flock is opened again."""
    for _ in range(5):
        fd = open_bookkeeping(path, os.O_RDWR | os.O_CREAT, "lock file")  # a link, FIFO ...: refused
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            content = os.pread(fd, 4097, 0)
        except BlockingIOError:
            holder = _holder_of(os.pread(fd, 4096, 0))
            os.close(fd)
            raise _busy(folder, holder) from None
        except BaseException:
            os.close(fd)
            raise
        if not is_lock_record(content):  # a user's file at the lock's name: never overwritten
            os.close(fd)
            raise GalmetError(f"{path}: exists and is not a galmet lock file (it holds other content); move it away")
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except OSError:
            same = False
        if same:
            return fd
        os.close(fd)
    raise _busy(folder, _holder(path))


@contextlib.contextmanager
def _exclusive_filelock(folder: Path, name: str, what: str) -> Iterator[None]:  # pragma: no cover - Windows
    from filelock import FileLock, Timeout

    lock = FileLock(folder / name, timeout=0, fallback_to_soft=False)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise _busy(folder, "pid unknown") from None
    except (OSError, NotImplementedError) as exc:
        log.warning("%s: cannot lock (%s); make sure no other galmet run uses this folder", folder, exc)
        yield
        return
    try:
        yield
    finally:
        lock.release()


def _topmost_missing(folder: Path) -> Path | None:
    """The highest ancestor of ``folder`` (itself included) that does not exist, or None."""
    top = None
    p = Path(os.path.abspath(folder))
    while not p.exists() and p != p.parent:
        top = p
        p = p.parent
    return top


@contextlib.contextmanager
def locked_folder(folder: str | os.PathLike, what: str = "galmet") -> Iterator[Path]:
    """Create ``folder`` (and its parents) if needed and hold its lock for the block; yield it.

    The folders this call created are removed again afterwards when they hold nothing but
    galmet's bookkeeping (a run refused by its checks leaves no trace). GalmetError when
    another run holds the folder.
    """
    from galmet.io.safety import remove_empty_dirs

    folder = Path(folder)
    top = _topmost_missing(folder)
    folder.mkdir(parents=True, exist_ok=True)
    try:
        with exclusive(folder, RUN_LOCK, what):
            yield folder
    finally:
        if top is not None:
            absolute = Path(os.path.abspath(folder))
            remove_empty_dirs([absolute, *[p for p in absolute.parents if p.is_relative_to(top)]])


def holds_folder_lock(param: str, what: str) -> Callable:
    """Decorator: the function runs holding the lock of the folder its parameter ``param`` names
    (:func:`locked_folder`). When that path cannot be a folder (it is a file, or sits under one)
    the function runs unlocked, so that its own checks say what is wrong."""

    def wrap(func: Callable) -> Callable:
        sig = inspect.signature(func)

        @functools.wraps(func)
        def run(*args, **kwargs):
            try:
                bound = sig.bind(*args, **kwargs)
            except TypeError:
                return func(*args, **kwargs)  # (Python's own message)
            bound.apply_defaults()
            value = bound.arguments.get(param)
            if not isinstance(value, (str, os.PathLike)) or not str(value).strip():
                return func(*args, **kwargs)
            with contextlib.ExitStack() as stack:
                with contextlib.suppress(OSError):  # not a folder: the function's checks say so
                    stack.enter_context(locked_folder(value, what))
                return func(*args, **kwargs)

        return run

    return wrap


def held_elsewhere(folder: str | os.PathLike, name: str = RUN_LOCK) -> bool:
    """True when another process holds the lock file ``folder/name`` right now (False when the
    file does not exist: nothing is created)."""
    path = Path(folder) / name
    if path.is_symlink() or not path.is_file():
        return False
    if fcntl is None:  # pragma: no cover - Windows
        from filelock import FileLock, Timeout

        lock = FileLock(path, timeout=0, fallback_to_soft=False)
        try:
            lock.acquire(timeout=0)
        except Timeout:
            return True
        except (OSError, NotImplementedError):
            return False
        lock.release()
        return False
    try:
        fd = open_bookkeeping(path, os.O_RDONLY, "lock file")
    except (OSError, GalmetError):
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        os.close(fd)
    return False


def holder(folder: str | os.PathLike, name: str = RUN_LOCK) -> str:
    """Who holds (or last held) the folder's lock: ``pid N, WHAT``, from the lock file."""
    return _holder(Path(folder) / name)
