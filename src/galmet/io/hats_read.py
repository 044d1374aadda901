"""Read a HATS catalogue one partition at a time: its pixels, its ra/dec columns, one pixel's rows.

:func:`open_hats` reads the catalogue's properties and partition list (a few small files) with
the hats library; :meth:`HatsInput.read` reads one partition's parquet file. Nothing reads the
whole catalogue. A HATS *collection* (a folder with ``collection.properties``, as
``lsdb``'s ``to_hats`` writes by default) is read through its primary catalogue.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from galmet._optional import require
from galmet.errors import DataError, one_line
from galmet.io.hats_pixels import PURPOSE, HatsPixel

#: The files whose presence makes a folder look like a HATS catalogue or collection.
MARKERS = ("hats.properties", "properties", "collection.properties")
#: The catalogue types galmet reads positions from (a margin cache repeats its neighbours' rows;
#: index and association tables hold no positions of their own).
OBJECT_TYPES = ("object", "source")


def is_hats(path: str | os.PathLike) -> bool:
    """True when ``path`` is a folder holding a HATS catalogue or collection that the hats
    library reads (properties and partition list); False for anything else (never raises)."""
    p = Path(path)
    try:
        if not p.is_dir() or not any((p / m).is_file() for m in MARKERS):
            return False
        _load(p)
    except Exception:  # noqa: BLE001 (whatever hats raises, the folder is not a catalogue it reads)
        return False
    return True


def _load(path: Path):
    """The hats Catalog at ``path`` (a collection's primary catalogue); raises what hats raises."""
    hats = require("hats", "scale", PURPOSE)
    cat = hats.read_hats(path, read_moc=False)
    cat = getattr(cat, "main_catalog", cat)  # a CatalogCollection holds its primary catalogue
    info = cat.catalog_info
    if str(info.catalog_type) not in OBJECT_TYPES:
        raise ValueError(f"a {info.catalog_type} table, not a catalogue of objects or sources")
    if info.ra_column is None or info.dec_column is None:
        raise ValueError("its properties name no ra/dec columns")
    return cat


@dataclass
class HatsInput:
    """An opened HATS catalogue: its pixels and properties; :meth:`read` reads one pixel's rows.

    Attributes
    ----------
    path : Path
        The folder given to :func:`open_hats`.
    root : Path
        The catalogue's own folder (``path``, or a collection's primary catalogue inside it).
    pixels : list of HatsPixel
        Its partitions, in (order, pixel) order.
    ra_column, dec_column : str
        Its position columns (degrees), from its properties.
    name : str
        Its ``obs_collection``.
    total_rows : int
        Rows in all partitions (``hats_nrows``, else counted from the parquet footers).
    npix_suffix : str
        How its partition files end (``.parquet``; ``/`` for a folder of files per pixel).
    """

    path: Path
    root: Path
    pixels: list[HatsPixel]
    ra_column: str
    dec_column: str
    name: str
    total_rows: int
    npix_suffix: str = ".parquet"
    properties: dict = field(default_factory=dict)

    def pixel_path(self, pixel: HatsPixel) -> Path:
        """The parquet file (or folder, ``npix_suffix`` ``/``) of ``pixel``'s rows."""
        suffix = "" if self.npix_suffix in ("/", "\\") else self.npix_suffix
        return self.root / "dataset" / f"Norder={pixel.order}" / f"Dir={pixel.dir}" / f"Npix={pixel.pixel}{suffix}"

    def read(self, pixel: HatsPixel, columns: list[str] | None = None) -> pd.DataFrame:
        """The rows of one partition as a DataFrame (all columns, or ``columns``; a fresh RangeIndex).

        DataError (one line naming the file) when ``pixel`` is not one of :attr:`pixels`, its
        file is missing or cannot be read, or a column asked for is not in it.
        """
        if pixel not in self._pixel_set:
            raise DataError(f"{self.path}: has no partition Norder={pixel.order} Npix={pixel.pixel}")
        file = self.pixel_path(pixel)
        if not file.exists():
            raise DataError(f"{file}: partition file of HATS catalogue {self.path} is missing")
        import pyarrow.parquet as pq

        try:
            table = pq.read_table(file, columns=list(columns) if columns is not None else None)
        except Exception as exc:  # noqa: BLE001 (pyarrow raises many kinds; each is one bad file)
            raise DataError(f"{file}: cannot read this HATS partition ({one_line(exc)})") from None
        frame = table.to_pandas()
        if not isinstance(frame.index, pd.RangeIndex):  # a catalogue that stored _healpix_29 as the index
            frame = frame.reset_index()
        return frame.reset_index(drop=True)

    @property
    def _pixel_set(self) -> frozenset[HatsPixel]:
        cached = self.__dict__.get("_pixels_cache")
        if cached is None:
            cached = self.__dict__["_pixels_cache"] = frozenset(self.pixels)
        return cached


def open_hats(path: str | os.PathLike) -> HatsInput:
    """Open the HATS catalogue (or collection) at ``path``: properties and partition list only.

    DataError (one line naming ``path``) when it is not a HATS catalogue the hats library reads,
    or a catalogue of another kind (margin, index, association: no ra/dec of its own).
    ConfigError when hats is not installed (``pip install 'galmet[scale]'``).
    """
    p = Path(path)
    if not p.is_dir():
        raise DataError(f"{p}: not a HATS catalogue (not a folder)")
    if not any((p / m).is_file() for m in MARKERS):
        raise DataError(f"{p}: not a HATS catalogue (no {' or '.join(MARKERS)} file)")
    try:
        cat = _load(p)
        pixels = sorted(HatsPixel(int(hp.order), int(hp.pixel)) for hp in cat.get_healpix_pixels())
    except Exception as exc:  # noqa: BLE001 (hats raises ValueError, FileNotFoundError, pydantic errors ...)
        raise DataError(f"{p}: not a HATS catalogue galmet can read ({one_line(exc)})") from None
    info = cat.catalog_info
    root = Path(str(cat.catalog_base_dir.path)) if cat.catalog_base_dir is not None else p
    opened = HatsInput(
        path=p,
        root=root,
        pixels=pixels,
        ra_column=str(info.ra_column),
        dec_column=str(info.dec_column),
        name=str(info.catalog_name),
        total_rows=0,
        npix_suffix=str(info.npix_suffix or ".parquet"),
        properties=info.model_dump(by_alias=True, exclude_none=True, mode="json"),
    )
    opened.total_rows = int(info.total_rows) if info.total_rows is not None else _count_rows(opened)
    return opened


def _count_rows(opened: HatsInput) -> int:
    """Rows of all partitions, from their parquet footers (for a catalogue without ``hats_nrows``)."""
    import pyarrow.dataset as ds

    total = 0
    for pixel in opened.pixels:
        file = opened.pixel_path(pixel)
        try:
            total += ds.dataset(file, format="parquet").count_rows()
        except Exception as exc:  # noqa: BLE001 (pyarrow raises many kinds; each is one bad file)
            raise DataError(f"{file}: cannot read this HATS partition ({one_line(exc)})") from None
    return total
