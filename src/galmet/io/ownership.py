"""Which files galmet wrote: a hidden, append-only ledger per folder.

Every atomic write (:mod:`galmet.io.atomic`) appends one JSON line to ``FOLDER/.galmet-written``
once its file is in place: ``{"name", "size", "mtime_ns", "sha256"}``. A file is *galmet's*
(:func:`owned_by_galmet`) when the ledger's last line for its name matches it: same size and
modification time, or, when only the time differs (a copy of the folder), the same SHA-256 of
its bytes. A file a user put there, or a galmet file the user has since edited, is not galmet's.

Commands replace only galmet's files unless the user passes ``overwrite`` (which replaces the
files at the names the command writes, and nothing more), and delete only galmet's files, even
with ``overwrite`` (:func:`galmet.io.safety.remove_files`). Files written before galmet kept
ledgers have no line: galmet treats them as the user's (a rerun into such a folder needs
``overwrite`` once).

galmet's own bookkeeping files (the ledger, the lock files, atomic writes' temporary files) are
opened with ``O_NOFOLLOW | O_NONBLOCK`` and must be regular files (:func:`open_bookkeeping`): a
symlink, FIFO or folder at such a name is refused (DataError), never followed nor blocked on. A
name alone never makes a file galmet's (:func:`owned_by_galmet`): a lock file is galmet's while it
holds galmet's record of its holder (or nothing), a temporary file when the ledger noted its
creation (:func:`record_temp`), so a user's ``.galmet.lock`` or ``.x.bak1.galmet.tmp`` is never
deleted. A ledger line that is not a well-formed entry is ignored.

Appending costs one ``open(O_APPEND)`` and one short write per file (O(1), safe between threads
and processes) plus the file's SHA-256 (not for files over :data:`HASH_LIMIT`); the ledger is
read incrementally and cached, so checking thousands of files reads it once.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

from galmet.errors import DataError
from galmet.layout import DOWNLOAD_LOCK, POSITIONS_LOCK, RUN_LOCK

#: The ledger's name in each folder galmet writes into.
LEDGER = ".galmet-written"
#: galmet's lock files (bookkeeping, never a user's output).
LOCKS = (RUN_LOCK, DOWNLOAD_LOCK, POSITIONS_LOCK)
TMP_SUFFIX = ".galmet.tmp"
#: A temporary file of :func:`galmet.io.atomic.atomic_path`: ``.<name>.<mkstemp's random part>.galmet.tmp``.
TEMP_FILE = re.compile(r"\.(?P<name>.+)\.[A-Za-z0-9_]+\.galmet\.tmp")
_HASH_CHUNK = 1 << 20
#: Files larger than this (bytes) are noted without their SHA-256 (a decode cache can take
#: gigabytes): such a file is galmet's only while its size and modification time match.
HASH_LIMIT = 1 << 28

_cache_lock = threading.Lock()
#: An entry as kept in memory: (size, mtime_ns, sha256).
_Entry = tuple[int, int, str]
#: ledger path -> (inode, bytes read, name -> its last entries)
_cache: dict[str, tuple[int, int, dict[str, list[_Entry]]]] = {}
#: Entries kept per name: a write killed between its note and its rename must not make the
#: previous version of the file a stranger (a file that matches any of them is galmet's).
_KEEP = 8
#: The entry of a temporary file galmet created (:func:`record_temp`).
_TEMP: _Entry = (-1, -1, "temp")


def file_sha256(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file's bytes, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(_HASH_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def open_bookkeeping(path: str | os.PathLike, flags: int, what: str = "bookkeeping file") -> int:
    """Open galmet's own bookkeeping file ``path`` (its ledger, a lock file, a temporary file) and
    return the descriptor: never through a symlink (``O_NOFOLLOW``), never blocking on a FIFO
    (``O_NONBLOCK``), and only when it is a regular file. DataError (one line naming it) when
    something else sits at that name; OSError for the rest (a read-only folder, no such file)."""
    extra = getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags | extra, 0o666)
    except OSError:
        kind = odd_kind(Path(path))
        if kind is None:
            raise
        raise _refused(path, kind, what) from None
    try:
        mode = os.fstat(fd).st_mode
    except OSError:
        os.close(fd)
        raise
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise _refused(path, _mode_kind(mode), what)
    return fd


def _mode_kind(mode: int) -> str:
    for test, kind in (
        (stat.S_ISLNK, "symbolic link"),
        (stat.S_ISDIR, "directory"),
        (stat.S_ISFIFO, "FIFO (named pipe)"),
        (stat.S_ISCHR, "character device"),
        (stat.S_ISBLK, "block device"),
        (stat.S_ISSOCK, "socket"),
    ):
        if test(mode):
            return kind
    return "special file"


def odd_kind(path: str | os.PathLike) -> str | None:
    """What ``path`` is when it exists and is not a regular file (links not followed), else None."""
    try:
        mode = os.lstat(path).st_mode
    except (OSError, ValueError):
        return None
    return None if stat.S_ISREG(mode) else _mode_kind(mode)


def _refused(path: str | os.PathLike, kind: str, what: str) -> DataError:
    return DataError(f"{path}: is a {kind}, not galmet's {what} (galmet neither follows nor replaces it); move it away")


def _append_line(folder: Path, line: str) -> None:
    """Append one line to ``folder``'s ledger (created if needed; see :func:`open_bookkeeping`)."""
    fd = open_bookkeeping(folder / LEDGER, os.O_WRONLY | os.O_APPEND | os.O_CREAT, "ledger")
    try:
        os.write(fd, (line + "\n").encode("utf-8"))
    finally:
        os.close(fd)


