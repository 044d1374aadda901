"""The table of predictions at sky positions: an astropy QTable with units and provenance.

:func:`positions_table` assembles it from the positions and the rows' results of a positions run
(:mod:`galmet.predict.positions`); :func:`write_positions_table` writes it by suffix through the
table-format registry of :mod:`galmet.io.tables` (.parquet, .csv, .ecsv, .fits), atomically.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pandas as pd

from galmet.columns import ERROR, LABEL_RANGES, STATUS, target_of
from galmet.io.tables import write_qtable
from galmet.sdss.coords import Positions

log = logging.getLogger(__name__)

#: Column of the rows' results that gives each row's place in the input (not an output column).
ROW = "row"


def positions_table(positions: Positions, results: pd.DataFrame, targets: list[str], meta: dict):
    """The output QTable: the input's columns, ra/dec (deg), the predictions (units), status, error.

    An input column named like an output column is kept as ``<name>_input`` (a warning says so),
    except ra/dec columns that already hold these degrees, which the degree columns replace.

    Parameters
    ----------
    positions : galmet.sdss.coords.Positions
        The input (:func:`galmet.sdss.coords.sky_positions`); its table's columns come first.
    results : pandas.DataFrame
        One row per position, in input order: ``row``, the prediction columns (``<target>_pred``
        ...), ``ood_score``/``flags`` when computed, ``status`` and ``error``.
    targets : list of str
        The model's targets: their columns get the target's unit (u.dex for oh_p50 ...).
    meta : dict
        Provenance (flat scalars; they become FITS header cards).
    """
    import astropy.units as u
    from astropy.table import QTable

    produced = [c for c in results.columns if c not in (ROW, STATUS, ERROR)] + [STATUS, ERROR]
    out = QTable(positions.table, copy=False) if positions.table is not None else QTable()
    replace = (
        {"ra", "dec"}
        if positions.degrees_in_place and (positions.ra_column, positions.dec_column) == ("ra", "dec")
        else set()
    )
    for name in list(out.colnames):
        if name in replace:
            continue
        if name in produced or name in ("ra", "dec"):
            new = f"{name}_input"
            log.warning("positions: the input's column %s is kept as %s", name, new)
            out.rename_column(name, new)
    # replaces the input's ra/dec in place when they are these degrees, else appended
    out["ra"], out["dec"] = u.Quantity(positions.ra, u.deg), u.Quantity(positions.dec, u.deg)
    for name in produced:
        values = results[name].to_numpy()
        if values.dtype == object:  # text (status, error): a fixed-width str column every format writes
            values = values.astype(str)
        target = _target_of_column(name, targets)
        if target is not None and target in LABEL_RANGES and values.dtype.kind == "f":
            out[name] = u.Quantity(values, u.dex)
        else:
            out[name] = values
    out.meta.update(meta)
    return out


def _target_of_column(name: str, targets: list[str]) -> str | None:
    t = target_of(name)
    if t in targets:
        return t
    return next((t for t in targets if name.startswith(f"{t}_")), None)


def write_positions_table(table, path: str | os.PathLike) -> Path:
    """Write a positions QTable atomically; the format follows the suffix (.parquet, .csv, .ecsv, .fits).

    Parquet, ECSV and FITS keep the units and the provenance (``meta``; in FITS as header
    cards, :data:`galmet.io.tables.FITS_KEYWORDS`); CSV is plain values. ConfigError
    (``param="out"``) for another suffix.
    """
    return write_qtable(table, path)
