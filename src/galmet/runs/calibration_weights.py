"""Importance weights for weighted conformal calibration (``galmet calibrate --weights``).

The weights file is the table ``galmet domain-check TRAIN TARGET --out W`` writes: one row per
galaxy with its identity (``objID``, else ``file``), ``set`` (``train`` or ``target``) and
``importance_weight`` (``p_target / p_train`` of the domain classifier). The calibration rows take
the weights of their galaxies (joined by ``objID``, else ``file``; rows of set ``train`` first);
a new galaxy gets one ``test_weight``, by default the mean weight of the ``target`` rows.
"""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path

import numpy as np
import pandas as pd

from galmet.columns import FILE, OBJID
from galmet.errors import ConfigError, DataError
from galmet.io.tables import read_table, require_table_format

log = logging.getLogger(__name__)

#: The weight column of a ``galmet domain-check --out`` table.
WEIGHT = "importance_weight"
#: Its column naming each galaxy's set (``train`` / ``target``).
SET = "set"


def check_weight_options(weights, test_weight: float | None, cv_plus: str) -> str:
    """Check the weighting options before any read; the ``cv_plus`` to use.

    ConfigError (one line): ``test_weight`` not finite and > 0, or given without ``weights``; a
    ``weights`` path that is not a table file; ``cv_plus`` ``on`` with ``weights`` (weighted
    conformal is not combined with CV+). With ``weights``, ``cv_plus`` ``auto`` becomes ``off``.
    """
    if test_weight is not None and not (math.isfinite(float(test_weight)) and float(test_weight) > 0):
        raise ConfigError(f"test_weight must be finite and > 0, got {test_weight!r}", param="test_weight")
    if weights is None:
        if test_weight is not None:
            raise ConfigError("test_weight needs weights (a galmet domain-check --out table)", param="test_weight")
        return cv_plus
    require_table_format(weights, writing=False, param="weights")
    if not Path(weights).is_file():
        raise ConfigError(f"weights {weights}: file not found", param="weights")
    if cv_plus == "on":
        raise ConfigError("weights and cv_plus on: weighted calibration is not combined with CV+", param="cv_plus")
    if cv_plus == "auto":
        log.info("weights given: CV+ off (weighted calibration is not combined with CV+)")
    return "off"


def _read_weights(path: str | os.PathLike) -> pd.DataFrame:
    """The weights table; DataError (one line) without a weight column or with bad weights."""
    table = read_table(path)
    if WEIGHT not in table.columns or (OBJID not in table.columns and FILE not in table.columns):
        raise DataError(f"{path}: not a galmet domain-check table (needs {WEIGHT!r} and {OBJID!r} or {FILE!r})")
    w = pd.to_numeric(table[WEIGHT], errors="coerce").to_numpy(dtype=float)
    bad = int((~(np.isfinite(w) & (w > 0))).sum())
    if bad:
        raise DataError(f"{path}: {bad} importance weights are not finite and > 0")
    return table.assign(**{WEIGHT: w})


def _key(df: pd.DataFrame, table: pd.DataFrame, path) -> str:
    for key in (OBJID, FILE):
        if key in df.columns and key in table.columns:
            return key
    raise DataError(f"{path}: no objID or file column shared with the calibration rows to join the weights by")


def _test_weight(table: pd.DataFrame, path) -> float:
    """The mean importance weight of the target rows; ConfigError (one line) without a set column."""
    if SET not in table.columns or not (table[SET] == "target").any():
        raise ConfigError(
            f"{path}: no rows of set 'target' to take the test weight from; give test_weight", param="test_weight"
        )
    return float(table.loc[table[SET] == "target", WEIGHT].mean())


def calibration_weights(
    path: str | os.PathLike, rows: pd.DataFrame, test_weight: float | None = None
) -> tuple[np.ndarray, float]:
    """The importance weight of each calibration row and the test weight.

    Parameters
    ----------
    path : path-like
        A ``galmet domain-check --out`` table.
    rows : pandas.DataFrame
        The calibration rows (with ``objID`` or ``file``).
    test_weight : float, optional
        The weight of a new galaxy (default: the mean weight of the file's ``target`` rows).

    Returns
    -------
    (numpy.ndarray, float)
        Weights float64 (len(rows),), > 0, and the test weight.

    Raises
    ------
    DataError
        One line naming ``path``: a calibration row without a weight (with the count), bad weights,
        no shared key column.
    ConfigError
        No ``test_weight`` and no ``target`` rows to take it from.
    """
    table = _read_weights(path)
    key = _key(rows, table, path)
    if SET in table.columns:  # a galaxy in both sets: its training-side weight
        table = table.sort_values(SET, key=lambda s: s != "train", kind="stable")
    lookup = table.drop_duplicates(key).set_index(key)[WEIGHT]
    w = rows[key].map(lookup).to_numpy(dtype=float)
    missing = int(np.isnan(w).sum())
    if missing:
        raise DataError(f"{path}: no importance weight for {missing} of {len(rows)} calibration rows (by {key})")
    t = float(test_weight) if test_weight is not None else _test_weight(table, path)
    log.info("weighted calibration: %d rows, weights %.3g..%.3g, test weight %.4g", len(w), w.min(), w.max(), t)
    return w, t
