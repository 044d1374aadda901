"""The paper's galaxy catalog: SQL with its cuts, chunked SkyServer queries, local cuts.

Wu & Boada (2019) selected galaxies from the MPA-JHU DR7 spectroscopic catalog joined to
DR14 photometry (see shared/docs/PAPER.md, "Data")::

    rChi2 < 2;  oh_p50 available (not -9999);  10 < u,g,r,i,z (modelMag) < 25;
    0 < u - r < 6;  z > 0.02;  0 < zErr < 0.01;  10 < petroMag_r < 18

Every bound is a field of :class:`Cuts` with the paper's value as default. The same cut
list drives both the SQL (:func:`build_sql`) and the local filter for a table the user
already has (:func:`apply_cuts`), so the two can not drift apart.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import re
import threading
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from galmet.columns import float_array, is_id_column, objid_array
from galmet.errors import ConfigError, DataError
from galmet.io.atomic import TEMP_FILE
from galmet.io.progress import progress_bar
from galmet.io.safety import remove_empty_dirs, remove_files
from galmet.io.tables import PARQUET_READ, write_table
from galmet.sdss.transport import ClientSettings, Range

log = logging.getLogger(__name__)

BANDS = "ugriz"
#: (SQL expression, output column) of every column the query returns.
COLUMNS: list[tuple[str, str]] = (
    [
        ("g.objID", "objID"),
        ("s.specObjID", "specObjID"),
        ("g.ra", "ra"),
        ("g.dec", "dec"),
        ("s.z", "z"),
        ("s.zErr", "zErr"),
        ("s.rChi2", "rChi2"),
    ]
    + [(f"g.modelMag_{b}", f"modelMag_{b}") for b in BANDS]
    + [(f"g.modelMagErr_{b}", f"modelMagErr_{b}") for b in BANDS]
    + [("g.petroMag_r", "petroMag_r"), ("g.petroR50_r", "petroR50_r"), ("g.petroR90_r", "petroR90_r")]
    # inclination (axis ratio of the exponential fit) and the light in the 3" spectroscopic fibre,
    # for galmet systematics
    + [("g.expAB_r", "expAB_r"), ("g.fiberMag_r", "fiberMag_r")]
    + [(f"e.{c}", c) for c in ("oh_p16", "oh_p50", "oh_p84", "lgm_tot_p50", "sfr_tot_p50", "bptclass")]
)
SQL_OF = {name: expr for expr, name in COLUMNS}
INT_COLUMNS = ("objID", "specObjID", "bptclass")
FROM_CLAUSE = """FROM SpecObj AS s
  JOIN Galaxy AS g ON g.objID = s.bestObjID
  JOIN GalSpecInfo AS i ON i.specObjID = s.specObjID
  JOIN GalSpecLine AS l ON l.specObjID = s.specObjID
  JOIN GalSpecExtra AS e ON e.specObjID = s.specObjID"""


@dataclass(frozen=True)
class Cuts:
    """The paper's selection; every bound is strict (``<``/``>``), as in the paper.

    Attributes
    ----------
    rchi2_max : float
        Upper bound of the reduced chi^2 of the spectrum fit (SpecObj.rChi2).
    oh_missing : float
        The MPA-JHU "no measurement" value of oh_p50 that is excluded.
    mag_min, mag_max : float
        Bounds of each of modelMag_u, g, r, i, z (AB mag).
    u_r_min, u_r_max : float
        Bounds of the colour modelMag_u - modelMag_r (mag).
    z_min : float
        Lower bound of the redshift.
    zerr_min, zerr_max : float
        Bounds of the redshift error.
    petro_r_min, petro_r_max : float
        Bounds of petroMag_r (mag); 18 is near the spectroscopic flux limit.
    """

    rchi2_max: float = 2.0
    oh_missing: float = -9999.0
    mag_min: float = 10.0
    mag_max: float = 25.0
    u_r_min: float = 0.0
    u_r_max: float = 6.0
    z_min: float = 0.02
    zerr_min: float = 0.0
    zerr_max: float = 0.01
    petro_r_min: float = 10.0
    petro_r_max: float = 18.0

    def check(self) -> None:
        """ConfigError naming the first bound that is not a finite number or a lower bound that is
        not below its upper bound (no galaxy could pass); ``param`` is that bound's field name."""
        for name, value in asdict(self).items():
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ConfigError(f"{name} must be a finite number, got {value!r}", param=name)
        for lo, hi in CUT_PAIRS:
            if getattr(self, lo) >= getattr(self, hi):
                raise ConfigError(
                    f"{lo} {getattr(self, lo):g} must be below {hi} {getattr(self, hi):g} (no galaxy could pass)",
                    param=(lo, hi),
                )

    def terms(self) -> list[tuple[tuple[str, ...], str, float]]:
        """Each cut as (columns, operator, value); two columns mean their difference."""
        t: list[tuple[tuple[str, ...], str, float]] = [
            (("rChi2",), "<", self.rchi2_max),
            (("oh_p50",), "<>", self.oh_missing),
        ]
        for b in BANDS:
            t += [((f"modelMag_{b}",), ">", self.mag_min), ((f"modelMag_{b}",), "<", self.mag_max)]
        t += [
            (("modelMag_u", "modelMag_r"), ">", self.u_r_min),
            (("modelMag_u", "modelMag_r"), "<", self.u_r_max),
            (("z",), ">", self.z_min),
            (("zErr",), ">", self.zerr_min),
            (("zErr",), "<", self.zerr_max),
            (("petroMag_r",), ">", self.petro_r_min),
            (("petroMag_r",), "<", self.petro_r_max),
        ]
        return t

    def describe(self) -> list[str]:
        """Each cut in words over the output columns, e.g. ``'rChi2 < 2'``."""
        return [f"{' - '.join(cols)} {op} {_num(v)}" for cols, op, v in self.terms()]

    def sql_conditions(self) -> list[str]:
        """Each cut as a SQL condition over the joined tables, e.g. ``'s.rChi2 < 2'``."""
        return [f"{' - '.join(SQL_OF[c] for c in cols)} {op} {_num(v)}" for cols, op, v in self.terms()]


