"""Read and write tables (catalogs, predictions) by file suffix: .parquet, .csv, .fits, .ecsv.

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
from pathlib import Path

import pandas as pd

from galmet._version import __version__
from galmet.columns import column_unit, is_id_column, objid_array
from galmet.errors import DataError
from galmet.io.atomic import atomic_path

# ".ecsv" before ".csv": a name is matched against these in order.
TABLE_SUFFIXES = (".parquet", ".ecsv", ".csv", ".fits", ".fit", ".fits.gz")
#: Suffixes written through astropy, with units and provenance.
ASTROPY_SUFFIXES = (".ecsv", ".fits", ".fit", ".fits.gz")
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


def _suffix(path: Path) -> str:
    name = path.name.lower()
    for s in TABLE_SUFFIXES:
        if name.endswith(s):
            return s
    return path.suffix.lower()


def read_table(path: str | os.PathLike) -> pd.DataFrame:
    """Read a table from parquet, CSV, FITS or ECSV; raise DataError naming the file on failure.

    Identifier columns (:func:`galmet.columns.is_id_column`) are returned as exact int64. FITS
    and ECSV tables bring their units (``df.attrs["units"]``: column -> astropy string) and the
    provenance galmet wrote (``df.attrs["provenance"]``, see :func:`table_provenance`).
    """
    path = Path(path)
    if path.is_dir():
        raise DataError(f"{path}: is a folder, not a table file")
    if not path.is_file():
        raise DataError(f"{path}: table file not found")
    suffix = _suffix(path)
    if suffix not in TABLE_SUFFIXES:
        raise DataError(f"{path}: unknown table format {suffix!r} (use .parquet, .csv, .fits or .ecsv)")
    try:
        if suffix == ".parquet":
            df = pd.read_parquet(path)
        elif suffix == ".csv":
            header = pd.read_csv(path, comment="#", nrows=0).columns
            df = pd.read_csv(path, comment="#", dtype={c: str for c in header if is_id_column(c)})
        else:
            df = _read_astropy(path, suffix)
    except Exception as exc:  # noqa: BLE001 - any parser failure is the user's file
        raise DataError(f"{path}: cannot read table ({type(exc).__name__}: {exc})") from exc
    for col in df.columns:
        if is_id_column(col):
            df[col] = objid_array(df[col], str(path), column=str(col))
    return df


def _read_astropy(path: Path, suffix: str) -> pd.DataFrame:
    """A FITS or ECSV table as a DataFrame; its units (column -> astropy string) in
    ``df.attrs["units"]``, its provenance (:func:`table_provenance` names) in ``df.attrs["provenance"]``."""
    from astropy.table import Table

    table = Table.read(path, format="ascii.ecsv" if suffix == ".ecsv" else "fits")
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
    suffix = _suffix(path)
    if suffix not in TABLE_SUFFIXES:
        raise DataError(f"{path}: unknown table format {suffix!r} (use .parquet, .csv, .fits or .ecsv)")
    with atomic_path(path) as tmp:
        if suffix == ".parquet":
            df.to_parquet(tmp, index=False)
        elif suffix == ".csv":
            df.to_csv(tmp, index=False)
        else:
            meta = {**table_provenance(), **df.attrs.get("provenance", {}), **(provenance or {})}
            table = _astropy_table(df, {**{str(c): column_unit(str(c)) for c in df.columns}, **(units or {})}, meta)
            if suffix == ".ecsv":
                table.write(tmp, format="ascii.ecsv", overwrite=True)
            else:
                table.meta = {FITS_KEYWORDS.get(k, k): v for k, v in table.meta.items()}
                with warnings.catch_warnings():
                    # dex is not a FITS-standard unit: astropy says so, then serialises it its own way
                    warnings.filterwarnings("ignore", message=".*could not be saved in native FITS format.*")
                    table.write(tmp, format="fits", overwrite=True)
    return path


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
