"""Which galaxies a model has seen: the ``seen`` column of a predictions table.

A bundle records the galaxies that trained each of its networks (meta ``trained_on``, per member)
and those its calibration was fitted on (``calibrated_on`` in each calibration's ``source``), as
:class:`~galmet.data.galaxy_ids.GalaxyIdSet` hashes of their keys (decimal objID, else the
image file name). :func:`seen_column` marks the rows of a table whose galaxy is among them:
``train`` (trained a network; wins over calibration), ``calibration``, or ``""`` (held-out: the
only rows whose scores and coverage are honest).

Numpy and pandas only (the model is read through its ``members`` and ``calibrations``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from galmet.columns import SEEN_CALIBRATION, SEEN_TRAIN
from galmet.data.galaxy_ids import GalaxyIdSet, key_hashes, row_keys
from galmet.nn.bundle_meta import MetaKey


def trained_sets(model) -> list[GalaxyIdSet] | None:
    """The galaxies each member of ``model`` trained on, in member order; None when any member
    lacks the record (a bundle written before galmet stored it)."""
    records = [m.get(MetaKey.TRAINED_ON) for m in model.members]
    if not records or any(r is None for r in records):
        return None
    return [GalaxyIdSet.from_dict(r, f"{model.path}: bundle meta {MetaKey.TRAINED_ON}") for r in records]


def calibrated_set(model) -> GalaxyIdSet | None:
    """The galaxies any of ``model``'s calibrations was fitted on; None when none records them."""
    sets = []
    for target, cal in model.calibrations.items():
        record = (cal.source or {}).get(MetaKey.CALIBRATED_ON)
        if record is not None:
            where = f"{model.path}: calibration of {target} {MetaKey.CALIBRATED_ON}"
            sets.append(GalaxyIdSet.from_dict(record, where))
    return GalaxyIdSet.union(sets, SEEN_CALIBRATION) if sets else None


def seen_column(model, table: pd.DataFrame) -> np.ndarray:
    """object (N,): ``"train"`` for the rows of ``table`` whose galaxy trained ``model`` (any
    member), ``"calibration"`` for those that calibrated it, ``""`` otherwise (also for every
    row of a table without ``objID`` / ``file``, or of a bundle without the records)."""
    out = np.full(len(table), "", dtype=object)
    keys = row_keys(table)
    if keys is None or not len(table):
        return out
    h = key_hashes(keys)
    cal = calibrated_set(model)
    if cal is not None:
        out[cal.contains_hashes(h)] = SEEN_CALIBRATION
    for s in trained_sets(model) or []:
        out[s.contains_hashes(h)] = SEEN_TRAIN
    return out
