"""Read and write tables (catalogs, predictions) by file suffix: .parquet, .csv, .fits, .ecsv.

:data:`TABLE_FORMATS` is galmet's one suffix -> format registry (:func:`table_format`): every
reader and writer of a table file, pandas DataFrame or astropy QTable, picks its format there.
All writes are atomic. FITS and ECSV go through astropy (imported only when needed) and carry
units and provenance:

- every column with a known unit (:func:`galmet.columns.column_unit`: Z and its errors and
  intervals in dex, stellar masses in dex(solMass), ra/dec in deg, redshift dimensionless)
  gets it: a FITS ``TUNITn`` where the FITS standard has the unit (deg, mag, arcsec,
  dimensionless), and for ``dex`` units (not in the FITS standard) astropy's own serialisation
  in the header, which ``astropy.table.Table.read`` restores; ECSV keeps every unit;
- the provenance (:func:`table_provenance`: galmet version, command, UTC date, and the model
  file and its sha256 when given) goes into the FITS header (keywords :data:`FITS_KEYWORDS`)
  and the ECSV meta.

CSV and parquet are written as before (no units).

Identifier columns (``objID``, ``specObjID``, any case) come back as exact int64 whatever the
file holds: a CSV's are read as text (pandas would otherwise round a column with one
``1237663716556341422.0`` to float64 and lose the last digits of every ID), and a value that is
not an exact integer in the 64-bit range is a one-line error naming the row
(:func:`galmet.columns.objid_array`).
"""

from __future__ import annotations

import datetime
import hashlib
import os
import shlex
import sys
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from galmet._version import __version__
from galmet.columns import column_unit, is_id_column, objid_array
from galmet.errors import ConfigError, DataError, GalmetError, raise_if_out_of_resources
from galmet.io.atomic import atomic_path
from galmet.io.inputs import special_kind


@dataclass(frozen=True)
class TableFormat:
    """One table file format: the suffixes that name it and how it is read and written.

    Attributes
    ----------
    name : str
        ``"parquet"``, ``"ecsv"``, ``"csv"``, ``"fits"`` or ``"votable"``.
    suffixes : tuple of str
        Lower-case file name endings (``".fits.gz"`` counts as one).
    astropy : str
        The ``format=`` astropy.table reads and writes it with.
    writable : bool
        galmet writes it (a VOTable is read only).
    kind : str or None
        The :data:`galmet.io.safety.FORMATS` key an output in this format is checked as (an
        existing file of another kind is not replaced); None when it is not written.
    """

    name: str
    suffixes: tuple[str, ...]
    astropy: str
    writable: bool
    kind: str | None


#: Every table format galmet reads; the first suffix of a format is the one messages name.
TABLE_FORMATS = (
    TableFormat("parquet", (".parquet",), "parquet", True, "parquet"),
    TableFormat("ecsv", (".ecsv",), "ascii.ecsv", True, "csv"),  # ".ecsv" before ".csv": it ends in "csv"
    TableFormat("csv", (".csv",), "ascii.csv", True, "csv"),
    TableFormat("fits", (".fits", ".fit", ".fits.gz", ".fts"), "fits", True, "fits"),
    TableFormat("votable", (".vot", ".votable", ".xml"), "votable", False, None),
)
#: Suffixes of the formats galmet writes.
TABLE_SUFFIXES = tuple(s for f in TABLE_FORMATS if f.writable for s in f.suffixes)
#: Suffixes of every format galmet reads.
READ_SUFFIXES = tuple(s for f in TABLE_FORMATS for s in f.suffixes)
#: Suffixes written through astropy, with units and provenance (DataFrames: :func:`write_table`).
ASTROPY_SUFFIXES = tuple(s for f in TABLE_FORMATS if f.name in ("ecsv", "fits") for s in f.suffixes)


def table_format(path: str | os.PathLike, writing: bool = False) -> TableFormat | None:
    """The format a file name's suffix names (any case); None for another suffix, or (``writing``)
    for a format galmet only reads."""
    name = Path(path).name.lower()
    for fmt in TABLE_FORMATS:
        if any(name.endswith(s) for s in fmt.suffixes):
            return fmt if fmt.writable or not writing else None
    return None


def format_names(writing: bool = True) -> str:
    """The formats for a message: ``".parquet, .ecsv, .csv or .fits"`` (the first suffix of each)."""
    names = [f.suffixes[0] for f in TABLE_FORMATS if f.writable or not writing]
    return ", ".join(names[:-1]) + " or " + names[-1]


