"""Seeded train / valid / test splits stored in a catalog's ``split`` column."""

from __future__ import annotations

import numpy as np
import pandas as pd

from galmet.errors import ConfigError, DataError
from galmet.paper import TEST_FRACTION, VALID_FRACTION

SPLITS = ("train", "valid", "test")
#: Largest seed galmet accepts anywhere (training, splits, synthesis, TTA): numpy's 32-bit seeds.
MAX_SEED = 2**32 - 1


def split_counts(
    n: int, test: float | int = TEST_FRACTION, valid_fraction: float = VALID_FRACTION
) -> tuple[int, int, int]:
    """The (train, valid, test) row counts :func:`assign_splits` gives ``n`` rows without a
    ``split`` column: ``test`` is a fraction in [0, 1) or a row count; ConfigError otherwise."""
    if not 0 <= valid_fraction < 1:
        raise ConfigError(f"valid fraction must be in [0, 1), got {valid_fraction}")
    if isinstance(test, float) and test < 1:
        if test < 0:
            raise ConfigError(f"test fraction must be in [0, 1), got {test}")
        n_test = int(round(test * n))
    else:
        n_test = int(test)
        if not 0 <= n_test <= n:
            raise ConfigError(f"test count must be between 0 and {n} (the catalog size), got {n_test}")
    n_valid = int(round(valid_fraction * (n - n_test)))
    return n - n_test - n_valid, n_valid, n_test


def check_split_column(catalog: pd.DataFrame, where: str = "catalog") -> pd.Series:
    """The ``split`` column of ``catalog``, stripped and lower-cased; DataError naming the first
    row whose split is missing or empty (see :func:`assign_splits`)."""
    split = catalog["split"].astype("string").str.strip().str.lower()
    empty = np.flatnonzero((split.isna() | (split == "")).to_numpy(dtype=bool))
    if len(empty):
        raise DataError(
            f"{where}: row {int(empty[0])}: split is empty ({len(empty)} of {len(split)} rows); give every row "
            "train, valid or test, or remove the split column to have galmet draw one"
        )
    return split


def assign_splits(
    catalog: pd.DataFrame,
    test: float | int = TEST_FRACTION,
    valid_fraction: float = VALID_FRACTION,
    seed: int = 0,
    where: str = "catalog",
) -> pd.Series:
    """Return a ``split`` column (``train``/``valid``/``test``) for ``catalog``.

    An existing ``split`` column is respected: its ``test`` rows stay test, and if it has no
    ``valid`` rows, ``valid_fraction`` of its ``train`` rows become ``valid`` (seeded).
    Otherwise a held-out test set is drawn first (``test`` is a fraction in [0, 1) or a row
    count; the paper held out 25,000 of 142,182, about 0.176), then the rest is split
    ``1 - valid_fraction`` / ``valid_fraction`` into train / valid.

    The same seed and catalog always give the same split.

    Raises
    ------
    DataError
        One line naming the first row (of ``where``) whose ``split`` is missing or empty, in a
        column that is partly or wholly empty: such a row is neither train nor test, and guessing
        could put a test galaxy into training. Remove the column to have galmet draw the split.
    ConfigError
        A split value other than train, valid or test; a fraction out of range.
    """
    n = len(catalog)
    if not 0 <= valid_fraction < 1:
        raise ConfigError(f"valid fraction must be in [0, 1), got {valid_fraction}")
    rng = np.random.default_rng(seed)
    if "split" in catalog.columns:
        split = check_split_column(catalog, where).to_numpy(dtype=object)
        bad = sorted(set(split) - set(SPLITS))
        if bad:
            raise ConfigError(f"split column has unknown values {bad}; allowed: {list(SPLITS)}")
        if not (split == "valid").any():
            train_idx = np.flatnonzero(split == "train")
            n_valid = int(round(valid_fraction * len(train_idx)))
            split[rng.permutation(train_idx)[:n_valid]] = "valid"
        return pd.Series(split, index=catalog.index, name="split", dtype=object)

    _, n_valid, n_test = split_counts(n, test, valid_fraction)
    order = rng.permutation(n)
    split = np.full(n, "train", dtype=object)
    split[order[:n_test]] = "test"
    split[order[n_test : n_test + n_valid]] = "valid"
    return pd.Series(split, index=catalog.index, name="split", dtype=object)
