"""Read and write tables (catalogs, predictions) by file suffix: .parquet, .csv, .fits.

All writes are atomic. FITS goes through astropy (imported only when needed).

Identifier columns (``objID``, ``specObjID``, any case) come back as exact int64 whatever the
file holds: a CSV's are read as text (pandas would otherwise round a column with one
``1237663716556341422.0`` to float64 and lose the last digits of every ID), and a value that is
not an exact integer in the 64-bit range is a one-line error naming the row
(:func:`galmet.columns.objid_array`).
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from galmet.columns import is_id_column, objid_array
from galmet.errors import DataError
from galmet.io.atomic import atomic_path

TABLE_SUFFIXES = (".parquet", ".csv", ".fits", ".fit", ".fits.gz")


def _suffix(path: Path) -> str:
    name = path.name.lower()
    for s in TABLE_SUFFIXES:
        if name.endswith(s):
            return s
    return path.suffix.lower()


def read_table(path: str | os.PathLike) -> pd.DataFrame:
    """Read a table from parquet, CSV or FITS; raise DataError naming the file on failure.

    Identifier columns (:func:`galmet.columns.is_id_column`) are returned as exact int64.
    """
    path = Path(path)
    if path.is_dir():
        raise DataError(f"{path}: is a folder, not a table file")
    if not path.is_file():
        raise DataError(f"{path}: table file not found")
    suffix = _suffix(path)
    if suffix not in TABLE_SUFFIXES:
        raise DataError(f"{path}: unknown table format {suffix!r} (use .parquet, .csv or .fits)")
    try:
        if suffix == ".parquet":
            df = pd.read_parquet(path)
        elif suffix == ".csv":
            header = pd.read_csv(path, comment="#", nrows=0).columns
            df = pd.read_csv(path, comment="#", dtype={c: str for c in header if is_id_column(c)})
        else:
            from astropy.table import Table

            df = Table.read(path).to_pandas()
    except Exception as exc:  # noqa: BLE001 - any parser failure is the user's file
        raise DataError(f"{path}: cannot read table ({type(exc).__name__}: {exc})") from exc
    for col in df.columns:
        if is_id_column(col):
            df[col] = objid_array(df[col], str(path), column=str(col))
    return df


def write_table(df: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Write ``df`` atomically to parquet, CSV or FITS, chosen by the suffix of ``path``."""
    path = Path(path)
    suffix = _suffix(path)
    if suffix not in TABLE_SUFFIXES:
        raise DataError(f"{path}: unknown table format {suffix!r} (use .parquet, .csv or .fits)")
    with atomic_path(path) as tmp:
        if suffix == ".parquet":
            df.to_parquet(tmp, index=False)
        elif suffix == ".csv":
            df.to_csv(tmp, index=False)
        else:
            from astropy.table import Table

            Table.from_pandas(df.reset_index(drop=True)).write(tmp, format="fits", overwrite=True)
    return path
