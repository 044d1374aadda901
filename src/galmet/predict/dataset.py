"""Catalog in, predictions table out: run a model bundle over a dataset (sky positions:
:mod:`galmet.predict.positions`).

The table has one row per image, in the input's row order (columns: see :mod:`galmet.columns`):

==================== =============================================================
objID / file         the galaxy's objID and/or its image file (an image folder always has file)
split                train/valid/test (only for a dataset directory with a catalog)
<target>_pred        prediction (mean over the TTA views: the 8 dihedral views by default,
                     or fastai's original + 4 augmented), target units
<target>_spread      population std over the views (and ensemble members); NaN for one
                     model without TTA. Not an error bar: see <target>_err
<target>_sigma       the heteroscedastic head's own 1-sigma (--loss gaussian models only)
<target>_err,        calibrated 1-sigma and central 68% / 95% intervals (only when the bundle
_lo68 .. _hi95       carries a calibration: galmet calibrate, or galmet train --folds)
<target>             the truth, when the catalog has that column
lgm_tot_p50, oh_p50, passed through from the catalog when present, for joins and analyses
z, ra, dec, oh_p16,
oh_p84
ood_score            k-NN distance of the embedding to the training embeddings over its 99th
                     percentile (only when the bundle has embedding statistics)
flags                galmet.columns.Flag bits (0: no check raised anything)
==================== =============================================================

Truth values outside :data:`galmet.columns.LABEL_RANGES` (MPA-JHU writes -9999 for a missing
value) are written as NaN, and a warning says how many; the table's ``attrs["invalid_labels"]``
holds the counts.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from galmet.columns import (
    FILE,
    FLAGS,
    OBJID,
    OOD_SCORE,
    PASSTHROUGH,
    SPLIT,
    Flag,
    describe_invalid,
    mask_invalid_labels,
    pred_column,
)
from galmet.data.dataset import Dataset, find_catalog
from galmet.data.imaging import recorded_imaging
from galmet.data.quality import image_flags
from galmet.nn.inference import GalmetModel
from galmet.nn.uncertainty import UncertainPrediction
from galmet.sdss.catalog import Cuts, cut_mask

log = logging.getLogger(__name__)
#: Images embedded at a time for the out-of-domain flag.
OOD_CHUNK = 4096


def predict_dataset(
    model: GalmetModel,
    dataset: Dataset,
    tta: bool = True,
    batch_size: int = 256,
    device: str = "auto",
    progress: bool | None = None,
    tta_mode: str = "dihedral",
    tta_seed: int = 0,
    flags: bool = True,
) -> pd.DataFrame:
    """Predict every image of ``dataset`` with ``model``; return the predictions table (see module doc).

    Parameters
    ----------
    model : galmet.nn.inference.GalmetModel
        A loaded bundle.
    dataset : galmet.data.dataset.Dataset
        Loaded with images; their size must be the bundle's image size.
    tta, batch_size, device, progress, tta_mode, tta_seed
        See :meth:`galmet.nn.inference.GalmetModel.predict`.
    flags : bool
        Run the checks of the ``flags`` column (:func:`flag_rows`); the embedding check costs one
        more forward pass per member. The checks that ran are listed in ``table.attrs["flag_checks"]``.

    Raises
    ------
    DataError
        The images are not the size, or (when the dataset records it) not the pixel scale, the
        model was trained on (:meth:`~galmet.nn.inference.GalmetModel.check_imaging`).
    """
    recorded = recorded_imaging(dataset.root, dataset.image_size)
    model.check_imaging(dataset.image_size, recorded.pixel_scale, str(dataset.root))
    result = model.predict_uncertainty(
        dataset.images(),
        tta=tta,
        batch_size=batch_size,
        device=device,
        progress=progress,
        tta_mode=tta_mode,
        tta_seed=tta_seed,
    )
    table = predictions_table(dataset, result.targets, result, with_split=find_catalog(dataset.root) is not None)
    if flags:
        table = flag_rows(table, model, dataset.images(), dataset.catalog, batch_size, device)
    return table


def predictions_table(
    dataset: Dataset,
    targets: list[str],
    pred: np.ndarray | UncertainPrediction,
    std: np.ndarray | None = None,
    with_split: bool = True,
) -> pd.DataFrame:
    """Assemble the predictions table from a :class:`~galmet.nn.uncertainty.UncertainPrediction`,
    or from (N,) or (N, T) predictions and their spread."""
    cat = dataset.catalog
    out = pd.DataFrame(index=range(len(cat)))
    if OBJID in cat.columns:
        out[OBJID] = cat[OBJID].to_numpy(dtype=np.int64)
    if OBJID not in cat.columns or FILE in cat.columns:  # an image folder always names its files
        out[FILE] = [
            str(p.relative_to(dataset.root)) if p.is_relative_to(dataset.root) else str(p) for p in dataset.paths
        ]
    if with_split and SPLIT in cat.columns:
        out[SPLIT] = cat[SPLIT].astype(str).to_numpy()
    return _add_predictions(out, cat, targets, pred, std)


def _add_predictions(out: pd.DataFrame, cat: pd.DataFrame, targets: list[str], pred, std=None) -> pd.DataFrame:
    """``out`` with the prediction, uncertainty, truth and pass-through columns of ``cat``'s rows."""
    if not isinstance(pred, UncertainPrediction):
        if std is None:
            raise TypeError("give the spread of the predictions, or an UncertainPrediction")
        n = len(cat)
        values = np.asarray(pred, dtype=np.float64).reshape(n, -1)
        pred = UncertainPrediction(list(targets), values, np.asarray(std, dtype=np.float64).reshape(n, -1))
    for j, t in enumerate(targets):
        out[pred_column(t)] = pred.pred[:, j]
        for name, column in pred.columns(t).items():
            out[name] = column
        if t in cat.columns and t not in out.columns:
            out[t] = pd.to_numeric(cat[t], errors="coerce").to_numpy(dtype=np.float64)
    for col in PASSTHROUGH:
        if col in cat.columns and col not in out.columns:
            out[col] = cat[col].to_numpy()
    # A catalogue's missing-value sentinels (MPA-JHU's -9999) must not travel on as numbers.
    out, invalid = mask_invalid_labels(out, [t for t in (*targets, *PASSTHROUGH) if t in out.columns])
    for col, info in invalid.items():
        log.warning("predictions: %s", describe_invalid(col, info, "written as missing (NaN)"))
    out.attrs["invalid_labels"] = invalid
    return out


