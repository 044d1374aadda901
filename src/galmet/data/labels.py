"""The label rules, and the one reader every command applies them with.

A *truth* (a label in a catalogue, the ``<target>`` column of a predictions table) is usable when
it is a finite number inside its column's :data:`galmet.columns.LABEL_RANGES` range. A column
without a known range takes any finite number except a missing-value sentinel
(:data:`SENTINELS`, what SDSS and MPA-JHU write for "none") or a fill value (:data:`FILL_ABOVE`
or more in magnitude). Everything else is not a label:

- ``missing``: an empty cell, NaN, None;
- ``invalid``: infinite, a sentinel, a fill value, outside the range (MPA-JHU's -9999);
- text that is not a number (``"abc"``), a boolean: the table is malformed, and every command
  refuses it with one line naming the row and the column (:func:`truth_array`).

What a command does with missing and invalid truths is one of two policies, the same everywhere:

- commands that *fit* to truths (``train``, ``train --folds``, ``lr-find``, ``resolution-study``,
  ``baseline``) read them through :func:`galmet.data.dataset.load_dataset`: refused (one line
  naming the objID, file, column and value), or dropped and counted with ``on_error="skip"``;
  ``explain --controls`` (it scores every galaxy) refuses them too (:func:`usable_truths`);
- commands that *score or calibrate* against truths (``evaluate``, ``systematics``, ``figures``,
  ``mzr``, ``report``, ``calibrate``) keep the rows whose truth is usable (:func:`usable_rows`)
  and say how many they left out and why (a warning, and ``excluded`` in their JSON).

A *predicted* value (the ``<target>_pred`` column beside a truth) that is missing, not finite,
a sentinel or a fill value (a -9999 written by another tool: :func:`invalid_prediction_mask`)
leaves its row out of the scoring and calibrating commands, counted under ``<target>_pred``. A
finite prediction outside the target's plausible range stays in (leaving it out would hide a
model's worst errors from its scores); a warning counts such predictions.

Neither ever uses such a value as a number.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd

from galmet.columns import LABEL_RANGES, float_array, pred_column
from galmet.errors import DataError

#: Missing-value sentinels (SDSS, MPA-JHU): never a label, in any column.
SENTINELS = (-9999.0, -999.0)
#: Values this large in magnitude (1e20, 1e30, float32's maximum) are fill values, never a label.
FILL_ABOVE = 1e20

log = logging.getLogger(__name__)


def invalid_label_mask(column: str, values) -> np.ndarray:
    """Which ``values`` of ``column`` are present but not a label.

    Parameters
    ----------
    column : str
        Column name; its :data:`~galmet.columns.LABEL_RANGES` range when it has one.
    values : array-like, shape (N,)
        Numbers (NaN counts as missing, not invalid).

    Returns
    -------
    numpy.ndarray
        bool (N,): True where a value is infinite, outside the column's range, or (a column
        without a range) a sentinel (:data:`SENTINELS`) or a fill value (:data:`FILL_ABOVE`).
    """
    v = np.asarray(values, dtype=float)
    with np.errstate(invalid="ignore"):
        bad = np.isinf(v)
        if column in LABEL_RANGES:
            lo, hi = LABEL_RANGES[column]
            return bad | (np.isfinite(v) & ((v < lo) | (v > hi)))
        return bad | np.isin(v, SENTINELS) | (np.isfinite(v) & (np.abs(v) >= FILL_ABOVE))


def invalid_prediction_mask(values) -> np.ndarray:
    """bool (N,): True where a predicted value is no prediction at all: infinite, a sentinel
    (:data:`SENTINELS`) or a fill value (:data:`FILL_ABOVE`). Unlike a truth, a finite prediction
    outside the plausible range is a (bad) prediction, and is scored."""
    v = np.asarray(values, dtype=float)
    with np.errstate(invalid="ignore"):
        return np.isinf(v) | np.isin(v, SENTINELS) | (np.isfinite(v) & (np.abs(v) >= FILL_ABOVE))


def truth_array(table: pd.DataFrame, column: str, where: str = "table") -> np.ndarray:
    """float64 (N,) values of the truth column ``column`` of ``table``, missing cells NaN.

    Raises
    ------
    DataError
        One line naming the row and the column for a cell that holds text that is not a number
        or a boolean (:func:`galmet.columns.float_array`).
    """
    return float_array(table[column], where, column)


def usable_truths(table: pd.DataFrame, column: str, where: str = "table") -> tuple[np.ndarray, int]:
    """float64 (N,) truths of ``column`` with every value that is not a label set to NaN, and how
    many present values were not labels (:func:`invalid_label_mask`); text refused
    (:func:`truth_array`)."""
    values = truth_array(table, column, where)
    bad = invalid_label_mask(column, values)
    return np.where(bad, np.nan, values), int(bad.sum())


def mask_invalid_labels(table, columns=None, where: str = "table") -> tuple[Any, dict[str, dict[str, Any]]]:
    """A copy of ``table`` with the invalid values of its truth columns set to NaN.

    Parameters
    ----------
    table : pandas.DataFrame
        Any table (predictions, catalogue, joined analysis table).
    columns : sequence of str, optional
        Columns to check; default: every column of ``table`` with a :data:`LABEL_RANGES` entry.
    where : str
        Names the table in the error for a cell that is not a number.

    Returns
    -------
    (pandas.DataFrame, dict)
        The table (the same object when nothing was invalid) and, for each column with invalid
        values, ``{"n": count, "range": [lo, hi] (when known), "examples": up to 3 distinct bad values}``.
    """
    wanted = columns if columns is not None else [c for c in table.columns if c in LABEL_RANGES]
    names = [c for c in wanted if c in table]
    found: dict[str, dict[str, Any]] = {}
    out = table
    for col in names:
        values = truth_array(out, col, where)
        bad = invalid_label_mask(col, values)
        if bad.any():
            if out is table:
                out = table.copy()
            out[col] = np.where(bad, np.nan, values)
            found[col] = {"n": int(bad.sum()), **_range_info(col, values[bad])}
    return out, found


def _range_info(column: str, bad_values: np.ndarray) -> dict[str, Any]:
    info: dict[str, Any] = {"examples": [float(v) for v in np.unique(bad_values)[:3]]}
    if column in LABEL_RANGES:
        info["range"] = list(LABEL_RANGES[column])
    return info


def describe_invalid(column: str, info: dict[str, Any], what: str = "left out") -> str:
    """One line such as ``3 rows with invalid lgm_tot_p50 (outside 5-13, e.g. -9999) left out``."""
    eg = ", ".join(f"{v:g}" for v in info.get("examples", []))
    if "range" in info:
        lo, hi = info["range"]
        why = f"outside {lo:g}-{hi:g}{', e.g. ' + eg if eg else ''}"
    else:
        why = f"infinite, a sentinel or a fill value{', e.g. ' + eg if eg else ''}"
    rows = "row" if info["n"] == 1 else "rows"
    return f"{info['n']} {rows} with invalid {column} ({why}) {what}"


def _warn_implausible(col: str, rule: str, values: np.ndarray, where: str) -> None:
    """Log how many finite predictions in ``col`` lie outside ``rule``'s plausible range (kept)."""
    outside = invalid_label_mask(rule, values) & np.isfinite(values)
    if outside.any() and rule in LABEL_RANGES:
        lo, hi = LABEL_RANGES[rule]
        log.warning(
            "%s: %d predictions in %s lie outside the plausible range [%g, %g] of %s; they are scored as they are",
            where,
            int(outside.sum()),
            col,
            lo,
            hi,
            rule,
        )


