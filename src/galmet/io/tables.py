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

import csv
import datetime
import gzip
import hashlib
import logging
import os
import shlex
import sys
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from galmet._version import __version__
from galmet.columns import (
    ERROR,
    FILE,
    FLAGS,
    OBJID,
    SPLIT,
    STATUS,
    TRUTH_FLAGS,
    column_unit,
    is_id_column,
    objid_array,
)
from galmet.errors import ConfigError, DataError, GalmetError, one_line, raise_if_out_of_resources
from galmet.io.atomic import atomic_path
from galmet.io.inputs import special_kind

log = logging.getLogger(__name__)


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
    "model_name": "MODELNAM",  # a registered model: "NAME VERSION" (galmet models)
    # prediction at sky positions (galmet.predict.positions)
    "data_release": "DATAREL",
    "base_url": "BASEURL",
    "pixel_scale": "PIXSCALE",
    "scale_mode": "SCALMODE",
    "image_size": "IMGSIZE",
    "survey": "SURVEY",  # the imaging survey, layer and format of the cutouts fetched
    "layer": "LAYER",
    "image_format": "IMGFMT",
    "tta": "TTA",
    "rows": "NROWS",
    "rows_ok": "NROWSOK",
    "flag_checks": "FLAGCHK",
    "other_survey": "OTHSURV",  # a transfer experiment: another survey's images (every row flagged OTHER_SURVEY)
    "cutout_keys": "CUTKEYS",
    "archive": "ARCHIVE",  # predicted from a local cutout archive (galmet.data.archive): its folder
    "match_radius": "MATCHRAD",  # ... and the match radius, arcsec
}