#: (lower, upper) bounds of :class:`Cuts` that must be in that order.
CUT_PAIRS = (("mag_min", "mag_max"), ("u_r_min", "u_r_max"), ("zerr_min", "zerr_max"), ("petro_r_min", "petro_r_max"))
#: The accepted values of the query's own parameters (the client's: ``SETTING_RANGES``).
QUERY_RANGES: dict[str, Range] = {
    "chunks": Range(1, 3600, integer=True),
    "limit": Range(1, 10**8, integer=True),
}
#: How the catalogue query talks to SkyServer unless told otherwise (``galmet catalog``'s
#: defaults): a chunk is a slow query and a large body, so a long deadline, 1 request/s.
QUERY_SETTINGS = ClientSettings(timeout=180.0, retries=5, rate=1.0, backoff_base=2.0, max_bytes=256 << 20)


def _num(v: float) -> str:
    return format(float(v), ".10g")


def ra_bands(chunks: int) -> list[tuple[float, float]]:
    """Split 0 <= ra < 360 degrees into ``chunks`` equal bands [lo, hi)."""
    QUERY_RANGES["chunks"].check("chunks", chunks)
    edges = np.linspace(0.0, 360.0, chunks + 1)
    return [(float(edges[i]), float(edges[i + 1])) for i in range(chunks)]


def select_list(columns: list[tuple[str, str]], sep: str = ",\n  ") -> str:
    """``columns`` ((SQL expression, output name), ...) as a SELECT list; no "AS" alias where the
    name is the column's own (DEC is an ODBC reserved word)."""
    return sep.join(expr if expr.split(".")[-1] == name else f"{expr} AS {name}" for expr, name in columns)


def build_sql(
    cuts: Cuts = Cuts(),
    ra_band: tuple[float, float] | None = None,
    top: int | None = None,
    *,
    extra_columns: list[tuple[str, str]] | None = None,
    join: str = "",
) -> str:
    """The paper's SkyServer SQL (DR14 schema), optionally for one ra band and the first ``top`` rows.

    ``extra_columns`` ((SQL expression, output name), ...) are selected after :data:`COLUMNS` and
    ``join`` (one more ``JOIN ... ON ...`` clause, e.g. a cone function) follows the paper's joins.
    """
    select = "SELECT" + (f" TOP {int(top)}" if top else "")
    cols = select_list(COLUMNS + list(extra_columns or []))
    conds = cuts.sql_conditions()
    if ra_band is not None:
        conds += [f"g.ra >= {_num(ra_band[0])}", f"g.ra < {_num(ra_band[1])}"]
    tables = FROM_CLAUSE + (f"\n  {join}" if join else "")
    return f"{select}\n  {cols}\n{tables}\nWHERE " + "\n  AND ".join(conds)