def record(path: str | os.PathLike, sha256: str | None = None, content: str | os.PathLike | None = None) -> None:
    """Note in the ledger of ``path``'s folder that galmet writes ``path``.

    ``content`` is the file that holds its bytes now (default ``path`` itself): an atomic write
    notes its temporary file just *before* renaming it onto ``path`` (a rename keeps size and
    modification time), so a kill at any moment never leaves a galmet file the ledger does not
    know. ``sha256`` is the hex digest of the bytes when the caller has it (else they are read).
    A failure to note it (a read-only folder, say) is ignored: the file then counts as the
    user's, the safe side. A ledger that is not a regular file (a symlink, a FIFO, a folder) is
    refused with DataError (:func:`open_bookkeeping`).
    """
    p = Path(path)
    with contextlib.suppress(OSError):
        st = Path(content if content is not None else p).stat()
        source = content if content is not None else p
        digest = sha256 if sha256 is not None else file_sha256(source) if st.st_size <= HASH_LIMIT else None
        line = json.dumps({"name": p.name, "size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": digest})
        _append_line(p.parent, line)


def record_temp(tmp: str | os.PathLike) -> None:
    """Note in its folder's ledger that galmet created the temporary file ``tmp`` (an atomic
    write's, just after ``mkstemp``): a later run may then delete it if a kill left it behind,
    while a user's file that merely has such a name is never galmet's. DataError as :func:`record`."""
    p = Path(tmp)
    with contextlib.suppress(OSError):
        _append_line(p.parent, json.dumps({"name": p.name, "temp": True}))


def _parse(raw: bytes) -> tuple[str, _Entry] | None:
    """A ledger line as (name, entry), or None for a line that is not a well-formed one (not
    JSON, wrong types, numbers out of range): a corrupt line is ignored, never an error."""
    try:
        item = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    if not isinstance(item, dict) or not isinstance(item.get("name"), str):
        return None
    if item.get("temp") is True:
        return item["name"], _TEMP
    size, mtime, sha = item.get("size"), item.get("mtime_ns"), item.get("sha256")
    if not (type(size) is int and type(mtime) is int and 0 <= size < 1 << 63 and 0 <= mtime < 1 << 63):
        return None
    if not (sha is None or isinstance(sha, str)):
        return None
    return item["name"], (size, mtime, sha or "")


def _entries(folder: Path) -> dict[str, list[_Entry]]:
    """The ledger of ``folder``: name -> its last entries (read from where the cache left off)."""
    ledger = folder / LEDGER
    try:
        st = ledger.lstat()
    except OSError:
        return {}
    if not stat.S_ISREG(st.st_mode):  # a symlink, FIFO or folder: no ledger (nothing is galmet's)
        return {}
    key = os.path.abspath(ledger)
    with _cache_lock:
        ino, done, entries = _cache.get(key, (st.st_ino, 0, {}))
        if ino != st.st_ino or st.st_size < done:  # replaced or truncated: read it again
            done, entries = 0, {}
        if st.st_size > done:
            data = _read_from(ledger, done)
            end = data.rfind(b"\n") + 1  # a line being appended right now is read next time
            for raw in data[:end].splitlines():
                parsed = _parse(raw)
                if parsed is not None:
                    kept = entries.setdefault(parsed[0], [])
                    kept.append(parsed[1])
                    del kept[:-_KEEP]
            done += end
        _cache[key] = (st.st_ino, done, entries)
        return entries


