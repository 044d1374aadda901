"""The decode cache: every image of a dataset decoded once into ``images.npy`` and memory-mapped.

The cache (uint8 (N, H, W, 3), row order = catalogue order) sits beside a small JSON file that
binds it to the content it was made from, in two directions:

- the **rows**: a fingerprint of every row's name and image file content (:func:`file_digests`:
  a BLAKE2b digest of each file, whole up to 64 KiB, else its first and last 32 KiB and its
  size), so an image replaced by another of the same name, size and modification time is
  noticed (names, sizes and mtimes survive ``cp -p`` and ``rsync -a``);
- the **stretch** of FITS cutouts (:mod:`galmet.data.stretch`): the same fluxes decoded with
  another stretch are other pixels;
- the **array**: a fingerprint of ``images.npy`` itself (:func:`npy_fingerprint`: its size and
  66 blocks of 4 KiB spread over it), so a foreign ``images.npy`` copied in beside a key that
  matches is not used either.

A cache whose key does not match is rebuilt. Both fingerprints read a bounded amount per file,
so checking the cache stays cheap next to decoding (see BENCHMARKS.md).
"""

from __future__ import annotations

import hashlib
import json
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from galmet._env import env
from galmet.io.atomic import atomic_path, atomic_write_text
from galmet.io.inputs import special_kind
from galmet.layout import CATALOG_PARQUET, IMAGE_CACHE, cache_key_file

#: Version of the key; caches with another version are rebuilt.
CACHE_FORMAT = 2
#: Version of the checks a FITS set's rows pass before they are cached (2: every header against
#: the set's survey, bands, unit and scale, and no blank or all-NaN cutout); a cache made
#: before them is not used, so a set they would refuse is not read from it.
FITS_CHECKS = 2
#: Files up to this size are hashed whole; larger ones by their first and last half of it.
WHOLE_FILE_BYTES = 1 << 16
_BLOCK = 4096
_NPY_SAMPLES = 64


def cache_location(root: Path, cache: bool | str | os.PathLike) -> Path | None:
    """Where the decode cache of the dataset at ``root`` lives (None: ``cache`` is False)."""
    if cache is False:
        return None
    if cache is not True:
        return Path(cache)
    # Only write into directories galmet made (catalog.parquet): never into a shipped sample,
    # a user's photo folder or a read-only share, even when running as root; and never over an
    # images.npy / images.json there that galmet did not write.
    if (
        (root / CATALOG_PARQUET).is_file()
        and os.access(root, os.W_OK)
        and root.stat().st_mode & 0o222
        and is_galmet_cache_or_absent(root / IMAGE_CACHE)
    ):
        return root / IMAGE_CACHE
    base = Path(env("GALMET_CACHE_DIR") or Path.home() / ".cache" / "galmet")  # empty means unset
    key = hashlib.sha1(str(root.resolve()).encode()).hexdigest()[:16]
    return base / key / IMAGE_CACHE


def _key_path(location: Path) -> Path:
    return location.with_name(cache_key_file(location.name))


def is_galmet_cache_or_absent(location: Path) -> bool:
    """True when neither the cache file nor its key exists, or the key is galmet's (a JSON object
    with this format's ``key``, or galmet 0.1's ``rows_sha1``): only then may galmet write there."""
    key = _key_path(location)
    if not os.path.lexists(key):
        return not os.path.lexists(location)
    if special_kind(key) is not None or special_kind(location) is not None:
        return False  # a FIFO, device or folder there is not galmet's (and opening a FIFO blocks)
    try:
        meta = json.loads(key.read_text())
    except (OSError, ValueError):
        return False
    return isinstance(meta, dict) and (isinstance(meta.get("key"), dict) or "rows_sha1" in meta)


