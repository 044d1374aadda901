"""Catalog in, predictions table out: run a model bundle over a dataset (with test-time augmentation).

The table has one row per image, in the dataset's row order:

==================== =============================================================
objID / file         the galaxy's objID, or the image file when there is none
split                train/valid/test (only for a dataset directory with a catalog)
<target>_pred        prediction (mean over the 8 dihedral views with TTA), target units
<target>_pred_std    population std over the 8 views; NaN without TTA
<target>             the truth, when the catalog has that column
lgm_tot_p50, oh_p50, passed through from the catalog when present, for joins and analyses
z, ra, dec
==================== =============================================================
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from galmet.data.dataset import Dataset, find_catalog
from galmet.errors import DataError

log = logging.getLogger(__name__)

#: Catalog columns copied into every predictions table when present.
PASSTHROUGH = ("lgm_tot_p50", "oh_p50", "z", "ra", "dec")


def predict_dataset(model, dataset: Dataset, tta: bool = True, batch_size: int = 256, device: str = "auto",
                    progress: bool | None = None) -> pd.DataFrame:
    """Predict every image of ``dataset`` with ``model``; return the predictions table (see module doc).

    Parameters
    ----------
    model : galmet.nn.bundle.GalmetModel
        A loaded bundle.
    dataset : galmet.data.dataset.Dataset
        Loaded with images; their size must be the bundle's image size.
    tta, batch_size, device, progress
        See :meth:`galmet.nn.bundle.GalmetModel.predict`.

    Raises
    ------
    DataError
        The images are not the size the model was trained on.
    """
    size = model.image_size
    if size is not None and dataset.image_size != size:
        which = f"the model {model.path}" if model.path else "the model"
        raise DataError(f"{dataset.root}: images are {dataset.image_size}x{dataset.image_size} pixels, "
                        f"{which} expects {size}x{size}")
    pred, std = model.predict(dataset.images(), tta=tta, batch_size=batch_size, device=device,
                              return_std=True, progress=progress)
    return predictions_table(dataset, model.targets, pred, std, with_split=find_catalog(dataset.root) is not None)


def predictions_table(dataset: Dataset, targets: list[str], pred: np.ndarray, std: np.ndarray,
                      with_split: bool = True) -> pd.DataFrame:
    """Assemble the predictions table from (N,) or (N, T) predictions and their TTA spread."""
    cat = dataset.catalog
    pred = np.asarray(pred, dtype=np.float64).reshape(len(cat), -1)
    std = np.asarray(std, dtype=np.float64).reshape(len(cat), -1)
    out = pd.DataFrame(index=range(len(cat)))
    if "objID" in cat.columns:
        out["objID"] = cat["objID"].to_numpy(dtype=np.int64)
    else:
        out["file"] = [str(p.relative_to(dataset.root)) if p.is_relative_to(dataset.root) else str(p)
                       for p in dataset.paths]
    if with_split and "split" in cat.columns:
        out["split"] = cat["split"].astype(str).to_numpy()
    for j, t in enumerate(targets):
        out[f"{t}_pred"] = pred[:, j]
        out[f"{t}_pred_std"] = std[:, j]
        if t in cat.columns:
            out[t] = pd.to_numeric(cat[t], errors="coerce").to_numpy(dtype=np.float64)
    for col in PASSTHROUGH:
        if col in cat.columns and col not in out.columns:
            out[col] = cat[col].to_numpy()
    return out
