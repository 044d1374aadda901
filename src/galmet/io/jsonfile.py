"""JSON outputs and the provenance of input files.

:func:`write_json` writes indented JSON atomically (NaN and infinities become ``null``, numpy
scalars plain numbers); :func:`provenance` records where a file came from.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
from pathlib import Path

import numpy as np

from galmet.io.atomic import atomic_write_text


def provenance(path: str | os.PathLike) -> dict:
    """Where a file came from: its path, size (bytes), modification time (UTC ISO) and SHA-256."""
    p = Path(path)
    h = hashlib.sha256()
    with open(p, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    st = p.stat()
    return {
        "path": str(p.resolve()),
        "bytes": st.st_size,
        "modified": datetime.datetime.fromtimestamp(st.st_mtime, datetime.timezone.utc).isoformat(timespec="seconds"),
        "sha256": h.hexdigest(),
    }


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return None if not np.isfinite(obj) else float(obj)
    if isinstance(obj, Path):
        return str(obj)
    return obj


def write_json(path: str | os.PathLike, obj) -> Path:
    """Write ``obj`` as indented JSON atomically (NaN/inf become null); return the path."""
    atomic_write_text(path, json.dumps(_jsonable(obj), indent=2) + "\n")
    return Path(path)