def file_digest(path: Path) -> str:
    """BLAKE2b-128 of an image file: the whole file up to :data:`WHOLE_FILE_BYTES`, else its
    first and last half of that plus its size; ``"unreadable"`` when it cannot be read."""
    h = hashlib.blake2b(digest_size=16)
    if special_kind(path) is not None:  # a FIFO or device is never opened
        return "unreadable"
    try:
        with open(path, "rb") as fh:
            head = fh.read(WHOLE_FILE_BYTES + 1)
            if len(head) <= WHOLE_FILE_BYTES:
                h.update(head)
            else:
                size = os.fstat(fh.fileno()).st_size
                h.update(head[: WHOLE_FILE_BYTES // 2])
                fh.seek(max(0, size - WHOLE_FILE_BYTES // 2))
                h.update(fh.read(WHOLE_FILE_BYTES // 2))
                h.update(str(size).encode())
    except OSError:
        return "unreadable"
    return h.hexdigest()


def file_digests(paths: list[Path], workers: int | None = None) -> list[str]:
    """:func:`file_digest` of every path, read by a few threads (hashing releases the GIL)."""
    workers = workers or min(8, (os.cpu_count() or 1) * 2)
    if len(paths) < 64:
        return [file_digest(p) for p in paths]
    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(file_digest, paths, chunksize=64))


def cache_key(names: list[str], paths: list[Path], digests: list[str], stretch: dict | None = None) -> dict:
    """The key a cache must carry to be used for these rows: their number, and a fingerprint of
    every row's name, file name and content digest (from :func:`file_digests`), in row order;
    for FITS cutouts, also the stretch their fluxes were decoded with
    (:meth:`galmet.data.stretch.Stretch.to_dict`), so another stretch never reads stale pixels."""
    h = hashlib.sha256()
    for name, p, d in zip(names, paths, digests, strict=True):
        h.update(f"{name}|{p.name}|{d}\n".encode())
    key: dict = {"format": CACHE_FORMAT, "n": len(names), "rows_sha256": h.hexdigest()}
    if stretch is not None:
        key["stretch"], key["fits_checks"] = stretch, FITS_CHECKS
    return key


def npy_fingerprint(location: Path) -> str:
    """A fingerprint of the array file itself: its size, its first and last 4 KiB and 64 blocks
    of 4 KiB evenly spread between (a few hundred KiB read, whatever the size of the cache)."""
    h = hashlib.blake2b(digest_size=16)
    size = location.stat().st_size
    h.update(str(size).encode())
    offsets = np.linspace(0, max(0, size - _BLOCK), _NPY_SAMPLES + 2).astype(np.int64)
    with open(location, "rb") as fh:
        for off in sorted(set(offsets.tolist())):
            fh.seek(off)
            h.update(fh.read(_BLOCK))
    return h.hexdigest()


def open_cache(location: Path, key: dict, size: int | None = None) -> np.ndarray | None:
    """The memory-mapped cache at ``location`` when it was made for ``key`` (and has images of
    ``size`` pixels, when given) and is the very array that key was written with; else None."""
    if special_kind(location) is not None or special_kind(_key_path(location)) is not None:
        return None  # a FIFO, device or folder: never opened
    try:
        meta = json.loads(_key_path(location).read_text())
        if not isinstance(meta, dict) or meta.get("key") != key:
            return None
        cached_size = meta.get("size")
        if not isinstance(cached_size, int) or (size is not None and cached_size != size):
            return None
        if meta.get("npy") != npy_fingerprint(location):
            return None
        arr = np.load(location, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError):
        return None
    if arr.dtype != np.uint8 or arr.shape != (key["n"], cached_size, cached_size, 3):
        return None
    return arr


def write_cache(location: Path, images: np.ndarray, key: dict) -> None:
    """Write ``images`` and their key (the key last, so a crash leaves no valid-looking pair)."""
    location.parent.mkdir(parents=True, exist_ok=True)
    meta_path = _key_path(location)
    meta_path.unlink(missing_ok=True)  # invalidate first: a crash below leaves no stale pair
    with atomic_path(location) as tmp:
        with open(tmp, "wb") as fh:
            np.save(fh, images)
    meta = {"key": key, "size": int(images.shape[1]), "npy": npy_fingerprint(location)}
    atomic_write_text(meta_path, json.dumps(meta))
