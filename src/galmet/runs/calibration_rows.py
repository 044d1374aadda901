"""Which rows may calibrate a model, and which rows ``galmet evaluate`` may score.

- :func:`calibration_rows`: the rows of a predictions table that ``galmet calibrate`` fits on:
  the asked-for split, without every galaxy that trained a network of the model (from the
  bundle's ``trained_on`` hashes, whatever the table's ``split`` column says), and refusing test
  rows unless explicitly allowed (``evaluate`` scores coverage on them).
- :func:`calibration_source`: the calibration's provenance with the galaxies it was fitted on
  (``calibrated_on``), which the bundle keeps.
- :func:`leave_out_seen`: the rows of a predictions table the model did not see (its ``seen``
  column empty), for ``galmet evaluate``.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd

from galmet.columns import SEEN, SPLIT
from galmet.data.galaxy_ids import GalaxyIdSet, key_hashes, row_keys
from galmet.errors import ConfigError, DataError
from galmet.nn.bundle_meta import MetaKey
from galmet.predict.seen import trained_sets
from galmet.science.metrics import select_split

log = logging.getLogger(__name__)

#: ``attrs`` key of :func:`calibration_rows`' result: how many training sets were checked.
TRAINED_SETS = "trained_sets"


def _refuse_test_rows(df: pd.DataFrame, where: str, allow_test: bool) -> None:
    """ConfigError (one line, param ``split``) when ``df`` holds rows of split test."""
    if SPLIT not in df.columns:
        return
    n_test = int((df[SPLIT].astype(str) == "test").sum())
    if n_test and not allow_test:
        raise ConfigError(
            f"{where}: {n_test} rows of split test: evaluate scores the model on them, so they may not calibrate it; "
            "calibrate on valid rows, or pass allow_test (the test scores are then not held-out)",
            param=("split", "allow_test"),
        )
    if n_test:
        log.warning("%s: calibrating on %d test rows (allowed): coverage scored on them is not held-out", where, n_test)


def _trained_mask(model, df: pd.DataFrame, where: str, sets: list[GalaxyIdSet], per_fold: bool) -> np.ndarray:
    """bool (N,): the rows whose galaxy trained the model (with ``per_fold``: trained the fold
    member that predicted the row, its ``fold`` column indexing the members)."""
    keys = row_keys(df)
    if keys is None:
        raise DataError(
            f"{where}: no objID or file column: cannot tell which rows trained {model.path}; "
            "calibrate on a table galmet predict wrote"
        )
    h = key_hashes(keys)
    if not per_fold:
        return np.any([s.contains_hashes(h) for s in sets], axis=0)
    if "fold" not in df.columns:
        raise DataError(f"{where}: no fold column: not out-of-fold predictions")
    fold = pd.to_numeric(df["fold"], errors="coerce").to_numpy(dtype=float)
    if not (np.isfinite(fold).all() and set(np.unique(fold)) <= set(range(len(sets)))):
        raise DataError(f"{where}: fold values must be 0 to {len(sets) - 1}, one per member of {model.path}")
    out = np.zeros(len(df), dtype=bool)
    for k, s in enumerate(sets):
        mine = fold == k
        out[mine] = s.contains_hashes(h[mine])
    return out


def calibration_rows(
    model,
    table: pd.DataFrame,
    where: str,
    *,
    split: str | None,
    allow_test: bool = False,
    per_fold: bool = False,
) -> pd.DataFrame:
    """The rows of ``table`` that may calibrate ``model``.

    Parameters
    ----------
    model : galmet.nn.inference.GalmetModel
        The model to calibrate (its members' ``trained_on`` records).
    table : pandas.DataFrame
        Its predictions, with ``objID`` or ``file`` (and ``split``, ``fold`` when present).
    where : str
        The table's file, for messages.
    split : str or None
        Rows of this split (None or ``"all"``: every row; a table without a ``split`` column:
        every row).
    allow_test : bool
        Accept rows of split test (refused by default: ``evaluate`` scores coverage on them).
    per_fold : bool
        Out-of-fold rows of a k-fold run (CV+): a row is dropped only when it trained the fold
        member that predicted it (``fold`` k: member k); otherwise when it trained any member.

    Returns
    -------
    pandas.DataFrame
        The kept rows (index reset); ``attrs["trained_sets"]``: how many members' training sets
        were checked (0 for a bundle without the records: only the split rule applied).

    Raises
    ------
    ConfigError
        Test rows without ``allow_test`` (``param`` ``split``).
    DataError
        One line naming ``where``: no row left once the training galaxies are out, no row key.
    """
    df = select_split(table, split)
    _refuse_test_rows(df, where, allow_test)
    sets = trained_sets(model)
    if sets is None:
        log.warning(
            "%s: %s does not record the galaxies it trained on (an older bundle): training rows cannot be "
            "checked; only the split rule applies",
            where,
            model.path or "the model",
        )
        df.attrs[TRAINED_SETS] = 0
        return df
    if SPLIT not in table.columns:
        log.info("%s: no split column: every row the model did not train on calibrates it (bundle trained_on)", where)
    trained = _trained_mask(model, df, where, sets, per_fold)
    if trained.all():
        of_split = f" of split {split}" if split and SPLIT in df else ""
        raise DataError(
            f"{where}: all {len(df)} rows{of_split} are galaxies {model.path} trained on: "
            "nothing to calibrate on; calibrate on galaxies it did not train on"
            + (" (out-of-fold rows trained the other fold models of an ensemble)" if "fold" in df.columns else "")
        )
    if trained.any():
        log.info("%s: left out %d of %d rows: galaxies the model trained on", where, int(trained.sum()), len(df))
    kept = df[~trained].reset_index(drop=True)
    kept.attrs[TRAINED_SETS] = len(sets)
    return kept


def calibration_source(rows: pd.DataFrame, base_source: dict[str, Any]) -> dict[str, Any]:
    """``base_source`` with ``calibrated_on`` (the :class:`GalaxyIdSet` of ``rows``' galaxies,
    as a dict; absent when the rows have no key) and ``trained_sets`` (from
    :func:`calibration_rows`)."""
    out = dict(base_source)
    keys = row_keys(rows)
    if keys is not None:
        out[MetaKey.CALIBRATED_ON] = GalaxyIdSet.of(keys, "calibration").to_dict()
    out[TRAINED_SETS] = int(rows.attrs.get(TRAINED_SETS, 0))
    return out


def leave_out_seen(df: pd.DataFrame, include_seen: bool = False, where: str = "predictions") -> pd.DataFrame:
    """``df`` without the rows whose ``seen`` column is not empty (galaxies that trained or
    calibrated the model: their scores are not held-out), saying how many in one line; all
    rows with ``include_seen`` or without the column."""
    if SEEN not in df.columns:
        return df
    seen = df[SEEN].fillna("").astype(str).str.strip().to_numpy() != ""
    if not seen.any():
        return df
    if include_seen:
        log.warning("%s: scoring %d rows the model trained on or was calibrated on (include_seen)", where, seen.sum())
        return df
    if seen.all():
        raise DataError(
            f"{where}: all {len(df)} rows are galaxies the model trained on or was calibrated on (column {SEEN}): "
            "nothing held-out to score; pass include_seen to score them anyway",
            param="include_seen",
        )
    counts = pd.Series(df[SEEN].to_numpy()[seen]).value_counts()
    what = ", ".join(f"{n} {k}" for k, n in counts.items())
    log.warning(
        "%s: left out %d rows the model saw (seen: %s): not held-out; --include-seen scores them",
        where,
        int(seen.sum()),
        what,
    )
    out = df[~seen].reset_index(drop=True)
    out.attrs = dict(df.attrs)
    return out
