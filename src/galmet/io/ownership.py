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
import threading
from collections.abc import Iterator
from pathlib import Path

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


def file_sha256(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file's bytes, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(_HASH_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def record(path: str | os.PathLike, sha256: str | None = None, content: str | os.PathLike | None = None) -> None:
    """Note in the ledger of ``path``'s folder that galmet writes ``path``.

    ``content`` is the file that holds its bytes now (default ``path`` itself): an atomic write
    notes its temporary file just *before* renaming it onto ``path`` (a rename keeps size and
    modification time), so a kill at any moment never leaves a galmet file the ledger does not
    know. ``sha256`` is the hex digest of the bytes when the caller has it (else they are read).
    A failure to note it (a read-only folder, say) is ignored: the file then counts as the
    user's, the safe side.
    """
    p = Path(path)
    with contextlib.suppress(OSError):
        st = Path(content if content is not None else p).stat()
        source = content if content is not None else p
        digest = sha256 if sha256 is not None else file_sha256(source) if st.st_size <= HASH_LIMIT else None
        line = json.dumps({"name": p.name, "size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": digest})
        fd = os.open(p.parent / LEDGER, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
        try:
            os.write(fd, (line + "\n").encode("utf-8"))
        finally:
            os.close(fd)


def _entries(folder: Path) -> dict[str, list[_Entry]]:
    """The ledger of ``folder``: name -> its last entries (read from where the cache left off)."""
    ledger = folder / LEDGER
    try:
        st = ledger.stat()
    except OSError:
        return {}
    key = os.path.abspath(ledger)
    with _cache_lock:
        ino, done, entries = _cache.get(key, (st.st_ino, 0, {}))
        if ino != st.st_ino or st.st_size < done:  # replaced or truncated: read it again
            done, entries = 0, {}
        if st.st_size > done:
            with contextlib.suppress(OSError), open(ledger, "rb") as fh:
                fh.seek(done)
                data = fh.read()
                end = data.rfind(b"\n") + 1  # a line being appended right now is read next time
                for raw in data[:end].splitlines():
                    with contextlib.suppress(ValueError, TypeError, KeyError, AttributeError):
                        item = json.loads(raw)
                        kept = entries.setdefault(str(item["name"]), [])
                        kept.append((int(item["size"]), int(item["mtime_ns"]), str(item["sha256"] or "")))
                        del kept[:-_KEEP]
                done += end
        _cache[key] = (st.st_ino, done, entries)
        return entries


def owned_by_galmet(path: str | os.PathLike) -> bool:
    """True when ``path`` is a regular file galmet wrote and nobody has changed since (see the
    module docstring), or one of galmet's bookkeeping files (:func:`is_bookkeeping`)."""
    p = Path(path)
    if p.is_symlink() or not p.is_file():
        return False
    if is_bookkeeping(p.name):
        return True
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
    """True for galmet's own housekeeping files: the ledger, its lock files (:data:`LOCKS`) and
    interrupted atomic writes' temporary files (``.<name>.<random>.galmet.tmp``)."""
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
            if p.is_dir() and not p.is_symlink():
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
    """True when ``folder`` is empty but for galmet's bookkeeping files (:func:`is_bookkeeping`)."""
    try:
        return all(is_bookkeeping(p.name) and p.is_file() for p in Path(folder).iterdir())
    except OSError:
        return False