def require_table_format(
    path: str | os.PathLike, writing: bool = True, param: str | None = None, error: type[GalmetError] = ConfigError
) -> TableFormat:
    """:func:`table_format`, or a one-line ``error`` naming ``param`` (``out``) or the file."""
    fmt = table_format(path, writing)
    if fmt is None:
        where = f"{param} {path}" if param else str(path)
        raise error(f"{where}: unknown table format (use {format_names(writing)})", param=param)
    return fmt


#: Provenance entry -> FITS header keyword (8 characters at most).
FITS_KEYWORDS = {
    "galmet_version": "GALMET",
    "command": "COMMAND",
    "date": "DATE",
    "model": "MODEL",
    "model_sha256": "MODELSHA",
    # prediction at sky positions (galmet.predict.positions)
    "data_release": "DATAREL",
    "base_url": "BASEURL",
    "pixel_scale": "PIXSCALE",
    "scale_mode": "SCALMODE",
    "image_size": "IMGSIZE",
    "tta": "TTA",
    "rows": "NROWS",
    "rows_ok": "NROWSOK",
    "flag_checks": "FLAGCHK",
    "cutout_keys": "CUTKEYS",
}


#: How every parquet file is read: without pyarrow's thread pools. Under an address-space limit
#: (``ulimit -v`` on an HPC node) a pool thread that cannot start left the read (pre-buffering or
#: decoding) waiting for it forever; single-threaded, the same read fails at once with an error
#: (:func:`galmet.errors.out_of_resources`). Local files lose little: galmet's tables are small.
PARQUET_READ = {"use_threads": False, "pre_buffer": False}


def _require_table_file(path: Path) -> None:
    """DataError naming ``path`` when it is missing, a folder, or a FIFO, device or socket (never
    opened: opening a FIFO blocks until something writes to it)."""
    special = special_kind(path)
    if special == "directory":
        raise DataError(f"{path}: is a folder, not a table file")
    if special is not None:
        raise DataError(f"{path}: is a {special}, not a regular file; expected a table file")
    if not path.is_file():
        raise DataError(f"{path}: table file not found")


def read_table(path: str | os.PathLike) -> pd.DataFrame:
    """Read a table from parquet, CSV, FITS, ECSV or VOTable; raise DataError naming the file on failure.

    Identifier columns (:func:`galmet.columns.is_id_column`) are returned as exact int64. FITS
    and ECSV tables bring their units (``df.attrs["units"]``: column -> astropy string) and the
    provenance galmet wrote (``df.attrs["provenance"]``, see :func:`table_provenance`).
    """
    path = Path(path)
    _require_table_file(path)
    fmt = require_table_format(path, writing=False, error=DataError)
    try:
        if fmt.name == "parquet":
            df = pd.read_parquet(path, **PARQUET_READ)
        elif fmt.name == "csv":
            header = pd.read_csv(path, comment="#", nrows=0).columns
            df = pd.read_csv(path, comment="#", dtype={c: str for c in header if is_id_column(c)})
        else:
            df = _read_astropy(path, fmt)
    except Exception as exc:  # noqa: BLE001 - any parser failure is the user's file
        raise_if_out_of_resources(exc)  # (memory or threads ran out: not the file's fault)
        raise DataError(f"{path}: cannot read table ({type(exc).__name__}: {exc})") from exc
    for col in df.columns:
        if is_id_column(col):
            df[col] = objid_array(df[col], str(path), column=str(col))
    return df


def _read_astropy(path: Path, fmt: TableFormat) -> pd.DataFrame:
    """A FITS, ECSV or VOTable table as a DataFrame; its units (column -> astropy string) in
    ``df.attrs["units"]``, its provenance (:func:`table_provenance` names) in ``df.attrs["provenance"]``."""
    from astropy.table import Table

    table = Table.read(path, format=fmt.astropy)
    units = {name: table[name].unit.to_string() for name in table.colnames if table[name].unit is not None}
    meta = {str(k): v for k, v in table.meta.items() if isinstance(v, (str, int, float))}
    by_keyword = {v: k for k, v in FITS_KEYWORDS.items()}
    provenance = {by_keyword.get(k, k): v for k, v in meta.items() if k in by_keyword or k in FITS_KEYWORDS}
    df = table.to_pandas()
    df.attrs["units"] = units
    if provenance:
        df.attrs["provenance"] = provenance
    return df


