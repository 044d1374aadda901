"""A local cutout archive: a folder of cutouts on disk, indexed by sky position.

A site that mirrors a survey's cutouts, a ``galmet download`` dataset directory or the folder
``galmet predict --positions ... --keep-cutouts DIR`` keeps are all laid out the same way::

    ARCHIVE/catalog.parquet (or catalog.csv)   objID (or file), ra, dec (ICRS, deg), any other columns
    ARCHIVE/images/<objID>.jpg                 one cutout per row (.jpeg, .png or FITS fluxes
                                               .fits too); with a ``file`` column, ARCHIVE/<file>
    ARCHIVE/manifest.parquet                   optional: the size and pixel scale they were fetched at

:func:`open_archive` reads the catalogue once (and keeps the last few archives' indexes, so the
partitions of one job do not read it again) and indexes its positions in a k-d tree of unit
vectors; :meth:`CutoutArchive.match` gives each sky position the nearest catalogued cutout
within a radius (a chord on the unit sphere: exact at any declination, the poles and ra = 0
included). Nothing in the folder is ever written: the archive is an input.
"""

from __future__ import annotations

import collections
import contextlib
import math
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from galmet.columns import FILE, OBJID, objid_array
from galmet.data.dataset import find_catalog, majority_size
from galmet.data.fits_rows import disagreeing_rows
from galmet.data.flux_images import read_row_header
from galmet.data.imaging import Imaging, recorded_imaging
from galmet.errors import ConfigError, DataError
from galmet.io.fits_images import FITS_SUFFIXES
from galmet.io.safety import Input
from galmet.io.tables import read_table
from galmet.layout import IMAGES_DIR

#: Default match radius, arcsec: a cutout is the archive's when its centre is this close.
DEFAULT_MATCH_RADIUS = 1.0
#: Largest match radius accepted, arcsec (a cutout's whole field is ~38").
MAX_MATCH_RADIUS = 60.0
#: Archive indexes kept in memory (by catalogue file, size and modification time).
CACHED_ARCHIVES = 4
#: Image suffixes tried, in order, for ``images/<objID>``.
_SUFFIXES = (".jpg", ".jpeg", ".png", *FITS_SUFFIXES)


def check_match_radius(radius, param: str = "match_radius") -> float:
    """``radius`` (arcsec) as a float, or ConfigError naming ``param`` unless it is a number in
    (0, :data:`MAX_MATCH_RADIUS`]."""
    ok = isinstance(radius, (int, float, np.floating)) and not isinstance(radius, bool)
    if not ok or not (math.isfinite(radius) and 0 < radius <= MAX_MATCH_RADIUS):
        raise ConfigError(
            f"{param} must be a number of arcsec in (0, {MAX_MATCH_RADIUS:g}], got {radius!r}", param=param
        )
    return float(radius)


def unit_vectors(ra: np.ndarray, dec: np.ndarray) -> np.ndarray:
    """float64 (N, 3) unit vectors of ICRS ``ra``, ``dec`` (degrees)."""
    a, d = np.radians(np.asarray(ra, dtype=np.float64)), np.radians(np.asarray(dec, dtype=np.float64))
    cos_d = np.cos(d)
    return np.stack([cos_d * np.cos(a), cos_d * np.sin(a), np.sin(d)], axis=1)


def chord(arcsec: float) -> float:
    """The chord length on the unit sphere of an angle of ``arcsec`` arcsec."""
    return 2.0 * math.sin(math.radians(arcsec / 3600.0) / 2.0)


@dataclass
class CutoutArchive:
    """A cutout archive's index (see the module doc); from :func:`open_archive`.

    Attributes
    ----------
    root : Path
        The archive folder.
    catalog : Path
        Its catalogue file.
    ids : numpy.ndarray or None
        int64 objID of each indexed entry (None when the catalogue names ``file`` instead).
    files : numpy.ndarray or None
        Image file of each entry relative to ``root`` (a ``file`` column), else None.
    ra, dec : numpy.ndarray
        float64 degrees of each indexed entry (rows with a missing or off-sky position are left out).
    """

    root: Path
    catalog: Path
    ids: np.ndarray | None
    files: np.ndarray | None
    ra: np.ndarray
    dec: np.ndarray
    _tree: object = field(default=None, repr=False)

    def __len__(self) -> int:
        return len(self.ra)

    @property
    def tree(self):
        """scipy's cKDTree of the entries' unit vectors (built once)."""
        if self._tree is None:
            from scipy.spatial import cKDTree

            self._tree = cKDTree(unit_vectors(self.ra, self.dec))
        return self._tree

    def match(self, ra: np.ndarray, dec: np.ndarray, radius: float = DEFAULT_MATCH_RADIUS) -> np.ndarray:
        """int64 (N,): the entry nearest each position (degrees) within ``radius`` arcsec, or -1
        (none that close, or a position that is not finite)."""
        ra, dec = np.asarray(ra, dtype=np.float64), np.asarray(dec, dtype=np.float64)
        out = np.full(len(ra), -1, dtype=np.int64)
        finite = np.isfinite(ra) & np.isfinite(dec)
        if not len(self) or not finite.any():
            return out
        # (a hair over the radius: a cutout centred exactly at the radius is still matched)
        dist, idx = self.tree.query(
            unit_vectors(ra[finite], dec[finite]), distance_upper_bound=chord(radius) * 1.0000001
        )
        hit = np.isfinite(dist)
        found = np.full(int(finite.sum()), -1, dtype=np.int64)
        found[hit] = idx[hit]
        out[finite] = found
        return out

    def name(self, i: int) -> str:
        """The entry's name in messages: ``objID <id>`` or ``file <name>``."""
        return f"file {self.files[i]}" if self.files is not None else f"objID {int(self.ids[i])}"  # type: ignore[index]

    def image_path(self, i: int) -> Path | None:
        """The image file of entry ``i`` when it exists (``images/<objID>.jpg``, ``.jpeg``,
        ``.png`` or ``.fits``; or ``ROOT/<file>``), else None: the archive lacks that cutout."""
        if self.files is not None:
            path = self.root / str(self.files[i])
            return path if path.is_file() else None
        stem = self.root / IMAGES_DIR / str(int(self.ids[i]))  # type: ignore[index]
        for suffix in _SUFFIXES:
            path = stem.with_suffix(suffix)
            if path.is_file():
                return path
        return None

    def imaging(self, sample: list[Path]) -> Imaging:
        """What the archive records of its imaging (:func:`galmet.data.imaging.recorded_imaging`),
        with the size most of the ``sample`` images have (read from their headers only; an
        unreadable one is left out: its row is a bad image when it is predicted). A FITS
        archive's imaging comes from the header of the first sample that is of the samples'
        survey, bands, unit and scale (:func:`~galmet.data.fits_rows.disagreeing_rows`) too,
        with its default stretch."""
        headers = {}
        for i, path in enumerate(sample):
            with contextlib.suppress(DataError):
                headers[i] = read_row_header(path, str(path))
        size = majority_size(self.root, headers.values()) if headers else None
        odd = disagreeing_rows(sample, headers)
        first = next((sample[i] for i in sorted(headers) if i not in odd), sample[0] if sample else None)
        return recorded_imaging(self.root, size, sample=first)