#: Longest text cell (characters) a table may hold: names, identifiers, status and error
#: messages are far shorter. A longer one is refused when the table is read, naming its row,
#: rather than copied into every output and shard (an 8 MB name cell ran a whole job before
#: failing with MemoryError).
MAX_TEXT_CELL = 4096


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

    Identifier columns (:func:`galmet.columns.is_id_column`) are returned as exact int64. FITS,
    ECSV and parquet tables bring the provenance galmet wrote (``df.attrs["provenance"]``, see
    :func:`table_provenance`); FITS and ECSV also their units (``df.attrs["units"]``: column ->
    astropy string).

    Every format is read strictly, the same way: a CSV row with more or fewer fields than the
    header, a column name given twice, or a text cell longer than :data:`MAX_TEXT_CELL`
    characters is a one-line DataError naming the line (CSV) or row and column, never a table
    whose columns have shifted. Lines starting with ``#`` before or between the rows of a CSV
    are comments. A table with a header and no rows reads as zero rows with its columns.
    """
    path = Path(path)
    _require_table_file(path)
    fmt = require_table_format(path, writing=False, error=DataError)
    try:
        if fmt.name == "parquet":
            df = _read_parquet(path)
        elif fmt.name == "csv":
            df = _read_csv(path)
            _csv_provenance(df)
        else:
            df = _read_astropy(path, fmt)
    except GalmetError:
        raise
    except Exception as exc:  # noqa: BLE001 - any parser failure is the user's file
        raise_if_out_of_resources(exc)  # (memory or threads ran out: not the file's fault)
        raise DataError(f"{path}: cannot read table ({one_line(exc)})") from exc
    check_table_cells(df, str(path))
    for col in df.columns:
        if is_id_column(col):
            df[col] = objid_array(df[col], str(path), column=str(col))
    return df


def _read_parquet(path: Path) -> pd.DataFrame:
    """A parquet file as a DataFrame, its provenance in ``df.attrs["provenance"]`` whether pandas
    (``write_table``) or astropy (``write_qtable``: ``table_meta_yaml``) wrote it."""
    import pyarrow.parquet as pq

    schema = pq.read_schema(path)
    _check_unique_names(list(schema.names), str(path))
    df = pd.read_parquet(path, **PARQUET_READ)
    meta = schema.metadata or {}
    if "provenance" not in df.attrs and b"table_meta_yaml" in meta:
        from astropy.table.meta import get_header_from_yaml

        header = get_header_from_yaml(meta[b"table_meta_yaml"].decode().splitlines())
        found = {k: v for k, v in (header.get("meta") or {}).items() if k in FITS_KEYWORDS}
        if found:
            df.attrs["provenance"] = found
    elif not isinstance(df.attrs.get("provenance", {}), dict):
        del df.attrs["provenance"]
    return df


def _read_csv(path: Path) -> pd.DataFrame:
    """A CSV file read strictly (:func:`csv_layout`): no implicit index column, every row as
    many fields as the header; identifier columns as text (made exact int64 by the caller), and
    the text columns of :data:`CSV_TEXT_COLUMNS` as text whatever they look like (a sha256 of
    zeros stays ``"000..."``, a file named ``0001`` is not the number 1)."""
    skip, header = csv_layout(path)
    return pd.read_csv(
        path,
        skiprows=skip or None,
        index_col=False,
        dtype={c: str for c in header if is_id_column(c) or c in CSV_TEXT_COLUMNS},
        encoding="utf-8-sig",
    )


def csv_layout(path: str | os.PathLike) -> tuple[list[int], list[str]]:
    """Check a CSV file's shape in one streaming pass: (the records that are comments or blank,
    0-based, for ``pandas.read_csv(skiprows=)``; the header's column names).

    Raises
    ------
    DataError
        One line naming the file and line: no header; a column name given twice; a row with more
        or fewer fields than the header; a cell longer than :data:`MAX_TEXT_CELL` characters.
    """
    skip: list[int] = []
    header: list[str] | None = None
    with open(path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.reader(fh)
        try:
            for i, fields in enumerate(reader):
                if not fields or (fields[0].lstrip().startswith("#")) or fields == [""]:
                    skip.append(i)
                    continue
                long = next((f for f in fields if len(f) > MAX_TEXT_CELL), None)
                if long is not None:
                    raise DataError(
                        f"{path}: line {reader.line_num}: a cell of {len(long)} characters "
                        f"(at most {MAX_TEXT_CELL}: {long[:20]!r}...)"
                    )
                if header is None:
                    header = fields
                    _check_unique_names(header, str(path))
                elif len(fields) != len(header):
                    more = len(fields) > len(header)
                    raise DataError(
                        f"{path}: line {reader.line_num}: {len(fields)} field{'s' * (len(fields) != 1)}, "
                        f"{'more' if more else 'fewer'} than the header's {len(header)} ({', '.join(header)[:80]})"
                        + ("; quote a value that holds a comma" if more else "")
                    )
        except csv.Error as exc:  # a cell over the csv module's own limit (128 KiB), an unterminated quote
            why = f"a cell longer than {MAX_TEXT_CELL} characters" if "field limit" in str(exc) else one_line(exc)
            raise DataError(f"{path}: line {reader.line_num}: {why}") from None
    if header is None:
        raise DataError(f"{path}: no header line (an empty CSV file)")
    return skip, header


def _check_unique_names(names: list, where: str) -> None:
    """DataError naming a column that appears twice (pandas would rename one ``ra.1``, a parquet
    reader pick either)."""
    seen: dict[str, int] = {}
    for j, name in enumerate(names):
        key = str(name).strip()
        if key in seen:
            raise DataError(
                f"{where}: column {key!r} appears twice (columns {seen[key] + 1} and {j + 1}); "
                "give every column its own name"
            )
        seen[key] = j


def check_table_cells(table, where: str) -> None:
    """DataError naming the first row and column of ``table`` (a DataFrame or an astropy Table)
    whose text cell is longer than :data:`MAX_TEXT_CELL` characters, or a column name given twice."""
    names = list(table.columns) if isinstance(table, pd.DataFrame) else list(table.colnames)
    _check_unique_names(names, where)
    for name in names:
        col = table[name] if isinstance(table, pd.DataFrame) else table[name]
        kind = getattr(getattr(col, "dtype", None), "kind", "")  # a mixin (SkyCoord, Time): no text cells
        if kind == "" or kind not in "OSU" or len(col) == 0 or getattr(col, "ndim", 1) != 1:
            continue
        if kind in "SU" and getattr(col.dtype, "itemsize", 0) <= MAX_TEXT_CELL:
            continue  # fixed width: no cell can be longer
        lengths = pd.Series(list(col), dtype=object).map(lambda v: len(v) if isinstance(v, (str, bytes)) else 0)
        over = np.flatnonzero(lengths.to_numpy() > MAX_TEXT_CELL)
        if len(over):
            i = int(over[0])
            raise DataError(
                f"{where}: row {i}: {name} is a text of {int(lengths.iloc[i])} characters (at most {MAX_TEXT_CELL})"
            )


def _read_astropy(path: Path, fmt: TableFormat) -> pd.DataFrame:
    """A FITS, ECSV or VOTable table as a DataFrame; its units (column -> astropy string) in
    ``df.attrs["units"]``, its provenance (:func:`table_provenance` names) in ``df.attrs["provenance"]``."""
    from astropy.table import Table

    with warnings.catch_warnings():
        # galmet writes dex units as FITS TUNITn too; astropy warns that they are not FITS units
        warnings.filterwarnings("ignore", message=".*did not parse as fits unit.*")
        table = Table.read(path, format=fmt.astropy, **_text_as_str(fmt))
    units = {name: table[name].unit.to_string() for name in table.colnames if table[name].unit is not None}
    meta = {str(k): v for k, v in table.meta.items() if isinstance(v, (str, int, float))}
    by_keyword = {v: k for k, v in FITS_KEYWORDS.items()}
    provenance = {by_keyword.get(k, k): v for k, v in meta.items() if k in by_keyword or k in FITS_KEYWORDS}
    df = table.to_pandas()
    df.attrs["units"] = units
    if provenance:
        df.attrs["provenance"] = provenance
    return df


def _text_as_str(fmt: TableFormat) -> dict:
    """Read keywords that make a FITS file's text columns ``str`` (astropy's default is bytes, which
    would turn ``12h30m49.4s`` into ``b'12h30m49.4s'`` and ``test`` into ``b'test'``)."""
    return {"character_as_bytes": False} if fmt.name == "fits" else {}


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
        FITS and ECSV: entries over the defaults of :func:`table_provenance` (and over
        ``df.attrs["provenance"]``), e.g. ``table_provenance(model=MODEL_PATH)``. Parquet: written
        (in the file's pandas metadata, read back by :func:`read_table`) only when given. CSV
        holds no metadata: its model's sha256 becomes a column (:data:`MODEL_SHA256_COLUMN`).
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
            out = df
            if provenance:  # in the pandas metadata, beside the frame's other attrs
                out = df.copy(deep=False)
                out.attrs = {**df.attrs, "provenance": {**table_provenance(), **provenance}}
            out.to_parquet(tmp, index=False)
        else:
            with_model_column(df, (provenance or {}).get(MODEL_SHA256_COLUMN)).to_csv(tmp, index=False)
    return path


#: The column through which a CSV table (which has no metadata) names the sha256 of the model
#: file that made its predictions; :func:`read_table` gives it back as the provenance.
MODEL_SHA256_COLUMN = "model_sha256"
#: CSV columns that hold text however numeric they look (read with dtype str).
CSV_TEXT_COLUMNS = frozenset({MODEL_SHA256_COLUMN, "file"})


def with_model_column(df: pd.DataFrame, sha256: str | None) -> pd.DataFrame:
    """``df`` with a :data:`MODEL_SHA256_COLUMN` column of ``sha256`` (unchanged when None or the
    column is already there): how a CSV carries the model its predictions came from."""
    if not sha256 or MODEL_SHA256_COLUMN in df.columns:
        return df
    out = df.copy(deep=False)
    out[MODEL_SHA256_COLUMN] = sha256
    return out


def _csv_provenance(df: pd.DataFrame) -> None:
    """Set ``df.attrs["provenance"]["model_sha256"]`` from a CSV's :data:`MODEL_SHA256_COLUMN`:
    its one value, or every distinct value joined by commas (a table mixing models' predictions)."""
    if MODEL_SHA256_COLUMN not in df.columns:
        return
    values = sorted({str(v) for v in df[MODEL_SHA256_COLUMN].dropna()})
    if values:
        df.attrs["provenance"] = {MODEL_SHA256_COLUMN: ",".join(values)}


def write_qtable(table, path: str | os.PathLike) -> Path:
    """Write an astropy Table/QTable atomically in the format of ``path``'s suffix (:data:`TABLE_FORMATS`).

    Parquet, ECSV and FITS keep the units and ``meta`` (in FITS as header cards, the keys
    renamed by :data:`FITS_KEYWORDS`, others upper-cased to 8 characters); CSV is plain values,
    with the model's sha256 (``meta["model_sha256"]``) as a column (:data:`MODEL_SHA256_COLUMN`).
    ConfigError (``param="out"``) for a suffix galmet does not write.
    """
    path = Path(path)
    fmt = require_table_format(path, param="out")
    sha = table.meta.get(MODEL_SHA256_COLUMN)
    if fmt.name == "csv" and sha and MODEL_SHA256_COLUMN not in table.colnames:
        table = table.copy(copy_data=False)
        table[MODEL_SHA256_COLUMN] = [str(sha)] * len(table)
    if fmt.name == "fits":
        check_fits_columns({n: table[n] for n in table.colnames}, str(path), param="out")
        table, tunits = _fits_ready(table)
        with atomic_path(path) as tmp:
            _write_fits(table, tunits, tmp, compress=path.name.lower().endswith(".gz"))
        return path
    with atomic_path(path) as tmp:
        table.write(tmp, format=fmt.astropy, overwrite=True)
    return path


def fits_column_names(names: list[str]) -> dict[str, str]:
    """New names for the columns whose names differ from another's only in case (``RA`` beside ``ra``).

    FITS column names are case-insensitive: CFITSIO-based readers (TOPCAT, fitsio) would return
    either. In each such group the column galmet names itself (:func:`galmet_column`; else the
    first in table order) keeps its name and every other becomes ``<name>_input`` (then
    ``<name>_input2`` ..., whichever is free in any case).

    Parameters
    ----------
    names : list of str
        The table's column names, in order.

    Returns
    -------
    dict
        old name -> new name, only for the columns renamed (empty when none clash).
    """
    groups: dict[str, list[str]] = {}
    for name in names:
        groups.setdefault(name.lower(), []).append(name)
    taken = {n.lower() for n in names}
    renames: dict[str, str] = {}
    for group in (g for g in groups.values() if len(g) > 1):
        keeper = next((n for n in group if galmet_column(n)), group[0])
        for name in (n for n in group if n != keeper):
            new, k = f"{name}_input", 2
            while new.lower() in taken:
                new, k = f"{name}_input{k}", k + 1
            taken.add(new.lower())
            renames[name] = new
    return renames


def galmet_column(name: str) -> bool:
    """True for a column name galmet's own tables use (identity, predictions, units, outcome)."""
    return name in (OBJID, FILE, SPLIT, FLAGS, TRUTH_FLAGS, STATUS, ERROR, "member") or column_unit(name) is not None


def _fits_ready(table):
    """A shallow copy of ``table`` to write as FITS, and the ``TUNITn`` it needs beside astropy's.

    Columns whose names clash without regard to case are renamed (:func:`fits_column_names`,
    with a warning). The ``meta`` becomes header cards (keys renamed by :data:`FITS_KEYWORDS`,
    others upper-cased to 8 characters). Columns in a unit the FITS standard lacks (``dex``,
    ``dex(solMass)``) become plain values, and their unit (astropy's string) is returned, column
    name -> unit, for :func:`_write_fits` to write as their ``TUNITn``.
    """
    from astropy.table import Column, MaskedColumn

    table = table.copy(copy_data=False)
    renames = fits_column_names(list(table.colnames))
    if renames:
        said = ", ".join(f"{old} -> {new}" for old, new in renames.items())
        log.warning("FITS column names ignore case: renamed %s", said)
        table.rename_columns(list(renames), list(renames.values()))
    table.meta = {FITS_KEYWORDS.get(k, k.upper()[:8]): fits_text(v) for k, v in table.meta.items()}
    tunits = {}
    for name in table.colnames:
        unit = getattr(table[name], "unit", None)
        if unit is None or _fits_unit_string(unit) is not None:
            continue
        tunits[name] = unit.to_string()
        values = table[name].value if hasattr(table[name], "value") else table[name].data
        mask = getattr(values, "mask", None)
        if mask is not None:  # a masked Quantity or MaskedColumn keeps its mask
            table[name] = MaskedColumn(getattr(values, "unmasked", getattr(values, "data", values)), mask=mask)
        else:
            table[name] = Column(values)
    return table, tunits


def fits_text(value):
    """``value`` as a FITS header card can hold it: text with every character outside printable
    ASCII written as its Python escape (``é`` -> ``\\xe9``, ``Ω`` -> ``\\u03a9``); other values unchanged.
    (A non-ASCII command line kept its COMMAND card only so: astropy drops such a card.)"""
    if not isinstance(value, str) or all(" " <= c <= "~" for c in value):
        return value
    return "".join(c if " " <= c <= "~" else c.encode("unicode_escape").decode("ascii") for c in value)


#: Longest column name a FITS ``TTYPEn`` card holds, characters.
FITS_MAX_NAME = 68


def check_fits_columns(columns: Mapping[str, Any], where: str, param: str | None = None) -> None:
    """DataError naming the first column or cell FITS cannot hold: a name over
    :data:`FITS_MAX_NAME` characters or not printable ASCII, or a text cell not printable ASCII
    (its row). ``columns``: name -> values (a DataFrame or an astropy Table's columns). Called
    before any work by the commands that write FITS, and again at the write."""
    for name, values in columns.items():
        name = str(name)
        if len(name) > FITS_MAX_NAME:
            raise DataError(
                f"{where}: column {name[:40]}... has a {len(name)}-character name; a FITS table holds at "
                f"most {FITS_MAX_NAME} (rename it, or write .parquet, .ecsv or .csv)",
                param=param,
            )
        if not all(" " <= c <= "~" for c in name):
            raise DataError(
                f"{where}: column {fits_text(name)} has a name that is not printable ASCII, which a FITS table "
                "cannot hold (rename it, or write .parquet, .ecsv or .csv)",
                param=param,
            )
        kind = getattr(getattr(values, "dtype", None), "kind", "")  # (a SkyCoord column: no text)
        if kind not in "OUS" or getattr(values, "ndim", 1) != 1:
            continue
        for row, v in enumerate(values.tolist() if hasattr(values, "tolist") else list(values)):
            text = v.decode("latin-1") if isinstance(v, bytes) else v
            if isinstance(text, str) and not all(" " <= c <= "~" for c in text):
                raise DataError(
                    f"{where}: row {row}: column {name}: '{fits_text(text[:40])}' is not printable ASCII, which "
                    "a FITS table cannot hold (write .parquet, .ecsv or .csv)",
                    param=param,
                )


def check_fits_out(out: str | os.PathLike | None, columns: Mapping[str, Any], where: str) -> None:
    """:func:`check_fits_columns` of the input ``columns`` an output will carry, when ``out`` is
    a FITS file (``param="out"``): called before the work, so that a name or text FITS cannot
    hold is refused at once, not after predicting."""
    fmt = table_format(out) if out is not None else None
    if fmt is not None and fmt.name == "fits":
        check_fits_columns(columns, f"out {out}: {where}", param="out")


def _write_fits(table, tunits: Mapping[str, str], tmp: Path, compress: bool) -> None:
    """Write ``table`` as FITS at ``tmp`` (gzip-compressed when ``compress``), then add the
    ``TUNITn`` card of each column in ``tunits`` (name -> unit string) after its ``TFORMn``."""
    import io

    from astropy.io import fits

    def add_units(hdul) -> None:
        header = hdul[1].header
        for i in range(1, header["TFIELDS"] + 1):
            unit = tunits.get(header[f"TTYPE{i}"])
            if unit is not None:
                header.set(f"TUNIT{i}", unit, after=f"TFORM{i}")

    if not compress:
        table.write(tmp, format="fits", overwrite=True)
        if tunits:
            with fits.open(tmp, mode="update", memmap=False) as hdul:
                add_units(hdul)
        return
    buffer = io.BytesIO()  # astropy compresses by the file name, and tmp's does not end in .gz
    table.write(buffer, format="fits")
    buffer.seek(0)
    with fits.open(buffer) as hdul, gzip.open(tmp, "wb") as fh:
        add_units(hdul)
        hdul.writeto(fh)


def _fits_unit_string(unit) -> str | None:
    """The unit as the FITS standard writes it, or None when the standard has no such unit (dex)."""
    try:
        return unit.to_string(format="fits")
    except ValueError:
        return None


def read_any_table(path: str | os.PathLike):
    """A table file in any format astropy reads, for :func:`galmet.sdss.coords.sky_positions`.

    CSV through :func:`read_table` (a DataFrame: identifiers exact even when written as
    ``123...422.0``); every other file as an astropy QTable (the format from the suffix, or
    astropy's guess for an unknown one), its identifier columns exact int64 or a one-line
    DataError naming the row. DataError naming the file when it is missing or unreadable, and
    the same strict checks as :func:`read_table` (a column name given twice, a text cell over
    :data:`MAX_TEXT_CELL` characters; a CSV's field counts).
    """
    from astropy.table import QTable

    p = Path(path)
    _require_table_file(p)
    fmt = table_format(p)
    if fmt is not None and fmt.name == "csv":
        return read_table(p)
    if fmt is not None and fmt.name == "parquet":
        import pyarrow.parquet as pq

        try:
            schema = pq.read_schema(p)
        except Exception as exc:  # noqa: BLE001 - not a parquet file
            raise DataError(f"{p}: cannot read a table ({one_line(exc)})") from None
        names = list(schema.names)
        _check_unique_names(names, str(p))
        nested = [f.name for f in schema if _nested_type(f.type)]
    else:
        names, nested = [], []
    try:
        with warnings.catch_warnings():
            # a parquet file pandas or pyarrow wrote has no astropy string lengths: astropy then
            # says, for every text column, that it uses the longest string, which is what is wanted
            warnings.filterwarnings("ignore", message=r"No table::len::", category=UserWarning)
            if nested:  # astropy reads no struct, map or union column: those come as JSON text
                table = QTable.read(p, format="parquet", include_names=[n for n in names if n not in nested])
            else:
                table = QTable.read(p, format=fmt.astropy, **_text_as_str(fmt)) if fmt is not None else QTable.read(p)
        if nested:
            _add_nested_as_text(table, p, nested)
    except Exception as exc:  # noqa: BLE001 - any parser failure is the user's file
        raise_if_out_of_resources(exc)
        raise DataError(f"{p}: cannot read a table ({one_line(exc)})") from None
    check_table_cells(table, str(p))
    for col in table.colnames:
        if is_id_column(col) and getattr(table[col], "ndim", 1) == 1:  # exact, or one line naming the row
            column = table[col]
            masked = getattr(column, "mask", None) is not None and bool(np.any(column.mask))
            # an integer column as it is (no Python int per row); masked or text cells row by row
            values = np.asarray(column) if np.asarray(column).dtype.kind in "iu" and not masked else column.tolist()
            table[col] = objid_array(values, str(p), column=col)
    return table


def _nested_type(t) -> bool:
    """Whether an arrow type is one astropy cannot read: a struct, map or union, or a list of one."""
    import pyarrow as pa

    if pa.types.is_struct(t) or pa.types.is_map(t) or pa.types.is_union(t):
        return True
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
        return _nested_type(t.value_type)
    return False


def _add_nested_as_text(table, path: Path, names: list[str]) -> None:
    """Add the parquet columns ``names`` (nested: struct, map, union) to ``table`` as JSON text, in
    file order, with a warning naming them (a nested column no longer refuses the whole table)."""
    import json

    import pyarrow.parquet as pq

    nested = pq.read_table(path, columns=names, use_threads=False, pre_buffer=False)
    order = pq.read_schema(path).names
    for name in names:
        text = [None if v is None else json.dumps(v, default=str, ensure_ascii=False) for v in nested[name].to_pylist()]
        index = sum(1 for n in order[: order.index(name)] if n in table.colnames)
        table.add_column(np.array(["" if v is None else v for v in text], dtype=str), name=name, index=index)
    log.warning("%s: nested column%s %s read as JSON text", path, "s" if len(names) > 1 else "", ", ".join(names))


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
