"""``galmet domain-check``: how distinguishable a target set of images is from a training set.

Computes the image statistics (:mod:`galmet.data.image_stats`) of both datasets, trains the domain
classifier of :func:`galmet.science.domain.domain_check` and, with ``out``, writes one row per
galaxy: its identity (``objID``, else ``file``), ``set`` (``train`` or ``target``), ``p_target``
(the out-of-fold probability of being a target galaxy) and ``importance_weight`` (for weighted
conformal error bars, ``galmet calibrate --weights``).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pandas as pd

from galmet.columns import FILE, OBJID, SPLIT
from galmet.data.dataset import Dataset, load_dataset
from galmet.data.image_stats import image_statistics
from galmet.errors import ConfigError, DataError
from galmet.io.safety import check_output_file, inputs_of
from galmet.io.tables import require_table_format, table_provenance, write_table
from galmet.science.domain import DomainCheck, domain_check

log = logging.getLogger(__name__)

#: Splits of the training dataset compared by default (the galaxies a model trained on).
TRAIN_SPLITS = ("train", "valid")


def _rows(path, split: list[str] | None, what: str, skip_bad: bool) -> Dataset:
    """The dataset at ``path`` (only ``split`` rows when given and it has a split column)."""
    ds = load_dataset(path, targets=[], on_error="skip" if skip_bad else "raise")
    if split and SPLIT in ds.catalog.columns:
        rows = ds.split_indices(split)
        if len(rows) == 0:
            raise DataError(f"{path}: no rows in split {', '.join(split)} ({what})")
        ds = ds.subset(rows)
    return ds


def _identity(ds: Dataset, use_objid: bool) -> pd.Series:
    if use_objid:
        return pd.Series(ds.catalog[OBJID].to_numpy(dtype=np.int64))
    return pd.Series([str(p.relative_to(ds.root)) if p.is_relative_to(ds.root) else str(p) for p in ds.paths])


def _table(train: Dataset, target: Dataset, check: DomainCheck) -> pd.DataFrame:
    use_objid = OBJID in train.catalog.columns and OBJID in target.catalog.columns
    key = OBJID if use_objid else FILE
    ids = pd.concat([_identity(train, use_objid), _identity(target, use_objid)], ignore_index=True)
    return pd.DataFrame(
        {
            key: ids,
            "set": ["train"] * check.n_train + ["target"] * check.n_target,
            "p_target": check.p_target,
            "importance_weight": check.importance_weight,
        }
    )


def run_domain_check(
    train,
    target,
    out: str | os.PathLike | None = None,
    train_split: list[str] | None = None,
    target_split: list[str] | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    skip_bad: bool = False,
    overwrite: bool = False,
) -> tuple[DomainCheck, pd.DataFrame]:
    """Compare dataset ``target`` with dataset ``train`` (default: its train and valid rows);
    return the check and the per-galaxy table (written to ``out`` when given, atomically)."""
    if not 0 <= n_boot <= 100_000:
        raise ConfigError(f"n_boot must be 0 to 100000, got {n_boot}", param="n_boot")
    for name, p in (("train", train), ("target", target)):
        if not Path(p).exists():
            raise DataError(f"{name} {p}: no such dataset or folder")
    if Path(train).resolve() == Path(target).resolve() and not (train_split or target_split):
        raise ConfigError(
            f"train and target are the same dataset ({train}): give train_split/target_split to compare parts",
            param=("train_split", "target_split"),
        )
    if out is not None:
        kind = require_table_format(out, param="out").kind
        inputs = [*inputs_of(train, "the training dataset"), *inputs_of(target, "the target dataset")]
        check_output_file(out, "out", kind or "csv", "domain-check table", inputs, overwrite=overwrite)
    a = _rows(train, list(train_split or TRAIN_SPLITS), "train", skip_bad)
    b = _rows(target, target_split, "target", skip_bad)
    log.info("image statistics of %d training and %d target images", len(a.catalog), len(b.catalog))
    check = domain_check(image_statistics(a.images()), image_statistics(b.images()), n_boot=n_boot, seed=seed)
    table = _table(a, b, check)
    if out is not None:
        write_table(table, out, provenance=table_provenance())
    return check, table