_cache: collections.OrderedDict = collections.OrderedDict()
_cache_lock = threading.Lock()


def open_archive(path: str | os.PathLike, param: str = "archive") -> CutoutArchive:
    """The index of the cutout archive at ``path`` (cached by its catalogue's path, size and
    modification time: a changed catalogue is read again).

    Raises
    ------
    ConfigError
        One line naming ``param``: not a folder, no catalogue, a catalogue without objID (or
        file) and ra/dec columns, or one that cannot be read.
    """
    root = Path(path)
    if not root.is_dir():
        raise ConfigError(f"{param} {root}: is not a folder (a cutout archive is a dataset directory)", param=param)
    try:
        catalog = find_catalog(root)
    except DataError as exc:
        raise ConfigError(f"{param} {exc}", param=param) from None
    if catalog is None:
        raise ConfigError(
            f"{param} {root}: has no catalog.parquet or catalog.csv (objID, ra, dec) beside its images/", param=param
        )
    st = catalog.stat()
    key = (os.path.realpath(catalog), st.st_size, st.st_mtime_ns)
    with _cache_lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    archive = _read_archive(root, catalog, param)
    with _cache_lock:
        _cache[key] = archive
        while len(_cache) > CACHED_ARCHIVES:
            _cache.popitem(last=False)
    return archive


def _read_archive(root: Path, catalog: Path, param: str) -> CutoutArchive:
    """The index of ``catalog`` (its objID or file column, ra and dec)."""
    try:
        frame = read_table(catalog)
    except DataError as exc:
        raise ConfigError(f"{param} {exc}", param=param) from None
    columns = {str(c).lower(): c for c in frame.columns}
    missing = [c for c in ("ra", "dec") if c not in columns]
    if missing or (OBJID.lower() not in columns and FILE not in columns):
        need = " and ".join(missing) if missing else "objID (or file)"
        raise ConfigError(f"{param} {catalog}: the archive's catalogue has no {need} column", param=param)
    ra = pd.to_numeric(frame[columns["ra"]], errors="coerce").to_numpy(dtype=np.float64)
    dec = pd.to_numeric(frame[columns["dec"]], errors="coerce").to_numpy(dtype=np.float64)
    keep = np.isfinite(ra) & np.isfinite(dec) & (np.abs(dec) <= 90)
    files = ids = None
    if FILE in columns:
        files = frame[columns[FILE]].astype(str).to_numpy()[keep]
    else:
        try:
            ids = objid_array(frame[columns[OBJID.lower()]], str(catalog))[keep]
        except DataError as exc:
            raise ConfigError(f"{param} {exc}", param=param) from None
    return CutoutArchive(root, catalog, ids, files, ra[keep], dec[keep])


def check_apart(archive: Path, folders: dict[str, Path | None]) -> None:
    """ConfigError (``param=`` the folder's parameter) when a folder a run writes (its work folder,
    its kept cutouts, its output) is the archive, inside it, or holds it: the archive is an input,
    never written."""
    a = os.path.realpath(archive)
    tree = Input(Path(archive), "the cutout archive", tree=True)
    for param, folder in folders.items():
        if folder is None:
            continue
        f = os.path.realpath(folder)
        if tree.holds(Path(folder)):
            raise ConfigError(
                f"{param} {folder}: is inside the cutout archive {archive}, an input of this run; choose a folder "
                "outside it",
                param=param,
            )
        if a.startswith(f.rstrip(os.sep) + os.sep):
            raise ConfigError(
                f"{param} {folder}: holds the cutout archive {archive}, an input of this run; choose another folder",
                param=param,
            )
