"""The paper's columns and labels for a user's own SDSS objIDs (``galmet catalog --objids``).

The query starts from the photometric table (``PhotoObjAll``), so that an objID SkyServer does
not know is told apart from one it knows but that fails the paper's selection; spectra and the
MPA-JHU labels are joined with LEFT JOINs (``SpecObj`` by ``bestObjID``, ``GalSpecExtra`` by
``specObjID``) and every cut is evaluated here, per row, with the same cut list as the paper's
query (:class:`galmet.sdss.catalog.Cuts`), plus what the paper's inner joins select implicitly:

- ``not a primary galaxy``: the paper reads the ``Galaxy`` view (``mode = 1``, ``type = 3``);
- ``no SDSS spectrum``: no science-primary spectrum has this object as its ``bestObjID``;
- ``not in MPA-JHU``: the spectrum has no MPA-JHU (DR7) row.

The objIDs are sent as ``WHERE g.objID IN (...)`` lists, as many per request as keep the request
URL within :data:`MAX_URL_CHARS` (SkyServer runs on IIS, whose default query-string limit is
2048 characters).
"""

from __future__ import annotations

import logging
import re
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from galmet.errors import ConfigError, DataError
from galmet.io.progress import progress_bar
from galmet.sdss.catalog import COLUMNS, SQL_OF, Cuts, cut_masks, merge_chunks, select_list

log = logging.getLogger(__name__)

#: Longest SqlSearch request URL sent, characters (IIS refuses a query string over 2048 by default).
MAX_URL_CHARS = 2000
#: The largest SDSS objID (a positive signed 64-bit integer).
MAX_OBJID = 2**63 - 1
#: What the objID query selects besides :data:`~galmet.sdss.catalog.COLUMNS`: photometric type and mode.
EXTRA_COLUMNS = [("g.type", "type"), ("g.mode", "mode")]
FROM_OBJIDS = (
    "FROM PhotoObjAll AS g "
    "LEFT JOIN SpecObj AS s ON s.bestObjID = g.objID "
    "LEFT JOIN GalSpecExtra AS e ON e.specObjID = s.specObjID"
)
NOT_GALAXY = "not a primary galaxy (Galaxy view: mode 1, type 3)"
NO_SPECTRUM = "no SDSS spectrum"
NOT_IN_MPAJHU = "not in MPA-JHU"
#: Columns of a looked-up catalogue: does the row pass every cut; the cuts it fails ("; "-joined).
PASSES, FAILED = "passes_cuts", "failed_cuts"
#: How many unknown objIDs a message names.
SHOW = 5


@dataclass
class ObjidLookup:
    """What SkyServer answered for a list of objIDs.

    Attributes
    ----------
    found : pandas.DataFrame
        One row per objID SkyServer knows, in the order given: objID, the paper's columns
        (:data:`~galmet.sdss.catalog.COLUMNS`; NaN where there is no spectrum or MPA-JHU row,
        specObjID 0 without a spectrum), ``passes_cuts`` (bool) and ``failed_cuts`` (text).
    unknown : numpy.ndarray
        int64 objIDs SkyServer does not know, in the order given.
    requests : int
        SqlSearch requests sent.
    """

    found: pd.DataFrame
    unknown: np.ndarray
    requests: int

    def passing(self) -> pd.DataFrame:
        """The rows that pass every cut, without the two flag columns."""
        rows = self.found[self.found[PASSES].to_numpy(dtype=bool)]
        return rows.drop(columns=[PASSES, FAILED]).reset_index(drop=True)

    def reasons(self) -> dict[str, int]:
        """How many found rows fail for each reason (a row may count under several), most first."""
        counts: dict[str, int] = {}
        for text in self.found[FAILED]:
            for reason in filter(None, str(text).split("; ")):
                counts[reason] = counts.get(reason, 0) + 1
        return dict(sorted(counts.items(), key=lambda kv: -kv[1]))


def objid_sql(objids) -> str:
    """The SkyServer SQL (DR14 schema) of the paper's columns, photometric type and mode of ``objids``."""
    cols = select_list(_columns(), ",")
    ids = ",".join(str(int(i)) for i in objids)
    return f"SELECT {cols} {FROM_OBJIDS} WHERE g.objID IN ({ids})"


