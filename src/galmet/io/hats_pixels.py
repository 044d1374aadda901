"""HEALPix pixels of a HATS catalogue, and the partitioning of a flat table into them.

A HATS catalogue (:mod:`galmet.io.hats`) splits the sky into nested HEALPix pixels of mixed
orders, each holding at most ``hats_max_rows`` rows: coarse pixels where the sky is sparse, fine
ones where it is dense. :class:`HatsPixel` names one such pixel; :func:`plan_pixels` chooses the
pixels for a table of positions the way hats-import and ``lsdb.from_dataframe`` do (the
top-down alignment of :func:`hats.pixel_math.generate_alignment`), but only over the occupied
pixels, so its cost follows the number of rows and not the number of pixels at the finest order.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from galmet._optional import require
from galmet.errors import ConfigError

#: The order of HATS' spatial index column ``_healpix_29`` (the finest HEALPix order).
SPATIAL_ORDER = 29
#: The spatial index column HATS catalogues carry (nested HEALPix pixel at order 29 of each row).
SPATIAL_INDEX = "_healpix_29"
#: What the extra that installs hats, lsdb and dask is for (in the missing-package message).
PURPOSE = "HATS catalogues"

_KEY = re.compile(r"o(?P<order>\d+)-p(?P<pixel>\d+)")


@dataclass(frozen=True, order=True)
class HatsPixel:
    """A nested HEALPix pixel: ``order`` 0-29 and ``pixel`` 0 .. 12*4**order - 1.

    Ordered by (order, pixel). ``key`` names it in file names (``o3-p000123``); the HATS file
    of its rows is ``dataset/Norder=<order>/Dir=<dir>/Npix=<pixel>.parquet``.
    """

    order: int
    pixel: int

    def __post_init__(self) -> None:
        if not 0 <= self.order <= SPATIAL_ORDER:
            raise ConfigError(f"HEALPix order {self.order}: must be 0 to {SPATIAL_ORDER}")
        if not 0 <= self.pixel < 12 * 4**self.order:
            raise ConfigError(
                f"HEALPix pixel {self.pixel}: must be 0 to {12 * 4**self.order - 1} at order {self.order}"
            )

    @property
    def key(self) -> str:
        """A file-name-safe name: ``o<order>-p<pixel, at least 6 digits>``, e.g. ``o3-p000123``."""
        return f"o{self.order}-p{self.pixel:06d}"

    @classmethod
    def from_key(cls, key: str) -> HatsPixel:
        """The pixel a :attr:`key` names (ConfigError for anything else)."""
        m = _KEY.fullmatch(key)
        if m is None:
            raise ConfigError(f"{key!r}: not a HATS pixel key (o<order>-p<pixel>)")
        return cls(int(m["order"]), int(m["pixel"]))

    @property
    def dir(self) -> int:
        """The ``Dir=`` folder of its file: the pixel number rounded down to 10000s."""
        return (self.pixel // 10_000) * 10_000

    @property
    def path(self) -> str:
        """Its file's path inside the catalogue folder (``npix_suffix`` ``.parquet``)."""
        return f"dataset/Norder={self.order}/Dir={self.dir}/Npix={self.pixel}.parquet"

    def index_range(self) -> tuple[int, int]:
        """The ``_healpix_29`` values its rows have: ``[lo, hi)``."""
        shift = 2 * (SPATIAL_ORDER - self.order)
        return self.pixel << shift, (self.pixel + 1) << shift


def spatial_index(ra_deg: np.ndarray, dec_deg: np.ndarray) -> np.ndarray:
    """HATS' ``_healpix_29`` of each position (int64, shape (n,)), by the hats library.

    ``ra_deg``/``dec_deg``: degrees, finite, ``|dec| <= 90`` (RA wraps).
    """
    si = require("hats.pixel_math.spatial_index", "scale", PURPOSE)
    ra = np.asarray(ra_deg, dtype=np.float64)
    dec = np.asarray(dec_deg, dtype=np.float64)
    if len(ra) == 0:
        return np.zeros(0, dtype=np.int64)
    return np.asarray(si.compute_spatial_index(ra, dec), dtype=np.int64)


