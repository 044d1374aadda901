"""Photometric baselines: a random forest on magnitudes and the constant-mean predictor.

The paper compares its CNN with a scikit-learn random forest trained on the gri magnitudes
(test RMSE 0.130 dex; Acquaviva 2016 used ugriz) and with predicting the training mean
for every galaxy (the worst case). Both are trained on train + valid and scored on test.
The forest's defaults are the authors' (their notebook, after Acquaviva 2016): 40 trees,
``min_samples_leaf=8``, every feature considered at every split.

Features are the ``modelMag_<band>`` columns of the catalog (AB magnitudes), as they are:
a forest is invariant to monotonic rescaling, so no normalisation is needed.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd

from galmet._optional import require
from galmet.columns import PASSTHROUGH, spread_column
from galmet.data.labels import describe_invalid, mask_invalid_labels
from galmet.errors import ConfigError, DataError
from galmet.synthetic.physics import IMAGE_OBSERVABLES

log = logging.getLogger(__name__)

ALL_BANDS = "ugriz"


@dataclass
class ForestConfig:
    """Random-forest settings (scikit-learn ``RandomForestRegressor``).

    Attributes
    ----------
    n_estimators : int
        Number of trees (the authors': 40).
    min_samples_leaf : int
        Smallest leaf (the authors': 8); keeps single noisy galaxies from forming their own leaves.
    seed : int
        ``random_state`` of the forest (bootstrap and feature draws).
    n_jobs : int
        Worker processes for fitting and prediction (-1: all cores).
    """

    n_estimators: int = 40
    min_samples_leaf: int = 8
    seed: int = 0
    n_jobs: int = -1


def require_sklearn():
    """``sklearn.ensemble``, or a one-line ConfigError naming the ``analysis`` extra."""
    return require("sklearn.ensemble", "analysis", "the baselines")


def parse_bands(bands: str) -> str:
    """Validate a band string such as ``gri`` or ``ugriz`` (letters of ugriz, no repeats)."""
    b = str(bands).strip().lower()
    if not b or any(c not in ALL_BANDS for c in b) or len(set(b)) != len(b):
        raise ConfigError(
            f"bands must be letters of 'ugriz' without repeats (e.g. gri or ugriz), got {bands!r}", param="bands"
        )
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
    out, invalid = mask_invalid_labels(out)  # a -9999 mass is carried as missing, not as a number
    for col, info in invalid.items():
        log.warning("baseline predictions: %s", describe_invalid(col, info, "written as missing (NaN)"))
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
    RandomForestRegressor = require_sklearn().RandomForestRegressor

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
        max_features=1.0,  # every feature at every split, as the authors (and Acquaviva 2016)
        random_state=config.seed,
        n_jobs=config.n_jobs,
    )
    t0 = time.perf_counter()
    rf.fit(X[fit], y[fit])
    log.info("random forest on %s fitted to %d galaxies in %.1f s", bands, len(fit), time.perf_counter() - t0)
    per_tree = np.stack([tree.predict(X) for tree in rf.estimators_])
    return _frame(catalog, target, per_tree.mean(axis=0), per_tree.std(axis=0))


def out_of_sample_forest(
    catalog: pd.DataFrame,
    bands: str = "gri",
    target: str = "oh_p50",
    config: ForestConfig | None = None,
    rows=None,
    folds: int = 5,
    where: str = "catalog",
) -> np.ndarray:
    """Random-forest predictions of ``target`` for the rows of ``catalog``, each from a forest that
    never saw that galaxy, so an analysis can use every galaxy and not only the test rows.

    A row is a fit row when it is ``train`` or ``valid`` with finite magnitudes and a label in
    range (:data:`galmet.columns.LABEL_RANGES`). Every other row with finite magnitudes (``test``
    rows, rows without a label) is predicted by the forest fitted on all fit rows, as
    :func:`random_forest_baseline` does; fit rows are predicted out of fold (``folds`` forests,
    each fitted on the other fit rows), only when ``rows`` asks for one of them.

    Parameters
    ----------
    catalog : pandas.DataFrame
        ``modelMag_<band>`` columns, ``target`` and ``split``.
    rows : array-like of bool, shape (N,), optional
        The rows wanted (default: all); the out-of-fold forests are fitted only when a wanted row
        is a fit row.

    Returns
    -------
    numpy.ndarray
        float64 (N,): the prediction (dex), NaN for a row that is not wanted or has a missing or
        non-finite magnitude.

    Raises
    ------
    DataError
        A magnitude column is missing, or fewer than ``2 * folds`` rows can be fitted.
    """
    from galmet.data.labels import invalid_label_mask

    RandomForestRegressor = require_sklearn().RandomForestRegressor
    config = config or ForestConfig()
    cols = [f"modelMag_{b}" for b in parse_bands(bands)]
    missing = [c for c in cols if c not in catalog.columns]
    if missing:
        raise DataError(f"{where}: no magnitude column {missing[0]!r} (the random forest needs {', '.join(cols)})")
    X = catalog[cols].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float)
    y = pd.to_numeric(catalog[target], errors="coerce").to_numpy(dtype=float, copy=True)
    y[invalid_label_mask(target, y)] = np.nan
    split = catalog["split"].astype(str).to_numpy() if "split" in catalog.columns else np.full(len(catalog), "")
    has_x = np.isfinite(X).all(axis=1)
    fit = has_x & np.isfinite(y) & np.isin(split, ["train", "valid"])
    if fit.sum() < 2 * folds:
        raise DataError(
            f"{where}: {int(fit.sum())} train/valid rows with magnitudes and a label; the forest needs {2 * folds}"
        )
    wanted = np.ones(len(catalog), bool) if rows is None else np.asarray(rows, dtype=bool)

    def forest(x, t):
        kw = {"n_estimators": config.n_estimators, "min_samples_leaf": config.min_samples_leaf, "max_features": 1.0}
        return RandomForestRegressor(**kw, random_state=config.seed, n_jobs=config.n_jobs).fit(x, t)

    pred = np.full(len(catalog), np.nan)
    rest = wanted & has_x & ~fit
    if rest.any():
        pred[rest] = forest(X[fit], y[fit]).predict(X[rest])
    if (wanted & fit).any():
        idx = np.flatnonzero(fit)
        fold = np.random.default_rng(config.seed).permutation(len(idx)) % folds
        for k in range(folds):
            out = idx[fold == k]
            pred[out] = forest(X[idx[fold != k]], y[idx[fold != k]]).predict(X[out])
    pred[~wanted] = np.nan
    return pred


#: Latent column of a synthetic catalogue holding the part of Z no image can predict (dex).
UNEXPLAINED = "oh_unexplained"


def has_image_observables(catalog: pd.DataFrame) -> bool:
    """True for a synthetic catalogue (``galmet synth``) with every column of
    :data:`galmet.synthetic.physics.IMAGE_OBSERVABLES`."""
    return all(c in catalog.columns for c in IMAGE_OBSERVABLES)


def observable_oracle(
    catalog: pd.DataFrame, target: str = "oh_p50", seed: int = 0, where: str = "catalog"
) -> pd.DataFrame:
    """The "observable oracle" of a synthetic set: a regressor on what its images show.

    A scikit-learn ``HistGradientBoostingRegressor`` (300 iterations, learning rate 0.05, no early
    stopping: deterministic) fitted on the train + valid rows to the latent quantities an image
    reveals without its redshift (:data:`galmet.synthetic.physics.IMAGE_OBSERVABLES`: gri
    magnitudes, apparent sizes, inclination, bulge fraction, clumpiness). It is a practical floor
    beside the stated noise floor: the noise floor assumes the true mass, sSFR offset, inclination
    and size offset are known exactly, which an image cannot give (no distance), so it is a lower
    bound no image model reaches; the oracle shows what these observables allow, with this
    training set.

    Returns
    -------
    pandas.DataFrame
        A predictions table like :func:`random_forest_baseline`'s (``_spread`` is NaN).

    Raises
    ------
    DataError
        The catalogue lacks an observable (it is not a synthetic set), or a label is NaN.
    """
    HistGradientBoostingRegressor = require_sklearn().HistGradientBoostingRegressor

    missing = [c for c in IMAGE_OBSERVABLES if c not in catalog.columns]
    if missing:
        raise DataError(f"{where}: no latent column {missing[0]!r}: the observable oracle needs a synthetic catalogue")
    X = catalog[list(IMAGE_OBSERVABLES)].to_numpy(dtype=float)
    y = catalog[target].to_numpy(dtype=float)
    fit, _ = _split_rows(catalog, where)
    if not np.isfinite(y[fit]).all():
        i = fit[np.flatnonzero(~np.isfinite(y[fit]))[0]]
        raise DataError(f"{where}: row {i}: label {target} is NaN")
    model = HistGradientBoostingRegressor(max_iter=300, learning_rate=0.05, early_stopping=False, random_state=seed)
    model.fit(X[fit], y[fit])
    return _frame(catalog, target, model.predict(X), np.full(len(catalog), np.nan))


def noise_floor(catalog: pd.DataFrame, split: str = "test") -> float | None:
    """RMS (dex) of ``oh_unexplained`` over ``split``: the RMSE a perfect image model reaches on
    these galaxies (None for a catalogue without that latent column)."""
    if UNEXPLAINED not in catalog.columns:
        return None
    rows = catalog["split"].astype(str).to_numpy() == split if "split" in catalog.columns else slice(None)
    v = catalog[UNEXPLAINED].to_numpy(dtype=float)[rows]
    v = v[np.isfinite(v)]
    return float(np.sqrt(np.mean(v**2))) if v.size else None