def chunk_queries(cuts: Cuts, chunks: int, limit: int | None = None) -> list[tuple[str, str]]:
    """(label, SQL) of each ra-band chunk, in order."""
    _check_limit(limit)
    return [(_label(i, chunks, band), build_sql(cuts, band, limit)) for i, band in enumerate(ra_bands(chunks))]


def _check_limit(limit: int | None) -> None:
    if limit is not None:
        QUERY_RANGES["limit"].check("limit", limit)


def _label(i: int, chunks: int, band: tuple[float, float]) -> str:
    return f"chunk {i + 1}/{chunks} (ra {_num(band[0])}-{_num(band[1])} deg)"


def query_catalog(
    client,
    cuts: Cuts = Cuts(),
    chunks: int = 36,
    limit: int | None = None,
    progress: bool = True,
    stop: threading.Event | None = None,
    cache_dir: str | os.PathLike | None = None,
    *,
    get_query_payload: bool = False,
):
    """Run the paper's query chunk by chunk on SkyServer and return the merged, typed catalog.

    Parameters
    ----------
    client : galmet.sdss.skyserver.SkyServerClient
        Sends the requests (with its retries and rate limit).
    cuts, chunks
        The selection, and the number of ra bands it is split into (one request each).
    limit : int, optional
        Stop once this many rows are in (``TOP`` in each request); None for all.
    cache_dir : path-like, optional
        Keep each chunk's result here (parquet named by a hash of its SQL, written atomically)
        and reuse it, so a rerun after a failed chunk only asks for the chunks still missing.
    get_query_payload : bool
        Return the requests instead, one :class:`~galmet.sdss.transport.RequestPayload` per chunk
        (each with ``TOP limit``), without touching the network or the cache (astroquery's payload mode).

    Returns
    -------
    pandas.DataFrame
        The catalogue (a list of RequestPayload with ``get_query_payload``).

    Raises
    ------
    galmet.sdss.skyserver.SkyServerError
        A chunk failed after its retries; the message names the chunk.
    """
    if get_query_payload:
        return [client.sql_payload(sql) for _, sql in chunk_queries(cuts, chunks, limit)]
    _check_limit(limit)
    frames: list[pd.DataFrame] = []
    n = 0
    bands = ra_bands(chunks)
    bar = progress_bar(total=len(bands), desc="catalog chunks", unit="chunk", enabled=progress)
    try:
        for i, band in enumerate(bands):
            label = _label(i, chunks, band)
            sql = build_sql(cuts, band, None if limit is None else limit - n)
            cached = (
                None
                if cache_dir is None
                else Path(cache_dir) / f"{hashlib.sha1(sql.encode()).hexdigest()[:20]}.parquet"
            )
            if cached is not None and cached.is_file():
                frame = pd.read_parquet(cached, **PARQUET_READ)
                log.debug("%s: %d rows from %s", label, len(frame), cached)
            else:
                frame = client.sql_search(sql, where=label, expect_columns=("objID",), stop=stop)
                log.debug("%s: %d rows", label, len(frame))
                if cached is not None:
                    write_table(frame, cached)
            frames.append(frame)
            n += len(frame)
            bar.update(1)
            bar.set_postfix(rows=n)
            if limit is not None and n >= limit:
                break
    finally:
        bar.close()
    merged = merge_chunks(frames)
    return merged.head(limit).reset_index(drop=True) if limit is not None else merged


#: Name of a finished chunk in the chunk cache: 20 hex digits of the SHA-1 of its SQL.
CHUNK_FILE = re.compile(r"[0-9a-f]{20}\.parquet")


def remove_chunk_cache(folder: str | os.PathLike) -> int:
    """Delete the chunk files galmet wrote in ``folder`` (names :data:`CHUNK_FILE`, and their
    temporary files), then the folder if that left it empty; anything else stays. Returns the
    number of files removed."""
    folder = Path(folder)
    if not folder.is_dir():
        return 0
    ours = [p for p in folder.iterdir() if CHUNK_FILE.fullmatch(p.name)]
    for p in folder.iterdir():
        m = TEMP_FILE.fullmatch(p.name)  # a temporary file an interrupted chunk write left
        if m is not None and CHUNK_FILE.fullmatch(m["name"]):
            ours.append(p)
    n = remove_files(ours)
    remove_empty_dirs([folder])
    return n


