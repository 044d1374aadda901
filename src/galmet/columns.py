"""Column names and their rules: prediction columns, identities, pass-through, label ranges.

A predictions table (``galmet predict``) has one row per image:

=========================  ============================================================
column                     meaning
=========================  ============================================================
``objID`` / ``file``       row identity: the SDSS objID (exact int64), else the image file
``split``                  train / valid / test (dataset directories with a catalogue)
``<target>_pred``          prediction, target units (dex for ``oh_p50``, ``lgm_tot_p50``)
``<target>_pred_std``      spread of the predictions over TTA views and ensemble members
``<target>``               the truth, when the catalogue has it
:data:`PASSTHROUGH`        catalogue columns copied for joins and analyses
=========================  ============================================================
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

import numpy as np
import pandas as pd

from galmet.errors import DataError

#: The SDSS photometric object ID, an exact 64-bit integer.
OBJID = "objID"
#: Columns holding SDSS identifiers, exact 64-bit integers (matched without regard to case).
ID_INTEGER_COLUMNS = (OBJID, "specObjID")
#: Image file of a row, relative to its dataset (image folders without objIDs).
FILE = "file"
#: Columns that identify a row, in order of preference.
ID_COLUMNS = (OBJID, FILE)
SPLIT = "split"
#: The paper's label: MPA-JHU median 12 + log(O/H), dex.
METALLICITY = "oh_p50"
#: MPA-JHU median log stellar mass, dex (solar masses).
STELLAR_MASS = "lgm_tot_p50"
DEFAULT_TARGET = METALLICITY
#: Catalogue columns copied into every predictions table when present (truths for analyses,
#: positions for joins).
PASSTHROUGH = (METALLICITY, STELLAR_MASS, "z", "ra", "dec")
#: Physically allowed range (inclusive) of each known label or truth column; values outside
#: (such as MPA-JHU's -9999 for "missing") are not labels. Training refuses (or skips) such rows;
#: every analysis treats them as missing, leaves them out and says how many
#: (:func:`mask_invalid_labels`).
LABEL_RANGES = {
    METALLICITY: (7.0, 10.0),
    STELLAR_MASS: (5.0, 13.0),
    # MPA-JHU percentiles of the same quantities
    "oh_p16": (7.0, 10.0),
    "oh_p84": (7.0, 10.0),
    "oh_p2p5": (7.0, 10.0),
    "oh_p97p5": (7.0, 10.0),
    "lgm_tot_p16": (5.0, 13.0),
    "lgm_tot_p84": (5.0, 13.0),
    # log specific star-formation rate (yr^-1): MPA-JHU's and the synthetic catalogue's
    "specsfr_tot_p50": (-20.0, -5.0),
    "log_ssfr": (-20.0, -5.0),
    # log star-formation rate (Msun/yr)
    "sfr_tot_p50": (-10.0, 5.0),
}
#: torchvision ResNets galmet builds bodies from.
ARCHS = ("resnet18", "resnet34", "resnet50")

_INT64_MAX = np.iinfo(np.int64).max
_INT64_MIN = np.iinfo(np.int64).min
#: Largest integer a float64 holds exactly; objIDs (~1.2e18) stored as floats have lost digits.
_FLOAT_EXACT = 2**53


def is_id_column(name: Any) -> bool:
    """True for a column that holds SDSS identifiers (``objID``, ``specObjID``, any case)."""
    return isinstance(name, str) and name.lower() in {c.lower() for c in ID_INTEGER_COLUMNS}


def pred_column(target: str) -> str:
    """Column holding the predictions of ``target``."""
    return f"{target}_pred"


def spread_column(target: str) -> str:
    """Column holding the spread of ``target``'s predictions over TTA views and ensemble members."""
    return f"{target}_pred_std"


def target_of(pred_col: str) -> str | None:
    """The target of a prediction column name (``oh_p50_pred`` -> ``oh_p50``), or None."""
    suffix = "_pred"
    return pred_col[: -len(suffix)] if pred_col.endswith(suffix) and len(pred_col) > len(suffix) else None


def invalid_label_mask(column: str, values) -> np.ndarray:
    """Which ``values`` of ``column`` are numbers outside its :data:`LABEL_RANGES` range.

    Parameters
    ----------
    column : str
        Column name; a column without a known range has no invalid values.
    values : array-like, shape (N,)
        Numbers (NaN counts as missing, not invalid).

    Returns
    -------
    numpy.ndarray
        bool (N,): True where a finite value lies outside the allowed range (e.g. -9999).
    """
    v = np.asarray(values, dtype=float)
    if column not in LABEL_RANGES:
        return np.zeros(v.shape, dtype=bool)
    lo, hi = LABEL_RANGES[column]
    return np.isfinite(v) & ((v < lo) | (v > hi))


def mask_invalid_labels(table, columns=None) -> tuple[Any, dict[str, dict[str, Any]]]:
    """A copy of ``table`` with the out-of-range values of its truth columns set to NaN.

    Parameters
    ----------
    table : pandas.DataFrame
        Any table (predictions, catalogue, joined analysis table).
    columns : sequence of str, optional
        Columns to check; default: every column of ``table`` with a :data:`LABEL_RANGES` entry.

    Returns
    -------
    (pandas.DataFrame, dict)
        The table (the same object when nothing was invalid) and, for each column with invalid
        values, ``{"n": count, "range": [lo, hi], "examples": up to 3 distinct bad values}``.
    """
    names = [c for c in (columns if columns is not None else table.columns) if c in LABEL_RANGES and c in table]
    found: dict[str, dict[str, Any]] = {}
    out = table
    for col in names:
        values = pd.to_numeric(out[col], errors="coerce").to_numpy(dtype=float)
        bad = invalid_label_mask(col, values)
        if bad.any():
            if out is table:
                out = table.copy()
            out[col] = np.where(bad, np.nan, values)
            found[col] = {
                "n": int(bad.sum()),
                "range": list(LABEL_RANGES[col]),
                "examples": [float(v) for v in np.unique(values[bad])[:3]],
            }
    return out, found