def usable_rows(df: pd.DataFrame, columns, where: str = "predictions") -> tuple[pd.DataFrame, dict]:
    """The rows of ``df`` whose ``columns`` all hold a usable truth, and what was left out.

    The reader of every command that scores or calibrates against truths (see the module
    docstring). The prediction column of each of ``columns`` (``<column>_pred``), when ``df``
    has it, must hold a prediction (:func:`invalid_prediction_mask`); one outside the plausible
    range is kept, with a warning. Other range-checked
    columns of ``df`` that are carried along (not in ``columns``) keep their rows but have their
    invalid values set to NaN.

    Parameters
    ----------
    df : pandas.DataFrame
        A predictions or analysis table.
    columns : sequence of str
        The truth columns an analysis needs (e.g. ``["oh_p50"]``, or Z and the mass for the MZR).
    where : str
        Names the table in errors.

    Returns
    -------
    (pandas.DataFrame, dict)
        The kept rows (index reset, the truth columns float64) and, per column with rows left
        out, ``{"missing": m, "invalid": n, "range": [lo, hi] (when known), "examples": bad
        values}``; empty when nothing was left out. A row can count under several columns.

    Raises
    ------
    DataError
        A truth cell that is not a number (naming the row and column), or no row left (naming
        how many were missing or invalid).
    """
    keep = np.ones(len(df), dtype=bool)
    excluded: dict[str, dict[str, Any]] = {}
    parsed = {}
    checked = [(col, col) for col in columns] + [(pred_column(c), c) for c in columns if pred_column(c) in df.columns]
    for col, rule in checked:  # a prediction counts under its own name; only non-predictions leave
        values = parsed[col] = truth_array(df, col, where)
        invalid = invalid_label_mask(rule, values) if col == rule else invalid_prediction_mask(values)
        if col != rule:
            _warn_implausible(col, rule, values[~invalid], where)
        missing = np.isnan(values)
        if invalid.any() or missing.any():
            excluded[col] = {
                "missing": int(missing.sum()),
                "invalid": int(invalid.sum()),
                **_range_info(rule, values[invalid]),
            }
        keep &= ~(invalid | missing)
    if not keep.any():
        why = "; ".join(describe_exclusions(excluded)) or "no rows"
        raise DataError(f"{where}: no row has a valid {', '.join(c for c, _ in checked)} ({why})")
    kept = df[keep].reset_index(drop=True)
    for col, values in parsed.items():
        kept[col] = values[keep]
    kept, _ = mask_invalid_labels(kept, [c for c in kept.columns if c in LABEL_RANGES and c not in columns], where)
    return kept, excluded