def _read_from(ledger: Path, offset: int) -> bytes:
    """The ledger's bytes from ``offset`` (b"" when it cannot be read or is not a regular file)."""
    try:
        fd = open_bookkeeping(ledger, os.O_RDONLY, "ledger")
    except (OSError, DataError):
        return b""
    with os.fdopen(fd, "rb") as fh:
        fh.seek(offset)
        return fh.read()


#: A lock file's record of its holder, as :func:`galmet.io.locks.exclusive` writes it.
_LOCK_RECORD = re.compile(rb"[0-9]+ [^\n]*galmet[^\n]*\n?")


def is_lock_record(data: bytes) -> bool:
    """True when ``data`` (a lock file's content) is galmet's record of its holder (``PID 'galmet
    CMD'``) or empty (a lock file opened but not yet written): only such a lock file is galmet's."""
    return not data or _LOCK_RECORD.fullmatch(data) is not None


def _bookkeeping_owned(p: Path) -> bool:
    """Whether the regular file ``p`` at a bookkeeping name is galmet's: the ledger by its name; a
    lock file when it holds galmet's record (:func:`is_lock_record`); a temporary file when the
    ledger notes that galmet created it (:func:`record_temp`). Names alone never make a user's file galmet's."""
    if p.name == LEDGER:
        return True
    if p.name in LOCKS:
        try:
            fd = open_bookkeeping(p, os.O_RDONLY, "lock file")
        except (OSError, DataError):
            return False
        try:
            return is_lock_record(os.read(fd, 4097)[:4097])
        finally:
            os.close(fd)
    return _TEMP in _entries(p.parent).get(p.name, [])


def owned_by_galmet(path: str | os.PathLike) -> bool:
    """True when ``path`` is a regular file galmet wrote and nobody has changed since (see the
    module docstring), or one of galmet's own bookkeeping files (:func:`_bookkeeping_owned`)."""
    p = Path(path)
    if p.is_symlink() or not p.is_file():
        return False
    if is_bookkeeping(p.name):
        return _bookkeeping_owned(p)
    try:
        st = p.stat()
        sized = [e for e in _entries(p.parent).get(p.name, []) if e[0] == st.st_size]
        if not sized:
            return False
        if any(mtime == st.st_mtime_ns for _, mtime, _ in sized):
            return True
        if st.st_size > HASH_LIMIT:
            return False
        digest = file_sha256(p)  # a copy of the folder: same bytes, another time
        return any(sha == digest for _, _, sha in sized)
    except OSError:
        return False


def is_temp_file(name: str, of: str | None = None) -> bool:
    """True when ``name`` is a temporary file left by an atomic write (of the file ``of``, when given)."""
    m = TEMP_FILE.fullmatch(name)
    return m is not None and (of is None or m.group("name") == of)


def is_bookkeeping(name: str) -> bool:
    """True for the *names* of galmet's housekeeping files: the ledger, its lock files
    (:data:`LOCKS`) and atomic writes' temporary files (``.<name>.<random>.galmet.tmp``). A
    name alone does not make a file galmet's: see :func:`owned_by_galmet`."""
    return name == LEDGER or name in LOCKS or is_temp_file(name)


def foreign_files(folder: str | os.PathLike, recursive: bool = True) -> Iterator[Path]:
    """The entries under ``folder`` that galmet did not write (files, links, other special files;
    with ``recursive``, inside its subfolders too). Nothing when ``folder`` does not exist."""
    root = Path(folder)
    if not root.is_dir():
        return
    stack = [root]
    while stack:
        d = stack.pop()
        try:
            items = sorted(d.iterdir())
        except OSError:
            yield d
            continue
        for p in items:
            if p.is_dir() and not p.is_symlink() and not is_bookkeeping(p.name):  # (a folder there: not galmet's)
                if recursive:
                    stack.append(p)
                else:
                    yield p
            elif not owned_by_galmet(p):
                yield p


def first_foreign(folder: str | os.PathLike, recursive: bool = True) -> Path | None:
    """The first entry of :func:`foreign_files`, or None when galmet wrote everything there."""
    return next(iter(foreign_files(folder, recursive)), None)


def holds_only_bookkeeping(folder: str | os.PathLike) -> bool:
    """True when ``folder`` is empty but for galmet's own bookkeeping files (:func:`is_bookkeeping`
    and :func:`owned_by_galmet`: a user's file at such a name keeps the folder)."""
    try:
        return all(is_bookkeeping(p.name) and owned_by_galmet(p) for p in Path(folder).iterdir())
    except OSError:
        return False
