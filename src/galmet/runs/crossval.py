"""K-fold cross-validated training: K models, out-of-fold predictions, and their ensemble.

For small labelled sets (a few hundred galaxies) one validation split is too small to choose
settings by (80 galaxies give an RMSE with a standard error of ~0.008 dex) and leaves data
unused. :func:`cross_validate` deals the ``train`` (and ``valid``) rows of a dataset into K
folds and trains one model per fold with :func:`galmet.training.loop.train`, validating on the held-out
fold; every training galaxy then has one out-of-fold prediction (8x TTA), and the K models are
averaged into one ensemble bundle. ``test`` rows are never read.

Run directory::

    RUN/folds.csv        objID (or file) and fold of every train/valid row
    RUN/fold<k>/         an ordinary training run (config.yaml, history.csv, checkpoint.pt, model.pt)
    RUN/oof.parquet      the out-of-fold predictions table (galmet.predict columns + fold)
    RUN/cv.json          out-of-fold RMSE, NMAD, bias per target with their bootstrap intervals
                         (``intervals``, :func:`galmet.science.metrics.bootstrap_metrics`), RMSE per fold,
                         the calibration, settings
    RUN/model.pt         the ensemble of the K fold models (galmet.nn.bundle.save_ensemble), calibrated

The ensemble is calibrated on the out-of-fold residuals (:func:`galmet.science.calibration.fit_calibration`,
method ``auto``: the gaussian head's sigma when there is one, else plain split-conformal), so its
predictions carry error bars and 68% / 95% intervals. Strictly, the conformal guarantee holds for a
fold model on new galaxies; the ensemble of the K models is usually a little more accurate than any
one of them, which makes its intervals slightly conservative (see docs/model.md).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from galmet._env import env_int
from galmet.data.dataset import as_dataset
from galmet.errors import ConfigError, DataError
from galmet.io.atomic import atomic_write_text
from galmet.io.safety import check_output_dir
from galmet.io.tables import table_provenance, write_table
from galmet.layout import (
    BUNDLE,
    CHECKPOINT,
    CONFIG,
    CV_SCORES,
    FOLDS,
    HISTORY,
    OOF,
    RUN_FILES,
    RUN_LOCK,
    STAGING,
    fold_dir,
)
from galmet.nn.bundle import load_model, save_ensemble
from galmet.nn.net import build_model
from galmet.predict.dataset import predict_dataset
from galmet.runs.calibration_rows import calibration_source
from galmet.science.calibration import fit_calibration
from galmet.science.metrics import bootstrap_metrics, regression_metrics, residuals, rmse
from galmet.training.config import TrainConfig, as_train_config
from galmet.training.loop import train
from galmet.training.rundir import check_not_running, foreign_run_file, open_run_dir, staging_dir

log = logging.getLogger(__name__)


@dataclass
class CVResult:
    """What :func:`cross_validate` returns.

    Attributes
    ----------
    run_dir : Path
    bundle_path : Path
        The ensemble bundle (``run_dir/model.pt``).
    oof : pandas.DataFrame
        Out-of-fold predictions, one row per train/valid galaxy.
    scores : dict
        The content of ``cv.json``.
    """

    run_dir: Path
    bundle_path: Path
    oof: pd.DataFrame
    scores: dict


def assign_folds(n: int, folds: int, seed: int) -> np.ndarray:
    """Fold number (0..folds-1) of each of ``n`` rows: a seeded permutation dealt round-robin,
    so fold sizes differ by at most one."""
    if folds < 2:
        raise ConfigError(f"folds must be at least 2, got {folds}", param="folds")
    if n < 2 * folds:
        raise DataError(f"{n} train/valid rows are too few for {folds} folds (need at least {2 * folds})")
    order = np.random.default_rng(seed).permutation(n)
    fold = np.empty(n, dtype=np.int64)
    fold[order] = np.arange(n) % folds
    return fold


def _check_cv_dir(run: Path, resume: bool, overwrite: bool, under_lock: bool = False) -> None:
    check_output_dir(run, "out_dir")
    if resume and overwrite:
        raise ConfigError("resume and overwrite exclude each other", param=("resume", "overwrite"))
    if not under_lock:
        check_not_running(run)
    started = run.is_dir() and any(p.name not in (RUN_LOCK, STAGING) for p in run.iterdir())
    if resume and not ((run / FOLDS).is_file() or (staging_dir(run) / FOLDS).is_file()):
        raise ConfigError(f"{run}: no {FOLDS}: not a cross-validation run to resume")
    if started and not (resume or overwrite):
        raise ConfigError(
            f"{run}: is not empty; use resume to continue a cross-validation run there or overwrite",
            param=("resume", "overwrite"),
        )
    if run.is_dir() and foreign_run_file(run, skip=(CONFIG, HISTORY, CHECKPOINT)) is not None:
        raise ConfigError(
            f"{run}: its {BUNDLE} was not written by galmet (or is damaged); galmet never replaces it: "
            f"move it away or choose another out_dir",
            param="out_dir",
        )


def _cv_files(folds: int) -> list[str]:
    """The files of a finished cross-validation run, relative to it, the ensemble bundle last."""
    per_fold = [f"{fold_dir(k)}/{name}" for k in range(folds) for name in RUN_FILES]
    return [FOLDS, OOF, CV_SCORES, *per_fold, BUNDLE]


def _obsolete_folds(run: Path, folds: int) -> list[str]:
    """Files of folds beyond ``folds`` that an earlier run with more folds left in ``run``."""
    out = []
    k = folds
    while (run / fold_dir(k)).is_dir():
        out += [f"{fold_dir(k)}/{name}" for name in RUN_FILES]
        k += 1
    return out


def cross_validate(
    dataset,
    out_dir,
    config,
    folds: int = 5,
    fold_seed: int | None = None,
    resume: bool = False,
    overwrite: bool = False,
    tta: bool = True,
    keep_checkpoint: bool = False,
) -> CVResult:
    """Train ``folds`` models on a dataset's train/valid rows, one per held-out fold; see module doc.

    Parameters
    ----------
    dataset : path-like or galmet.data.dataset.Dataset
        As for :func:`galmet.training.loop.train`; existing ``valid`` rows join the pool that is folded.
    out_dir : path-like
        The cross-validation run directory.
    config : TrainConfig
        Used for every fold (``valid_fraction`` and ``split_seed`` play no part).
    folds : int
        K >= 2.
    fold_seed : int, optional
        Seed of the fold assignment (default: ``config.split_seed``).
    resume : bool
        Continue: finished folds are kept, an interrupted fold resumes from its checkpoint.
    overwrite : bool
        Start again in a directory that holds a run: the new run is built in the hidden
        ``.galmet-staging`` folder and replaces the old one (its files, by name) only when it has
        finished; other files in the folder stay.
    tta : bool
        Out-of-fold predictions with the 8 dihedral views.
    keep_checkpoint : bool
        Keep each finished fold's ``checkpoint.pt`` (optimizer state); by default it is deleted
        when the fold finishes (an interrupted fold keeps it, so ``resume`` is unaffected).

    Raises
    ------
    ConfigError, DataError
        One-line messages (bad options, too few rows, a resumed run with other settings or data).
    """
    if env_int("WORLD_SIZE", 1) > 1:
        raise ConfigError("folds runs one process; start it without torchrun", param="folds")
    config = (as_train_config(config) or TrainConfig()).resolved()
    run = Path(out_dir)
    _check_cv_dir(run, resume, overwrite)
    build_model(config.arch, 1, config.weights)  # the weights resolved (cache, download, file) before any write
    fold_seed = config.split_seed if fold_seed is None else fold_seed
    ds = as_dataset(
        dataset,
        targets=config.targets,
        on_error="skip" if config.skip_bad else "raise",
        size=config.size,
        valid_fraction=0.0,
    )
    pool = ds.split_indices(["train", "valid"])
    fold_of_pool = assign_folds(len(pool), folds, fold_seed)
    table = pd.DataFrame({"name": np.asarray(ds.names, dtype=object)[pool], "fold": fold_of_pool})
    names = _cv_files(folds)
    with open_run_dir(run, resume, overwrite, names=names, check=_check_cv_dir, progress=FOLDS) as rd:
        result = _cross_validate_into(
            rd.work, ds, config, folds, fold_seed, pool, fold_of_pool, table, resume, tta, keep_checkpoint
        )
        # the old run's fold checkpoints go too when the new folds dropped theirs
        dropped = [] if keep_checkpoint else [f"{fold_dir(k)}/{CHECKPOINT}" for k in range(folds)]
        rd.commit(names, _obsolete_folds(run, folds) + dropped)
    return dataclasses.replace(result, run_dir=run, bundle_path=run / BUNDLE)


def _cross_validate_into(
    work: Path, ds, config, folds, fold_seed, pool, fold_of_pool, table, resume, tta, keep_checkpoint=False
) -> CVResult:
    """Train the folds and write the cross-validation run into ``work`` (the run, or its staging folder)."""
    folds_file = work / FOLDS
    if resume and folds_file.is_file():
        saved = pd.read_csv(folds_file, dtype={"name": str})
        if (
            saved["name"].tolist() != table["name"].astype(str).tolist()
            or saved["fold"].tolist() != table["fold"].tolist()
        ):
            raise ConfigError(
                f"{folds_file}: the dataset, folds or fold_seed differ from the run being resumed; "
                f"use overwrite to start again",
                param=("folds", "fold_seed", "overwrite"),
            )
    atomic_write_text(folds_file, table.to_csv(index=False))

    parts, members = [], []
    for k in range(folds):
        fold_run = work / fold_dir(k)
        cat = ds.catalog.copy()
        cat.loc[pool, "split"] = np.where(fold_of_pool == k, "valid", "train")
        ds_k = dataclasses.replace(ds, catalog=cat)
        t0 = time.perf_counter()
        # a finished fold (model.pt, its checkpoint dropped) is reused as it is by train(resume=True)
        resume_k = resume and ((fold_run / CHECKPOINT).is_file() or (fold_run / BUNDLE).is_file())
        log.info(
            "fold %d/%d: training on %d rows, validating on %d",
            k + 1,
            folds,
            int(np.sum(fold_of_pool != k)),
            int(np.sum(fold_of_pool == k)),
        )
        train(ds_k, fold_run, config, resume=resume_k, overwrite=not resume_k, keep_checkpoint=keep_checkpoint)
        model = load_model(fold_run / BUNDLE)
        held = ds_k.subset(pool[fold_of_pool == k])
        pred = predict_dataset(model, held, tta=tta, device=config.device, progress=False)
        pred.insert(1 if pred.columns[0] in ("objID", "file") else 0, "fold", k)
        parts.append(pred)
        members.append(model)
        first = config.targets[0]
        if first in pred.columns:
            m = regression_metrics(pred[first].to_numpy(), pred[f"{first}_pred"].to_numpy())
            log.info(
                "fold %d/%d: held-out RMSE %.4f (%s), %.0f s", k + 1, folds, m["rmse"], first, time.perf_counter() - t0
            )

    oof = pd.concat(parts, ignore_index=True)
    scores: dict[str, Any] = {"folds": folds, "fold_seed": fold_seed, "n": len(oof), "tta": tta, "targets": {}}
    for t in config.targets:
        m = regression_metrics(oof[t].to_numpy(), oof[f"{t}_pred"].to_numpy())
        per_fold = [rmse(residuals(g[t], g[f"{t}_pred"])) for _, g in oof.groupby("fold")]
        scores["targets"][t] = {
            "rmse": m["rmse"],
            "nmad": m["nmad"],
            "bias": m["bias"],
            "rmse_per_fold": per_fold,
            "rmse_fold_sem": float(np.std(per_fold, ddof=1) / np.sqrt(folds)),
            "intervals": bootstrap_metrics(oof[t].to_numpy(), oof[f"{t}_pred"].to_numpy()),
        }
    calibrations = {}
    for t in config.targets:
        try:
            calibrations[t] = fit_calibration(
                oof,
                t,
                source=calibration_source(oof, {"file": OOF, "kind": "out-of-fold"}),
                where=str(work / OOF),
                bins="auto",
                members=folds,
            )
        except DataError as exc:  # too few galaxies: the ensemble is written, without error bars
            log.warning("no calibration of %s: %s", t, exc)
    for t, cal in calibrations.items():
        scores["targets"][t]["calibration"] = cal.describe()
        log.info("calibration: %s", cal.describe())
    scores["config"] = config.to_dict()
    atomic_write_text(work / CV_SCORES, json.dumps(scores, indent=1) + "\n")
    bundle = save_ensemble(  # (the run folder's own rules decided what may be replaced)
        work / BUNDLE,
        members,
        meta={
            "cross_validation": {k: scores[k] for k in ("folds", "fold_seed", "n", "targets")},
            "calibration": {t: cal.to_dict() for t, cal in calibrations.items()},
        },
        overwrite=True,
    )
    # the held-out predictions that calibrate this ensemble: they name it (galmet calibrate checks)
    write_table(oof, work / OOF, provenance=table_provenance(model=bundle))
    return CVResult(run_dir=work, bundle_path=bundle, oof=oof, scores=scores)