def merge_chunks(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """Concatenate chunk results, type them and keep one row per objID.

    A photometric object with several spectra keeps the row with the smallest specObjID
    (deterministic). Rows are sorted by objID.
    """
    frames = [f for f in frames if len(f.columns)]
    if not frames:
        return type_columns(pd.DataFrame(columns=[name for _, name in COLUMNS]))
    df = type_columns(canonical_columns(pd.concat(frames, ignore_index=True)))
    order = [c for c in ("objID", "specObjID") if c in df.columns]
    df = df.sort_values(order, kind="stable").drop_duplicates("objID", keep="first")
    return df.reset_index(drop=True)


def type_columns(df: pd.DataFrame, where: str = "catalog") -> pd.DataFrame:
    """objID/specObjID as exact int64 (:func:`galmet.columns.objid_array`: a non-integral or
    out-of-range ID is an error naming the row, never rounded), bptclass as int64 (-1 when
    missing), every other known column as float64 (text that is not a number is an error)."""
    df = df.copy()
    for name in df.columns:
        if is_id_column(name):
            df[name] = objid_array(df[name], where, column=str(name))
        elif name in INT_COLUMNS:
            values = pd.Series(float_array(df[name], where, str(name)), index=df.index)
            df[name] = values.where(np.isfinite(values), -1).round().astype(np.int64)
        elif name in SQL_OF:
            df[name] = float_array(df[name], where, str(name))
    return df


def canonical_columns(df: pd.DataFrame) -> pd.DataFrame:
    """Rename columns that match a known name up to case (e.g. FITS ``OH_P50`` -> ``oh_p50``)."""
    known = {name.lower(): name for _, name in COLUMNS}
    renames = {c: known[str(c).lower()] for c in df.columns if str(c).lower() in known and c != known[str(c).lower()]}
    return df.rename(columns=renames)


def cut_masks(
    df: pd.DataFrame, cuts: Cuts = Cuts(), where: str = "table"
) -> list[tuple[str, tuple[str, ...], np.ndarray]]:
    """Each cut as (its words, e.g. ``'rChi2 < 2'``; the columns it reads; bool (N,): which rows
    of ``df`` pass it). NaN fails every cut (as NULL does in SQL). Raises DataError naming the
    first missing column."""
    out = []
    for (cols, op, value), text in zip(cuts.terms(), cuts.describe(), strict=True):
        for c in cols:
            if c not in df.columns:
                raise DataError(f"{where}: column {c!r} (needed for the cut '{text}') is missing")
        x = float_array(df[cols[0]], where, cols[0])
        if len(cols) == 2:
            x = x - float_array(df[cols[1]], where, cols[1])
        with np.errstate(invalid="ignore"):
            ok = {"<": x < value, ">": x > value, "<>": np.isfinite(x) & (x != value)}[op]
        out.append((text, cols, ok))
    return out


def cut_mask(df: pd.DataFrame, cuts: Cuts = Cuts(), where: str = "table") -> tuple[np.ndarray, dict[str, int]]:
    """Which rows of ``df`` pass every cut, and how many rows each cut rejects.

    NaN fails every cut (as NULL does in SQL). Raises DataError naming the first missing column.
    """
    keep = np.ones(len(df), dtype=bool)
    rejected: dict[str, int] = {}
    for text, _, ok in cut_masks(df, cuts, where):
        rejected[text] = int((~ok).sum())
        keep &= ok
    return keep, rejected


def apply_cuts(df: pd.DataFrame, cuts: Cuts = Cuts(), where: str = "table") -> pd.DataFrame:
    """The rows of a local table (same column names as the query) that pass the paper's cuts, typed."""
    df = canonical_columns(df)
    if "objID" not in df.columns:
        raise DataError(f"{where}: column 'objID' is missing (columns: {', '.join(map(str, df.columns))})")
    keep, rejected = cut_mask(df, cuts, where)
    for text, n in rejected.items():
        if n:
            log.debug("%s: cut '%s' rejects %d rows", where, text, n)
    kept = type_columns(df.loc[keep].reset_index(drop=True), where)
    dup = kept["objID"].duplicated()
    if dup.any():
        kept = kept.loc[~dup].reset_index(drop=True)
        log.warning("%s: dropped %d rows with a repeated objID", where, int(dup.sum()))
    return kept


def catalog_from_table(path: str | os.PathLike, cuts: Cuts = Cuts()) -> pd.DataFrame:
    """Read a FITS/CSV/parquet table (MPA-JHU files joined, a CasJobs export) and apply the cuts."""
    from galmet.io.tables import read_table

    path = Path(path)
    return apply_cuts(read_table(path), cuts, str(path))


def cuts_config(cuts: Cuts) -> dict:
    """The cuts as a plain dict (for the JSON written beside the catalog)."""
    return asdict(cuts)
