"""Sets of galaxies a model has seen, stored as hashes: which galaxies trained or calibrated it.

A bundle records the galaxies that trained each network and those that calibrated its error bars
(:class:`GalaxyIdSet`), so that ``galmet calibrate`` can leave out (or refuse) the model's own
training galaxies whatever a table's ``split`` column says, and ``galmet evaluate`` can leave out
rows that calibrated the model. A galaxy is named by its key: the decimal ``objID`` when the
table or dataset has one, else its image file name (:func:`row_keys`). Each key is stored as the
first 8 bytes of its sha256 (a 64-bit hash: for 10^6 galaxies the chance that any other galaxy
shares a hash with one of them is ~10^-7), sorted, as base64 text in the bundle's meta: 142,000
galaxies take 1.5 MB of text.

Numpy and pandas only.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from galmet.errors import ConfigError

#: The hash of a key as stored: the first 8 bytes (big-endian) of sha256 of its UTF-8 text.
HASH_NAME = "sha256-64"
GALAXY_ID_SET_VERSION = 1
#: Most galaxies one set may hold (10^9: any survey's spectroscopic sample fits).
MAX_IDS = 1_000_000_000


def key_hashes(keys: Iterable[object]) -> np.ndarray:
    """The 64-bit hash of each key's text, uint64 (N,), in the keys' order."""
    out = [int.from_bytes(hashlib.sha256(str(k).encode("utf-8")).digest()[:8], "big") for k in keys]
    return np.asarray(out, dtype=np.uint64)


def row_keys(table: pd.DataFrame) -> list[str] | None:
    """Each row's galaxy key (decimal objID, else the ``file`` name), as a dataset names it
    (:attr:`galmet.data.dataset.Dataset.names`); None when the table has neither column (or
    only missing cells in it)."""
    if "objID" in table.columns and table["objID"].notna().all():
        ids = pd.to_numeric(table["objID"], errors="coerce")
        if ids.notna().all():
            return [str(int(v)) for v in ids]
        return [str(v) for v in table["objID"]]
    if "file" in table.columns and table["file"].notna().all():
        return [str(v).rsplit("/", 1)[-1] for v in table["file"]]
    return None


@dataclass(frozen=True)
class GalaxyIdSet:
    """A set of galaxies, as sorted unique 64-bit hashes of their keys.

    Attributes
    ----------
    hashes : numpy.ndarray
        uint64 (M,), sorted, unique.
    role : str
        What the galaxies did (``"train"``, ``"calibration"``): said in messages.
    """

    hashes: np.ndarray
    role: str = "train"

    @classmethod
    def of(cls, keys: Iterable[object], role: str = "train") -> GalaxyIdSet:
        """The set of the given keys (decimal objIDs or file names)."""
        return cls(np.unique(key_hashes(keys)), role)

    def __len__(self) -> int:
        return int(self.hashes.size)

    def contains(self, keys: Iterable[object]) -> np.ndarray:
        """bool (N,): which of the keys are in the set."""
        return self.contains_hashes(key_hashes(keys))

    def contains_hashes(self, h: np.ndarray) -> np.ndarray:
        """bool (N,): which of the hashes (uint64 (N,), :func:`key_hashes`) are in the set."""
        h = np.asarray(h, dtype=np.uint64)
        if self.hashes.size == 0 or h.size == 0:
            return np.zeros(h.size, dtype=bool)
        pos = np.minimum(np.searchsorted(self.hashes, h), self.hashes.size - 1)
        return self.hashes[pos] == h

    @classmethod
    def union(cls, sets: Iterable[GalaxyIdSet], role: str = "train") -> GalaxyIdSet:
        """The galaxies in any of ``sets``."""
        parts = [s.hashes for s in sets]
        return cls(np.unique(np.concatenate(parts)) if parts else np.zeros(0, dtype=np.uint64), role)

    def to_dict(self) -> dict[str, Any]:
        """Plain data for a bundle's meta."""
        return {
            "version": GALAXY_ID_SET_VERSION,
            "hash": HASH_NAME,
            "role": self.role,
            "n": len(self),
            "hashes_b64": base64.b64encode(self.hashes.astype(">u8").tobytes()).decode("ascii"),
        }

    @classmethod
    def from_dict(cls, data: Any, where: str = "galaxy set") -> GalaxyIdSet:
        """Read a dict written by :meth:`to_dict`; ConfigError (one line naming ``where``) when malformed."""
        try:
            if not isinstance(data, dict):
                raise TypeError(f"a mapping, got {type(data).__name__}")
            if data.get("version") != GALAXY_ID_SET_VERSION or data.get("hash") != HASH_NAME:
                raise ValueError(f"version {data.get('version')!r} / hash {data.get('hash')!r}")
            raw = base64.b64decode(data["hashes_b64"], validate=True)
            if len(raw) % 8:
                raise ValueError("hash bytes not a multiple of 8")
            hashes = np.frombuffer(raw, dtype=">u8").astype(np.uint64)
            n, role = int(data["n"]), str(data.get("role", "train"))
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"{where}: malformed ({type(exc).__name__}: {exc})") from None
        if n != hashes.size or n > MAX_IDS or (n > 1 and not bool(np.all(hashes[1:] > hashes[:-1]))):
            raise ConfigError(f"{where}: malformed (n {n}, {hashes.size} hashes, sorted and unique required)")
        return cls(hashes, role[:40])
