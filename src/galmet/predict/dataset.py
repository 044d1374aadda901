"""Catalog in, predictions table out: run a model bundle over a dataset (sky positions:
:mod:`galmet.predict.positions`; the ``flags`` column: :mod:`galmet.predict.flags`).

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
seen                 "train" / "calibration" for a galaxy that trained or calibrated the
                     model (galmet.predict.seen), else "": not held-out
==================== =============================================================

Truth values outside :data:`galmet.columns.LABEL_RANGES` (MPA-JHU writes -9999 for a missing
value) are written as NaN, and a warning says how many; the table's ``attrs["invalid_labels"]``
holds the counts.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd

from galmet.columns import (
    FILE,
    LABEL_RANGES,
    OBJID,
    PASSTHROUGH,
    SEEN,
    SPLIT,
    pred_column,
)
from galmet.data.dataset import Dataset, find_catalog
from galmet.data.labels import describe_invalid, mask_invalid_labels, truth_array
from galmet.nn.inference import GalmetModel, InferenceOptions, inference_options
from galmet.nn.uncertainty import UncertainPrediction
from galmet.predict.flags import OOD_CHUNK, flag_rows
from galmet.predict.seen import seen_column

__all__ = ["OOD_CHUNK", "flag_rows", "predict_dataset", "predictions_table"]

log = logging.getLogger(__name__)


def predict_dataset(
    model: GalmetModel,
    dataset: Dataset,
    options: InferenceOptions | bool | None = None,
    *,
    flags: bool = True,
    allow_other_survey: bool = False,
    **overrides: Any,
) -> pd.DataFrame:
    """Predict every image of ``dataset`` with ``model``; return the predictions table (see module doc).

    Parameters
    ----------
    model : galmet.nn.inference.GalmetModel
        A loaded bundle.
    dataset : galmet.data.dataset.Dataset
        Loaded with images; their size must be the bundle's image size.
    options : galmet.nn.inference.InferenceOptions, optional
        TTA, batch size, device and progress (default: ``InferenceOptions()``: 8 dihedral views,
        256 images per pass, the best device).
    flags : bool
        Run the checks of the ``flags`` column (:func:`flag_rows`); the embedding check is taken
        in the prediction's forward pass (on CUDA, where that pass runs in bf16, one more float32
        pass per member). The checks that ran are listed in ``table.attrs["flag_checks"]``.
    allow_other_survey : bool
        Predict another survey's images (the dataset records a survey, layer, bands or format
        other than the model's) for a transfer experiment, with one warning: every row gets
        the ``OTHER_SURVEY`` flag and ``table.attrs["other_survey"]`` says what differs.
        Refused by default (:meth:`~galmet.nn.inference.GalmetModel.check_survey`).
    **overrides
        ``tta``, ``tta_mode``, ``tta_seed``, ``batch_size``, ``device``, ``progress``, ``engine``:
        override the fields of ``options`` (the keywords of earlier versions; None: keep).

    Raises
    ------
    DataError
        The images are not the size, or (when the dataset records them) not the pixel scale or
        the survey, the model was trained on (:meth:`~galmet.nn.inference.GalmetModel.check_imaging`).
    ConfigError
        A bad option (``param`` names it).

    The table's ``attrs["engine"]`` is the CPU engine that ran (``eager``, ``bf16``, ``openvino``;
    ``eager`` on CUDA): :mod:`galmet.nn.cpu_engine`.
    """
    opts = inference_options(options, **overrides)
    dataset = dataset.with_stretch(model.imaging.stretch)  # FITS fluxes: as the model's training images
    recorded = dataset.imaging  # (galmet.data.imaging.recorded_imaging at the images' size)
    where = str(dataset.root)
    other = model.check_imaging(
        dataset.image_size, recorded.pixel_scale, where, imaging=recorded, allow_other_survey=allow_other_survey
    )
    result = model.predict_uncertainty(dataset.images(), opts, ood=flags)
    table = predictions_table(dataset, result.targets, result, with_split=find_catalog(dataset.root) is not None)
    if flags:
        images, score = dataset.images(), result.ood_score
        compared = True if other is not None else (None if recorded.survey is None else False)
        table = flag_rows(
            table, model, images, dataset.catalog, opts.batch_size, opts.device, ood_score=score, other_survey=compared
        )
    if other is not None:
        table.attrs["other_survey"] = other
    table[SEEN] = seen_column(model, table)
    table.attrs["engine"] = model.engine_used or "eager"  # what ran (galmet.nn.cpu_engine), for provenance
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
            out[t] = truth_array(cat, t, "catalog")
    for col in PASSTHROUGH:
        if col in cat.columns and col not in out.columns:
            out[col] = cat[col].to_numpy()
    # A catalogue's missing-value sentinels (MPA-JHU's -9999) must not travel on as numbers.
    labels = [t for t in (*targets, *PASSTHROUGH) if t in out.columns and (t in targets or t in LABEL_RANGES)]
    out, invalid = mask_invalid_labels(out, labels, "catalog")
    for col, info in invalid.items():
        log.warning("predictions: %s", describe_invalid(col, info, "written as missing (NaN)"))
    out.attrs["invalid_labels"] = invalid
    return out