def valid_positions(ra_deg: np.ndarray, dec_deg: np.ndarray) -> np.ndarray:
    """Boolean mask (shape (n,)) of the rows with a finite RA and a finite Dec in [-90, 90] degrees."""
    ra = np.asarray(ra_deg, dtype=np.float64)
    dec = np.asarray(dec_deg, dtype=np.float64)
    return np.isfinite(ra) & np.isfinite(dec) & (np.abs(dec) <= 90.0)


def plan_pixels(ra_deg, dec_deg, max_rows: int) -> list[tuple[HatsPixel, np.ndarray]]:
    """Partition positions into HEALPix pixels of mixed orders, each with at most ``max_rows`` rows.

    The alignment of hats-import (:func:`hats.pixel_math.generate_alignment`, lowest order 0):
    from order 0 down, a pixel whose rows number ``max_rows`` or fewer becomes a partition;
    a fuller one is split into its four children. Sparse sky gets coarse pixels, dense sky fine ones.

    Parameters
    ----------
    ra_deg, dec_deg : array-like, shape (n,)
        Positions in degrees.
    max_rows : int
        Most rows per pixel (>= 1). Only rows at one and the same order-29 pixel (positions
        within ~0.4 milliarcseconds of each other) can exceed it: they cannot be split.

    Returns
    -------
    list of (HatsPixel, numpy.ndarray)
        The occupied pixels in (order, pixel) order, each with the indices (int64, ascending)
        of its rows into the input. Every row with a valid position is in exactly one pixel.
        Rows with a non-finite RA or Dec, or ``|Dec| > 90``, are in **none**: the caller handles
        them (:func:`valid_positions` says which they are).
    """
    if isinstance(max_rows, bool) or not isinstance(max_rows, (int, np.integer)) or max_rows < 1:
        raise ConfigError(f"max_rows {max_rows!r}: must be a whole number of rows >= 1", param="max_rows")
    ra = np.asarray(ra_deg, dtype=np.float64).ravel()
    dec = np.asarray(dec_deg, dtype=np.float64).ravel()
    if ra.shape != dec.shape:
        raise ConfigError(f"ra_deg and dec_deg: {len(ra)} and {len(dec)} values; they must be as many")
    rows = np.flatnonzero(valid_positions(ra, dec))
    index = spatial_index(ra[rows], dec[rows])
    return _align(rows, index, int(max_rows))


def _align(rows: np.ndarray, index: np.ndarray, max_rows: int) -> list[tuple[HatsPixel, np.ndarray]]:
    """Top-down alignment over the occupied pixels: ``rows`` (ascending) with their ``_healpix_29``."""
    plan: list[tuple[HatsPixel, np.ndarray]] = []
    for order in range(SPATIAL_ORDER + 1):
        if len(rows) == 0:
            break
        pix = index >> (2 * (SPATIAL_ORDER - order))
        uniq, inverse, counts = np.unique(pix, return_inverse=True, return_counts=True)
        done = counts <= max_rows if order < SPATIAL_ORDER else np.ones(len(uniq), dtype=bool)
        member = done[inverse]
        sel = np.flatnonzero(member)
        if len(sel):
            # the rows of each finished pixel, in input order: group by pixel, stably
            grouped = sel[np.argsort(inverse[sel], kind="stable")]
            bounds = np.cumsum(counts[done])[:-1]
            for p, part in zip(uniq[done], np.split(rows[grouped], bounds), strict=True):
                plan.append((HatsPixel(order, int(p)), part.astype(np.int64)))
        rows, index = rows[~member], index[~member]
    plan.sort(key=lambda item: item[0])
    return plan