def describe_invalid(column: str, info: dict[str, Any], what: str = "left out") -> str:
    """One line such as ``3 rows with invalid lgm_tot_p50 (outside 5-13, e.g. -9999) left out``."""
    lo, hi = info["range"]
    eg = ", ".join(f"{v:g}" for v in info.get("examples", []))
    rows = "row" if info["n"] == 1 else "rows"
    return f"{info['n']} {rows} with invalid {column} (outside {lo:g}-{hi:g}{', e.g. ' + eg if eg else ''}) {what}"


def objid_array(values: Any, where: str = "catalog", column: str = OBJID) -> np.ndarray:
    """Exact int64 objIDs from a column of integers or integer strings.

    Parameters
    ----------
    values : array-like
        A pandas Series or array: integer dtype, strings of digits (optionally ``.0``), or
        floats only when every value is an integer below 2**53 (so no digit was lost).
    where : str
        The file or table named in error messages.

    Returns
    -------
    numpy.ndarray
        int64 (N,).

    Raises
    ------
    DataError
        One line naming the first row that is missing, not an integer, in scientific
        notation, out of the int64 range, or a float that cannot hold it exactly.
    """
    arr = np.asarray(values.to_numpy() if hasattr(values, "to_numpy") else values, dtype=object)
    kind = getattr(getattr(values, "dtype", None), "kind", None)
    if kind in ("i", "u") and not hasattr(getattr(values, "dtype", None), "na_value"):
        out = np.asarray(values)
        if out.dtype.kind == "u" and out.size and out.max() > _INT64_MAX:
            i = int(np.argmax(out > _INT64_MAX))
            raise DataError(f"{where}: row {i}: {column} {out[i]} is beyond the 64-bit integer range")
        return out.astype(np.int64)
    if len(arr) and all(isinstance(v, str) for v in arr):
        try:  # the common case, a column of digit strings, in one pass
            return np.fromiter((int(v) for v in arr), dtype=np.int64, count=len(arr))
        except (ValueError, OverflowError):
            pass  # the loop below names the first bad row
    result = np.empty(len(arr), dtype=np.int64)
    for i, v in enumerate(arr):
        result[i] = _one_objid(v, i, where, column)
    return result


def float_array(values: Any, where: str = "table", column: str = "value") -> np.ndarray:
    """float64 values of a numeric column; missing cells become NaN.

    Raises
    ------
    DataError
        One line naming the first row that holds something other than a number (text such as
        ``'abc'``, a boolean), rather than letting it turn silently into NaN.
    """
    import pandas as pd

    series = values if isinstance(values, pd.Series) else pd.Series(np.asarray(values, dtype=object))
    if series.dtype.kind in "fiu":
        return series.to_numpy(dtype=np.float64, na_value=np.nan)
    if series.dtype.kind == "b":
        raise DataError(f"{where}: column {column} holds booleans, expected numbers")
    num = pd.to_numeric(series, errors="coerce")
    for i in np.flatnonzero(num.isna().to_numpy() & series.notna().to_numpy()).tolist():
        v = series.iloc[i]
        if isinstance(v, (bool, np.bool_)) or (
            isinstance(v, str) and v.strip().lower() not in ("", "nan", "none", "null", "na", "<na>")
        ):
            raise DataError(f"{where}: row {i}: {column} {v!r} is not a number")
    return num.to_numpy(dtype=np.float64, na_value=np.nan)


def _one_objid(v: Any, i: int, where: str, column: str) -> int:
    def bad(why: str) -> DataError:
        return DataError(f"{where}: row {i}: {column} {v!r} {why}")

    if v is None or (isinstance(v, (float, np.floating)) and not np.isfinite(v)):
        raise bad("is missing")
    if isinstance(v, (bool, np.bool_)):
        raise bad("is not an integer")
    if isinstance(v, (int, np.integer)):
        n = int(v)
    elif isinstance(v, (float, np.floating)):
        if float(v) != int(v):
            raise bad("is not an integer")
        if abs(v) > _FLOAT_EXACT:
            raise bad(
                "is stored as a floating-point number, which has lost its last digits; "
                "write objIDs as integers (or text) in the file"
            )
        n = int(v)
    else:
        text = str(v).strip()
        if not text or text.lower() in ("nan", "none", "<na>", "null"):
            raise bad("is missing")
        if "e" in text.lower():
            raise bad("is in scientific notation, which has lost its last digits; write the full integer")
        try:
            d = Decimal(text)
        except InvalidOperation:
            raise bad("is not an integer") from None
        if not d.is_finite() or d != d.to_integral_value():  # "inf", "snan", "12.5"
            raise bad("is not an integer")
        n = int(d)
    if not _INT64_MIN <= n <= _INT64_MAX:
        raise bad("is beyond the 64-bit integer range")
    return n