def flag_rows(
    table: pd.DataFrame,
    model: GalmetModel,
    images,
    catalog: pd.DataFrame | None = None,
    batch_size: int = 256,
    device: str = "auto",
    pixel_scale: float | None = None,
) -> pd.DataFrame:
    """``table`` with the ``flags`` column (and ``ood_score`` when the model has embedding statistics).

    Bits (:class:`galmet.columns.Flag`): the prediction or the catalogue's label outside the
    model's training label range (bundles that record it); the embedding farther from the
    training embeddings than 99% of the training galaxies (bundles with embedding statistics);
    the image checks of :func:`galmet.data.quality.image_flags`; the paper's photometric cuts
    (when ``catalog`` has all their columns). ``table.attrs["flag_checks"]`` lists the checks
    that ran.

    Parameters
    ----------
    table : pandas.DataFrame
        A predictions table of ``images`` (same rows, same order).
    images : numpy.ndarray
        uint8 (N, H, W, 3), the images predicted.
    catalog : pandas.DataFrame, optional
        The rows' catalogue (truths, photometry).
    pixel_scale : float, optional
        Arcsec per pixel of the images (default: the SDSS field of view over the image size).
    """
    n = len(table)
    bits = np.zeros(n, dtype=np.int64)
    checks: list[str] = []
    cat = catalog if catalog is not None else pd.DataFrame(index=range(n))
    for t, (lo, hi) in model.label_range.items():
        p = table[pred_column(t)].to_numpy(dtype=float)
        bits |= np.where((p < lo) | (p > hi), int(Flag.PRED_OUT_OF_RANGE), 0)
        if t in cat.columns:
            y = pd.to_numeric(cat[t], errors="coerce").to_numpy(dtype=float)
            bits |= np.where((y < lo) | (y > hi), int(Flag.LABEL_OUT_OF_RANGE), 0)
            checks.append(Flag.LABEL_OUT_OF_RANGE.name or "")
    if model.label_range:
        checks.append(Flag.PRED_OUT_OF_RANGE.name or "")
    refs = model.embedding_references()
    if refs is not None:
        from galmet.nn.embedding import ood_ratio

        # in chunks: an ensemble's embeddings of a large set (members x N x 512 floats) need not fit in memory
        score = np.concatenate(
            [
                ood_ratio(refs, model.embed(images[s : s + OOD_CHUNK], batch_size=batch_size, device=device))
                for s in range(0, n, OOD_CHUNK)
            ]
        )
        table = table.assign(**{OOD_SCORE: score})
        bits |= np.where(score > 1, int(Flag.EMBEDDING_OUT_OF_DOMAIN), 0)
        checks.append(Flag.EMBEDDING_OUT_OF_DOMAIN.name or "")
    bits |= image_flags(images, pixel_scale)
    checks += [f.name or "" for f in (Flag.IMAGE_EMPTY, Flag.IMAGE_SATURATED, Flag.IMAGE_OFF_CENTRE)]
    cuts = Cuts()
    needed = {c for cols, _, _ in cuts.terms() for c in cols}
    if needed <= set(cat.columns):
        keep, _ = cut_mask(cat, cuts)
        bits |= np.where(keep, 0, int(Flag.PHOTOMETRIC_CUTS))
        checks.append(Flag.PHOTOMETRIC_CUTS.name or "")
    table = table.assign(**{FLAGS: bits})
    table.attrs["flag_checks"] = sorted(set(checks), key=lambda name: Flag[name].value)
    return table