def describe_exclusions(excluded: dict) -> list[str]:
    """Lines such as ``3 rows with invalid lgm_tot_p50 (outside 5-13, e.g. -9999) left out`` for
    the ``excluded`` dict of :func:`usable_rows`."""
    lines = []
    for col, info in excluded.items():
        if info.get("invalid"):
            lines.append(describe_invalid(col, {"n": info["invalid"], **info}, "left out"))
        if info.get("missing"):
            rows = "row" if info["missing"] == 1 else "rows"
            lines.append(f"{info['missing']} {rows} without {col} left out")
    return lines


def label_problem(column: str, value: float, raw: Any = None) -> str | None:
    """What is wrong with one truth ``value`` of ``column`` (its cell ``raw`` as read), or None
    when it is a label: ``is NaN (missing)``, ``is infinite (inf)``, ``'abc' is not a number``,
    ``= -9999 is outside 7-10``, ``= -9999 is a missing-value sentinel``."""
    if isinstance(raw, (bool, np.bool_)) or (
        isinstance(raw, str)
        and np.isnan(value)
        and raw.strip().lower() not in ("", "nan", "none", "null", "na", "<na>")
    ):
        return f"{raw!r} is not a number"
    if np.isnan(value):
        return "is NaN (missing)"
    if not invalid_label_mask(column, [value])[0]:
        return None
    if np.isinf(value):
        return f"is infinite ({value})"
    if column in LABEL_RANGES:
        lo, hi = LABEL_RANGES[column]
        return f"= {value:g} is outside {lo:g}-{hi:g}"
    return f"= {value:g} is a missing-value sentinel or fill value"


def no_truth(df: pd.DataFrame, target: str) -> str:
    """Why ``df`` has no truth of ``target``: ``no truth column 'oh_p50'`` when the column is
    absent, ``the truth column 'oh_p50' is missing (empty or NaN) in all 48 rows`` when it is there
    but holds nothing."""
    if target not in df.columns:
        return f"no truth column {target!r}"
    return f"the truth column {target!r} is missing (empty or NaN) in all {len(df)} rows"
