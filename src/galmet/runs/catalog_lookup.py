"""``galmet catalog --objids`` / ``--cone``: a catalogue of the user's own galaxies, with what to tell them.

:func:`objid_catalog` enriches the user's table (or list) of SDSS objIDs with the paper's columns
and labels: the rows keep the input's order and its other columns (a column SkyServer also
returns, say ``oh_p50``, is replaced by SkyServer's value, and said so); a ``split`` column of the
input is kept, so ``assign_splits`` respects it. :func:`cone_catalog` selects the paper's
galaxies in a cone. Both return the catalogue and a plain dict for ``catalog.json``.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from galmet.errors import DataError
from galmet.sdss.by_objid import PASSES, SHOW, objid_sql, query_objids
from galmet.sdss.catalog import Cuts
from galmet.sdss.cone import DISTANCE, cone_sql, query_cone

log = logging.getLogger(__name__)


def objid_catalog(
    client, table: pd.DataFrame, cuts: Cuts | None = None, keep_failing: bool = False, progress: bool = True, where=""
) -> tuple[pd.DataFrame, dict]:
    """The paper's columns and labels of the objIDs in ``table`` (objID first, as
    :func:`galmet.sdss.by_objid.read_objid_file` returns it).

    Returns
    -------
    catalog : pandas.DataFrame
        The objIDs SkyServer knows that pass the cuts (all of them, flagged with ``passes_cuts``
        and ``failed_cuts``, with ``keep_failing``), in the input's order, the input's other
        columns after SkyServer's.
    info : dict
        ``given``, ``found``, ``unknown`` (count), ``unknown_first`` (the first few), ``passing``,
        ``failing`` (reason -> count), ``kept_failing``, ``requests``, ``sql`` (with ``<objIDs>``).

    Raises
    ------
    DataError
        SkyServer knows none of the objIDs, or none passes the cuts (without ``keep_failing``).
    """
    where = where or "objIDs"
    lookup = query_objids(client, table["objID"].to_numpy(), cuts, progress=progress)
    n_pass = int(lookup.found[PASSES].sum())
    info = {
        "given": len(table),
        "found": len(lookup.found),
        "unknown": len(lookup.unknown),
        "unknown_first": [int(i) for i in lookup.unknown[:SHOW]],
        "passing": n_pass,
        "failing": lookup.reasons(),
        "kept_failing": bool(keep_failing),
        "requests": lookup.requests,
        "sql": objid_sql([]).replace("IN ()", "IN (<objIDs>)"),
    }
    if len(lookup.found) == 0:
        raise DataError(
            f"{where}: SkyServer ({client.base_url}) knows none of the {len(table)} objIDs ({_first(info)})"
        )
    if n_pass == 0 and not keep_failing:
        raise DataError(
            f"{where}: none of the {len(lookup.found)} objIDs SkyServer knows passes the cuts "
            f"({_reasons(info['failing'], 3)}); keep_failing keeps them, flagged",
            param="keep_failing",
        )
    rows = lookup.found if keep_failing else lookup.passing()
    return _with_input_columns(rows, table, where), info


def _with_input_columns(rows: pd.DataFrame, table: pd.DataFrame, where: str) -> pd.DataFrame:
    """``rows`` with the input's other columns joined by objID (SkyServer's value wins a name clash)."""
    clash = [c for c in table.columns if c != "objID" and c in rows.columns]
    if clash:
        log.warning("%s: column(s) %s replaced by SkyServer's values", where, ", ".join(map(str, clash)))
    extra = table.drop(columns=clash).set_index("objID")
    joined = extra.reindex(rows["objID"].to_numpy())
    out = rows.reset_index(drop=True)
    for c in joined.columns:
        out[c] = joined[c].to_numpy()
    return out


def _first(info: dict) -> str:
    more = ", ..." if info["unknown"] > len(info["unknown_first"]) else ""
    return "first: " + ", ".join(map(str, info["unknown_first"])) + more


def _reasons(failing: dict, n: int | None = None) -> str:
    items = list(failing.items())[:n]
    more = "; ..." if n is not None and len(failing) > n else ""
    return "; ".join(f"{k}: {v}" for k, v in items) + more


def describe_objids(info: dict) -> list[str]:
    """Lines telling the user what became of their objIDs (for the terminal)."""
    lines = [f"objIDs: {info['given']} given, {info['found']} known to SkyServer, {info['passing']} pass the cuts"]
    if info["unknown"]:
        lines.append(f"objIDs SkyServer does not know: {info['unknown']} ({_first(info)}); not written")
    if info["failing"]:
        kept = info["kept_failing"]
        what = "kept, flagged in passes_cuts/failed_cuts" if kept else "dropped (--keep-failing keeps them)"
        lines.append(f"objIDs failing a cut: {info['found'] - info['passing']}, {what}; by reason:")
        lines += [f"  {v:>7d}  {k}" for k, v in info["failing"].items()]
    return lines


def cone_catalog(
    client, center: tuple[float, float], radius_arcmin: float, cuts: Cuts | None = None, limit: int | None = None
) -> tuple[pd.DataFrame, dict]:
    """The paper's galaxies within ``radius_arcmin`` of ``center`` (ra, dec degrees), nearest first;
    DataError when there are none. ``info``: the cone, the limit and the SQL."""
    ra, dec = center
    catalog = query_cone(client, ra, dec, radius_arcmin, cuts, limit)
    if len(catalog) == 0:
        raise DataError(
            f"{client.base_url}: no galaxies within {radius_arcmin:g} arcmin of ra {ra:g} dec {dec:g} pass the cuts"
        )
    info = {
        "cone": {"ra": ra, "dec": dec, "radius_arcmin": radius_arcmin},
        "limit": limit,
        "sql": cone_sql(ra, dec, radius_arcmin, cuts, limit),
        "max_distance_arcmin": float(np.nanmax(catalog[DISTANCE])) if DISTANCE in catalog else None,
    }
    return catalog, info
