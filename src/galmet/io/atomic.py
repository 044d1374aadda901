"""Atomic file writes: write to a temporary file in the same folder, then rename.

A crash (even ``kill -9``) at any moment leaves either the old file or the complete new
one, never a half-written file. Temporary files are named ``.<name>.<random>.galmet.tmp`` and
noted in the folder's ledger when created, so a later run can recognise and remove its own
leftovers (:func:`remove_stale_temp_files`) and never a user's file of that name.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from galmet.io.ownership import TEMP_FILE, TMP_SUFFIX, is_temp_file, owned_by_galmet, record, record_temp

__all__ = [
    "TEMP_FILE",
    "TMP_SUFFIX",
    "is_temp_file",
    "atomic_path",
    "atomic_write_bytes",
    "atomic_write_text",
    "remove_stale_temp_files",
]


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, durable: bool = True, sha256: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it onto ``path``.

    The caller writes the file at the yielded path by any means (e.g. ``df.to_parquet``).
    On an exception the temporary file is removed and ``path`` is left untouched.
    ``durable=False`` skips the fsync before the rename: the write is still atomic for every
    reader and after a kill of the process, only not after a power cut (for scratch files that
    are deleted soon anyway, where an fsync would cost more than the file is worth).
    Once in place the file is noted in its folder's ledger as galmet's
    (:func:`galmet.io.ownership.record`; ``sha256``: its bytes' digest when the caller knows it).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TMP_SUFFIX, dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes 0600; give outputs the usual permissions
    try:
        record_temp(tmp_path)  # so that a later run may remove it after a kill (and a user's never)
        yield tmp_path
        if durable:
            _fsync_file(tmp_path)
        record(path, sha256, content=tmp_path)  # before the rename: a kill never leaves an unnoted file
        os.replace(tmp_path, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fsync_file(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write_bytes(path: str | os.PathLike, data: bytes, durable: bool = True) -> None:
    """Write ``data`` to ``path`` atomically (``durable``: see :func:`atomic_path`)."""
    with atomic_path(path, durable, hashlib.sha256(data).hexdigest()) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


def remove_stale_temp_files(folder: str | os.PathLike, of: str | None = None) -> int:
    """Delete the temporary files interrupted atomic writes left in ``folder`` (only those its
    ledger notes galmet created, :func:`galmet.io.ownership.record_temp`: a user's file that merely
    has such a name stays; of the file ``of`` when given); return how many."""
    folder = Path(folder)
    if not folder.is_dir():
        return 0
    n = 0
    for p in folder.glob(f".*{TMP_SUFFIX}"):
        if is_temp_file(p.name, of) and owned_by_galmet(p):
            with contextlib.suppress(FileNotFoundError):
                p.unlink()
                n += 1
    return n
