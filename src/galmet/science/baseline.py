"""Photometric baselines: a random forest on magnitudes and the constant-mean predictor.

The paper compares its CNN with a scikit-learn random forest trained on the gri magnitudes
(test RMSE 0.130 dex; Acquaviva 2016 used ugriz) and with predicting the training mean
for every galaxy (the worst case). Both are trained on train + valid and scored on test.

Features are the ``modelMag_<band>`` columns of the catalog (AB magnitudes), as they are:
a forest is invariant to monotonic rescaling, so no normalisation is needed.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd

from galmet.columns import PASSTHROUGH, spread_column
from galmet.errors import ConfigError, DataError

log = logging.getLogger(__name__)

ALL_BANDS = "ugriz"


@dataclass
class ForestConfig:
    """Random-forest settings (scikit-learn ``RandomForestRegressor``).

    Attributes
    ----------
    n_estimators : int
        Number of trees.
    min_samples_leaf : int
        Smallest leaf; 5 keeps single noisy galaxies from forming their own leaves.
    seed : int
        ``random_state`` of the forest (bootstrap and feature draws).
    n_jobs : int
        Worker processes for fitting and prediction (-1: all cores).
    """

    n_estimators: int = 200
    min_samples_leaf: int = 5
    seed: int = 0
    n_jobs: int = -1


def parse_bands(bands: str) -> str:
    """Validate a band string such as ``gri`` or ``ugriz`` (letters of ugriz, no repeats)."""
    b = str(bands).strip().lower()
    if not b or any(c not in ALL_BANDS for c in b) or len(set(b)) != len(b):
        raise ConfigError(f"--bands must be letters of 'ugriz' without repeats (e.g. gri or ugriz), got {bands!r}")
    return b


def magnitude_features(catalog: pd.DataFrame, bands: str, where: str = "catalog") -> np.ndarray:
    """The ``modelMag_<band>`` columns as float (N, len(bands)); DataError naming a missing/NaN column."""
    cols = [f"modelMag_{b}" for b in parse_bands(bands)]
    missing = [c for c in cols if c not in catalog.columns]
    if missing:
        raise DataError(f"{where}: no magnitude column {missing[0]!r} (the random forest needs {', '.join(cols)})")
    X = catalog[cols].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float)
    bad = ~np.isfinite(X)
    if bad.any():
        i, j = np.argwhere(bad)[0]
        who = f"objID {catalog['objID'].iloc[i]}" if "objID" in catalog.columns else f"row {i}"
        raise DataError(f"{where}: {who}: {cols[j]} is not a finite number")
    return X


def _frame(catalog: pd.DataFrame, target: str, pred: np.ndarray, std: np.ndarray) -> pd.DataFrame:
    keys = [c for c in ("objID", "file") if c in catalog.columns]
    out = catalog[keys].copy()
    out["split"] = catalog["split"].to_numpy()
    out[f"{target}_pred"] = pred.astype(np.float32)
    out[spread_column(target)] = std.astype(np.float32)
    for c in (target, *PASSTHROUGH):
        if c in catalog.columns and c not in out.columns:
            out[c] = catalog[c].to_numpy()
    return out


def _split_rows(catalog: pd.DataFrame, where: str) -> tuple[np.ndarray, np.ndarray]:
    split = catalog["split"].astype(str).to_numpy()
    fit = np.flatnonzero(np.isin(split, ["train", "valid"]))
    test = np.flatnonzero(split == "test")
    if len(fit) < 2:
        raise DataError(f"{where}: need at least 2 train/valid rows to fit a baseline, found {len(fit)}")
    if len(test) == 0:
        raise DataError(f"{where}: no test rows to score the baseline on (split column has no 'test')")
    return fit, test


def constant_baseline(catalog: pd.DataFrame, target: str = "oh_p50", where: str = "catalog") -> pd.DataFrame:
    """Predict the train+valid mean of ``target`` for every row; ``_spread`` is the train+valid std."""
    fit, _ = _split_rows(catalog, where)
    y = catalog[target].to_numpy(dtype=float)[fit]
    n = len(catalog)
    return _frame(catalog, target, np.full(n, np.mean(y)), np.full(n, np.std(y)))


def random_forest_baseline(
    catalog: pd.DataFrame,
    bands: str = "gri",
    target: str = "oh_p50",
    config: ForestConfig | None = None,
    where: str = "catalog",
) -> pd.DataFrame:
    """Fit a random forest on train+valid magnitudes; predict every row.

    Returns
    -------
    pandas.DataFrame
        A predictions table: ``objID``, ``split``, ``<target>_pred``, ``<target>_spread``
        (spread of the individual trees, dex), the truth and pass-through columns.
    """
    from sklearn.ensemble import RandomForestRegressor

    config = config or ForestConfig()
    X = magnitude_features(catalog, bands, where)
    y = catalog[target].to_numpy(dtype=float)
    fit, _ = _split_rows(catalog, where)
    if not np.isfinite(y[fit]).all():
        i = fit[np.flatnonzero(~np.isfinite(y[fit]))[0]]
        raise DataError(f"{where}: row {i}: label {target} is NaN")
    rf = RandomForestRegressor(
        n_estimators=config.n_estimators,
        min_samples_leaf=config.min_samples_leaf,
        random_state=config.seed,
        n_jobs=config.n_jobs,
    )
    t0 = time.perf_counter()
    rf.fit(X[fit], y[fit])
    log.info("random forest on %s fitted to %d galaxies in %.1f s", bands, len(fit), time.perf_counter() - t0)
    per_tree = np.stack([tree.predict(X) for tree in rf.estimators_])
    return _frame(catalog, target, per_tree.mean(axis=0), per_tree.std(axis=0))