def table_provenance(model: str | os.PathLike | None = None, command: str | None = None) -> dict[str, str]:
    """Where a table comes from: ``galmet_version``, ``command`` (default: this process's command
    line, ``galmet ...`` for the CLI), ``date`` (UTC, ISO 8601, seconds), and with ``model`` its
    file name (``model``) and ``model_sha256`` (of the file's bytes)."""
    out = {
        "galmet_version": __version__,
        "command": command if command is not None else _command_line(),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    if model is not None:
        model = Path(model)
        out["model"] = model.name
        out["model_sha256"] = file_sha256(model)
    return out


def file_sha256(path: str | os.PathLike) -> str:
    """The sha256 (hex) of a file's bytes, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _command_line() -> str:
    argv = list(sys.argv) or ["python"]
    head = Path(argv[0])
    name = "galmet" if head.name == "__main__.py" and head.parent.name == "galmet" else head.name
    return shlex.join([name, *argv[1:]])


def write_table(
    df: pd.DataFrame,
    path: str | os.PathLike,
    provenance: Mapping[str, str] | None = None,
    units: Mapping[str, str | None] | None = None,
) -> Path:
    """Write ``df`` atomically to parquet, CSV, FITS or ECSV, chosen by the suffix of ``path``.

    Parameters
    ----------
    df : pandas.DataFrame
    path : path-like
    provenance : mapping, optional
        FITS and ECSV only: entries over the defaults of :func:`table_provenance` (and over
        ``df.attrs["provenance"]``), e.g. ``table_provenance(model=MODEL_PATH)``.
    units : mapping, optional
        FITS and ECSV only: column -> astropy unit string (None: no unit), over the units of
        :func:`galmet.columns.column_unit`.
    """
    path = Path(path)
    fmt = require_table_format(path, error=DataError)
    if fmt.name not in ("parquet", "csv"):
        meta = {**table_provenance(), **df.attrs.get("provenance", {}), **(provenance or {})}
        table = _astropy_table(df, {**{str(c): column_unit(str(c)) for c in df.columns}, **(units or {})}, meta)
        return write_qtable(table, path)
    with atomic_path(path) as tmp:
        if fmt.name == "parquet":
            df.to_parquet(tmp, index=False)
        else:
            df.to_csv(tmp, index=False)
    return path


def write_qtable(table, path: str | os.PathLike) -> Path:
    """Write an astropy Table/QTable atomically in the format of ``path``'s suffix (:data:`TABLE_FORMATS`).

    Parquet, ECSV and FITS keep the units and ``meta`` (in FITS as header cards, the keys
    renamed by :data:`FITS_KEYWORDS`, others upper-cased to 8 characters); CSV is plain values.
    ConfigError (``param="out"``) for a suffix galmet does not write.
    """
    path = Path(path)
    fmt = require_table_format(path, param="out")
    if fmt.name == "fits":
        table = table.copy(copy_data=False)
        table.meta = {FITS_KEYWORDS.get(k, k.upper()[:8]): v for k, v in table.meta.items()}
    with atomic_path(path) as tmp, warnings.catch_warnings():
        # dex is not a FITS-standard unit: astropy says so, then serialises it its own way
        warnings.filterwarnings("ignore", message=".*could not be saved in native FITS format.*")
        table.write(tmp, format=fmt.astropy, overwrite=True)
    return path


def read_any_table(path: str | os.PathLike):
    """A table file in any format astropy reads, for :func:`galmet.sdss.coords.sky_positions`.

    CSV through :func:`read_table` (a DataFrame: identifiers exact even when written as
    ``123...422.0``); every other file as an astropy QTable (the format from the suffix, or
    astropy's guess for an unknown one), its identifier columns exact int64 or a one-line
    DataError naming the row. DataError naming the file when it is missing or unreadable.
    """
    from astropy.table import QTable

    p = Path(path)
    _require_table_file(p)
    fmt = table_format(p)
    if fmt is not None and fmt.name == "csv":
        return read_table(p)
    try:
        table = QTable.read(p, format=fmt.astropy) if fmt is not None else QTable.read(p)
    except Exception as exc:  # noqa: BLE001 - any parser failure is the user's file
        raise_if_out_of_resources(exc)
        raise DataError(f"{p}: cannot read a table ({type(exc).__name__}: {exc})") from None
    for col in table.colnames:
        if is_id_column(col) and getattr(table[col], "ndim", 1) == 1:  # exact, or one line naming the row
            table[col] = objid_array(table[col].tolist(), str(p), column=col)
    return table


def _astropy_table(df: pd.DataFrame, units: Mapping[str, str | None], meta: Mapping[str, str]):
    """``df`` as an astropy QTable: float columns with a unit become Quantities (``Dex`` for
    ``dex(...)`` units), so that astropy writes and reads their units back."""
    import numpy as np
    from astropy import units as u
    from astropy.table import QTable, Table

    table = QTable(Table.from_pandas(df.reset_index(drop=True)), meta=dict(meta))
    for name in table.colnames:
        unit = units.get(name)
        column = table[name]
        if unit is not None and getattr(column, "dtype", np.dtype(object)).kind == "f":
            table[name] = np.asarray(column, dtype=np.float64) * u.Unit(unit)
    return table