def _columns() -> list[tuple[str, str]]:
    # an object without a spectrum has specObjID 0, as in SDSS's own PhotoObj.specObjID
    return [("ISNULL(s.specObjID,0)", n) if n == "specObjID" else (e, n) for e, n in COLUMNS] + EXTRA_COLUMNS


def objid_chunks(client, objids, max_url: int = MAX_URL_CHARS) -> list[np.ndarray]:
    """Split ``objids`` into consecutive runs whose request URL (``client.sql_url``) stays within ``max_url``."""
    ids = np.asarray(objids, dtype=np.int64)
    fixed = len(client.sql_url(objid_sql([])))
    room = max_url - fixed
    if room < 20:
        raise ConfigError(f"a request URL of {max_url} characters leaves no room for an objID ({fixed} are fixed)")
    cost = np.array([len(str(i)) + 3 for i in ids.tolist()])  # "%2C" (the comma) before every objID but the first
    chunks, start, used = [], 0, 0
    for k, c in enumerate(cost):
        if k > start and used + c - 3 > room:
            chunks.append(ids[start:k])
            start, used = k, 0
        used += c
    if start < len(ids):
        chunks.append(ids[start:])
    return chunks


def check_objids(objids, where: str = "objIDs") -> np.ndarray:
    """``objids`` as int64 (N,); DataError naming the first row (0-based) that is not positive or
    repeats an earlier one."""
    ids = np.asarray(objids, dtype=np.int64)
    bad = np.flatnonzero(ids <= 0)
    if bad.size:
        raise DataError(f"{where}: row {bad[0]}: objID {ids[bad[0]]} is not an SDSS objID (a positive 64-bit integer)")
    _, first = np.unique(ids, return_index=True)
    if first.size < ids.size:
        seen = np.zeros(ids.size, bool)
        seen[first] = True
        j = int(np.flatnonzero(~seen)[0])
        i = int(np.flatnonzero(ids[:j] == ids[j])[0])
        raise DataError(f"{where}: row {j}: objID {ids[j]} repeats row {i}")
    return ids


def query_objids(
    client,
    objids,
    cuts: Cuts | None = None,
    progress: bool = False,
    stop: threading.Event | None = None,
    *,
    max_url: int = MAX_URL_CHARS,
    get_query_payload: bool = False,
):
    """Ask SkyServer for the paper's columns and labels of ``objids`` and flag the paper's cuts.

    Parameters
    ----------
    client : galmet.sdss.skyserver.SkyServerClient
        Sends the requests (retries, rate limit, deadline, body cap).
    objids : array-like of int
        Positive, distinct SDSS objIDs (checked first: :func:`check_objids`).
    cuts : Cuts, optional
        The selection flagged per row (default: the paper's).
    get_query_payload : bool
        Return the requests instead (a list of :class:`~galmet.sdss.transport.RequestPayload`,
        one per chunk of objIDs) and send nothing.

    Returns
    -------
    ObjidLookup
        The rows found (flagged), the objIDs SkyServer does not know, the requests sent.

    Raises
    ------
    galmet.sdss.skyserver.SkyServerError
        A request failed after its retries; the message names the chunk.
    """
    ids = check_objids(objids)
    cuts = cuts or Cuts()
    cuts.check()
    chunks = objid_chunks(client, ids, max_url)
    if get_query_payload:
        return [client.sql_payload(objid_sql(c)) for c in chunks]
    frames = []
    bar = progress_bar(total=len(chunks), desc="objID chunks", unit="chunk", enabled=progress)
    try:
        for k, chunk in enumerate(chunks):
            where = f"objID chunk {k + 1}/{len(chunks)} ({len(chunk)} objIDs from {chunk[0]})"
            frames.append(client.sql_search(objid_sql(chunk), where=where, expect_columns=("objID",), stop=stop))
            bar.update(1)
    finally:
        bar.close()
    return _lookup(ids, merge_chunks(frames), cuts, len(chunks))


def _lookup(ids: np.ndarray, rows: pd.DataFrame, cuts: Cuts, requests: int) -> ObjidLookup:
    """Order ``rows`` (typed, one per objID) as ``ids``, flag the cuts, name the unknown objIDs."""
    rows = rows[rows["objID"].isin(ids)] if len(rows) else rows
    known = np.isin(ids, rows["objID"].to_numpy())
    order = pd.Index(rows["objID"].to_numpy()).get_indexer(ids[known])
    found = rows.iloc[order].reset_index(drop=True)
    if len(found):
        failed = failed_cuts(found, cuts)
    else:
        failed = []
    found[PASSES] = np.array([not f for f in failed], dtype=bool)
    found[FAILED] = np.array(failed, dtype=object)
    found = found.drop(columns=[c for _, c in EXTRA_COLUMNS if c in found.columns])
    return ObjidLookup(found, ids[~known], requests)


