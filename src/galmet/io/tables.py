"""Read and write tables (catalogs, predictions) by file suffix: .parquet, .csv, .fits.

All writes are atomic. FITS goes through astropy (imported only when needed).
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

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
    """Read a table from parquet, CSV or FITS; raise DataError naming the file on failure."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: table file not found")
    suffix = _suffix(path)
    try:
        if suffix == ".parquet":
            return pd.read_parquet(path)
        if suffix == ".csv":
            return pd.read_csv(path, comment="#")
        if suffix in (".fits", ".fit", ".fits.gz"):
            from astropy.table import Table

            table = Table.read(path)
            return table.to_pandas()
    except Exception as exc:  # noqa: BLE001 - any parser failure is the user's file
        raise DataError(f"{path}: cannot read table ({type(exc).__name__}: {exc})") from exc
    raise DataError(f"{path}: unknown table format {suffix!r} (use .parquet, .csv or .fits)")


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
