"""The decode cache: every image of a dataset decoded once into ``images.npy`` and memory-mapped.

The cache (uint8 (N, H, W, 3), row order = catalogue order) sits beside a small JSON key that
binds it to the rows it was made from; a key that no longer matches means the cache is rebuilt.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

from galmet.io.atomic import atomic_path, atomic_write_text
from galmet.layout import CATALOG_PARQUET, IMAGE_CACHE


def cache_location(root: Path, cache: bool | str | os.PathLike) -> Path | None:
    """Where the decode cache of the dataset at ``root`` lives (None: ``cache`` is False)."""
    if cache is False:
        return None
    if cache is not True:
        return Path(cache)
    # Only write into directories galmet made (catalog.parquet): never into a shipped sample,
    # a user's photo folder or a read-only share, even when running as root.
    if (root / CATALOG_PARQUET).is_file() and os.access(root, os.W_OK) and root.stat().st_mode & 0o222:
        return root / IMAGE_CACHE
    base = Path(os.environ.get("GALMET_CACHE_DIR", Path.home() / ".cache" / "galmet"))
    key = hashlib.sha1(str(root.resolve()).encode()).hexdigest()[:16]
    return base / key / IMAGE_CACHE


def cache_key(names: list[str], size: int, paths: list[Path]) -> dict:
    """The key a cache must carry to be used for these rows (names, sizes and mtimes of the files)."""
    h = hashlib.sha1()
    for name, p in zip(names, paths, strict=True):
        st = p.stat()
        h.update(f"{name}|{p.name}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return {"n": len(names), "size": size, "rows_sha1": h.hexdigest(), "format": 1}


def open_cache(location: Path, key: dict) -> np.ndarray | None:
    """The memory-mapped cache at ``location`` when its key is ``key``, else None."""
    meta = location.with_suffix(".json")
    try:
        if json.loads(meta.read_text()) != key:
            return None
        arr = np.load(location, mmap_mode="r")
    except (OSError, ValueError):
        return None
    if arr.dtype != np.uint8 or arr.shape != (key["n"], key["size"], key["size"], 3):
        return None
    return arr


def write_cache(location: Path, images: np.ndarray, key: dict) -> None:
    """Write ``images`` and their key (the key last, so a crash leaves no valid-looking pair)."""
    location.parent.mkdir(parents=True, exist_ok=True)
    meta = location.with_suffix(".json")
    meta.unlink(missing_ok=True)  # invalidate first: a crash below leaves no stale pair
    with atomic_path(location) as tmp:
        with open(tmp, "wb") as fh:
            np.save(fh, images)
    atomic_write_text(meta, json.dumps(key))