def failed_cuts(rows: pd.DataFrame, cuts: Cuts | None = None) -> list[str]:
    """For each row, the reasons it fails ("; "-joined, "" when it passes): not a primary galaxy,
    no spectrum, no MPA-JHU row, then each failed cut (cuts on the spectrum or MPA-JHU columns are
    not listed for a row that has none)."""
    n = len(rows)
    galaxy = (pd.to_numeric(rows["mode"]).to_numpy() == 1) & (pd.to_numeric(rows["type"]).to_numpy() == 3)
    spectrum = rows["specObjID"].to_numpy() != 0
    mpajhu = spectrum & np.isfinite(rows["oh_p50"].to_numpy(dtype=float))
    reasons: list[list[str]] = [[] for _ in range(n)]
    for ok, text in ((galaxy, NOT_GALAXY), (spectrum, NO_SPECTRUM), (~spectrum | mpajhu, NOT_IN_MPAJHU)):
        for i in np.flatnonzero(~ok):
            reasons[i].append(text)
    for text, cols, ok in cut_masks(rows, cuts or Cuts(), "SkyServer answer"):
        tables = {SQL_OF[c].split(".")[0] for c in cols}
        has = mpajhu if "e" in tables else spectrum if "s" in tables else np.ones(n, bool)
        for i in np.flatnonzero(~ok & has):
            reasons[i].append(text)
    return ["; ".join(r) for r in reasons]


# -- the user's file ----------------------------------------------------------------------------
_DIGITS = re.compile(r"\+?\d{1,19}")


def read_objid_file(path) -> pd.DataFrame:
    """The user's objIDs: a table galmet reads (:func:`galmet.io.tables.read_table`) with an
    ``objID`` column (any case; its other columns kept), or a plain text list, one objID a line
    (blank lines, ``#`` comments and a first line ``objID`` skipped).

    Returns
    -------
    pandas.DataFrame
        ``objID`` (int64, positive, distinct) first, then the table's other columns.

    Raises
    ------
    DataError
        One line naming the file and the first bad row (table: 0-based row; text: line number).
    """
    from galmet.io.tables import read_table, table_format

    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file" if not path.exists() else f"{path}: is not a file")
    if table_format(path) is None:
        return pd.DataFrame({"objID": _read_lines(path)})
    table = read_table(path)
    col = next((c for c in table.columns if str(c).lower() == "objid"), None)
    if col is None:
        raise DataError(f"{path}: no objID column (columns: {', '.join(map(str, table.columns)) or 'none'})")
    if len(table) == 0:
        raise DataError(f"{path}: no rows (no objIDs to look up)")
    table = table.rename(columns={col: "objID"})
    table["objID"] = check_objids(table["objID"].to_numpy(), str(path))
    return table[["objID", *[c for c in table.columns if c != "objID"]]]


def _read_lines(path: Path) -> np.ndarray:
    """objIDs of a text list, one a line; DataError naming the line of a bad or repeated one."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (UnicodeDecodeError, OSError) as exc:
        raise DataError(f"{path}: cannot read a list of objIDs ({type(exc).__name__})") from None
    ids: list[int] = []
    lines: dict[int, int] = {}
    for n, raw in enumerate(text.splitlines(), 1):
        t = raw.strip()
        if not t or t.startswith("#") or (not ids and t.lower() == "objid"):
            continue
        value = int(t) if _DIGITS.fullmatch(t) else 0
        if not 0 < value <= MAX_OBJID:
            raise DataError(f"{path}: line {n}: {t[:40]!r} is not an SDSS objID (a positive 64-bit integer)")
        if value in lines:
            raise DataError(f"{path}: line {n}: objID {value} repeats line {lines[value]}")
        lines[value] = n
        ids.append(value)
    if not ids:
        raise DataError(f"{path}: no objIDs (one a line expected)")
    return np.array(ids, dtype=np.int64)
