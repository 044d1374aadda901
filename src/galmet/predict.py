"""Catalog in, predictions table out: run a model bundle over a dataset or over sky positions.

The table has one row per image, in the input's row order (columns: see :mod:`galmet.columns`):

==================== =============================================================
objID / file         the galaxy's objID and/or its image file (an image folder always has file)
split                train/valid/test (only for a dataset directory with a catalog)
<target>_pred        prediction (mean over the TTA views: the 8 dihedral views by default,
                     or fastai's original + 4 augmented), target units
<target>_pred_std    population std over the views (and ensemble members); NaN for one
                     model without TTA
<target>             the truth, when the catalog has that column
lgm_tot_p50, oh_p50, passed through from the catalog when present, for joins and analyses
z, ra, dec
==================== =============================================================

Truth values outside :data:`galmet.columns.LABEL_RANGES` (MPA-JHU writes -9999 for a missing
value) are written as NaN, and a warning says how many; the table's ``attrs["invalid_labels"]``
holds the counts.
"""

from __future__ import annotations

import logging
import math

import numpy as np
import pandas as pd

from galmet.columns import (
    FILE,
    OBJID,
    PASSTHROUGH,
    SPLIT,
    describe_invalid,
    float_array,
    mask_invalid_labels,
    pred_column,
    spread_column,
)
from galmet.data.dataset import Dataset, find_catalog
from galmet.errors import DataError, GalmetError
from galmet.nn.inference import GalmetModel
from galmet.sdss.skyserver import DEFAULT_SCALE, SkyServerClient

log = logging.getLogger(__name__)


def predict_dataset(
    model: GalmetModel,
    dataset: Dataset,
    tta: bool = True,
    batch_size: int = 256,
    device: str = "auto",
    progress: bool | None = None,
    tta_mode: str = "dihedral",
    tta_seed: int = 0,
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

    Raises
    ------
    DataError
        The images are not the size the model was trained on.
    """
    size = model.image_size
    if size is not None and dataset.image_size != size:
        which = f"the model {model.path}" if model.path else "the model"
        raise DataError(
            f"{dataset.root}: images are {dataset.image_size}x{dataset.image_size} pixels, "
            f"{which} expects {size}x{size}"
        )
    pred, std = model.predict(
        dataset.images(),
        tta=tta,
        batch_size=batch_size,
        device=device,
        return_std=True,
        progress=progress,
        tta_mode=tta_mode,
        tta_seed=tta_seed,
    )
    return predictions_table(dataset, model.targets, pred, std, with_split=find_catalog(dataset.root) is not None)


def predictions_table(
    dataset: Dataset, targets: list[str], pred: np.ndarray, std: np.ndarray, with_split: bool = True
) -> pd.DataFrame:
    """Assemble the predictions table from (N,) or (N, T) predictions and their spread."""
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


def _add_predictions(out: pd.DataFrame, cat: pd.DataFrame, targets: list[str], pred, std) -> pd.DataFrame:
    """``out`` with the prediction, spread, truth and pass-through columns of ``cat``'s rows."""
    pred = np.asarray(pred, dtype=np.float64).reshape(len(cat), -1)
    std = np.asarray(std, dtype=np.float64).reshape(len(cat), -1)
    for j, t in enumerate(targets):
        out[pred_column(t)] = pred[:, j]
        out[spread_column(t)] = std[:, j]
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


def predict_positions(
    model: GalmetModel,
    positions: pd.DataFrame,
    *,
    scale: float = DEFAULT_SCALE,
    client: SkyServerClient | None = None,
    skip_bad: bool = False,
    tta: bool = True,
    batch_size: int = 256,
    device: str = "auto",
    where: str = "positions",
    progress: bool | None = None,
    tta_mode: str = "dihedral",
    tta_seed: int = 0,
) -> pd.DataFrame:
    """Fetch the SDSS cutout at every ra/dec of ``positions`` and predict it.

    Parameters
    ----------
    model : GalmetModel
        Its image size (default 128) is the cutout size fetched.
    positions : pandas.DataFrame
        ``ra`` and ``dec`` in degrees; ``objID`` and the truth columns are kept when present.
    scale : float
        Arcsec per pixel of the cutouts (0.296: the paper's).
    client : SkyServerClient, optional
        Fetches the cutouts (server, timeout, retries, rate); default: SDSS DR14 with the
        default retry policy.
    skip_bad : bool
        Drop rows whose cutout cannot be fetched (logged) instead of failing on the first.
    tta, batch_size, device, tta_mode, tta_seed
        See :meth:`galmet.nn.inference.GalmetModel.predict`.
    where : str
        Names the input in error messages.

    Returns
    -------
    pandas.DataFrame
        ``objID`` (when given), ``ra``, ``dec``, then the prediction columns, one row per
        fetched position.
    """
    client = client or SkyServerClient()
    for col in ("ra", "dec"):
        if col not in positions.columns:
            raise DataError(f"{where}: table has no {col} column (columns: {', '.join(map(str, positions.columns))})")
    size = model.image_size or 128
    images, keep = [], []
    ras, decs = float_array(positions["ra"], where, "ra"), float_array(positions["dec"], where, "dec")
    rows = list(zip(ras.tolist(), decs.tolist(), strict=True))
    show = progress if progress is not None else len(rows) >= 20
    iterator = rows
    if show:
        from tqdm.auto import tqdm

        iterator = tqdm(rows, desc="fetching cutouts", unit="img")
    for i, (ra, dec) in enumerate(iterator):
        try:
            if not (math.isfinite(ra) and math.isfinite(dec) and 0 <= ra <= 360 and -90 <= dec <= 90):
                raise DataError(f"ra {ra}, dec {dec} is not a sky position (0 <= ra <= 360, -90 <= dec <= 90 degrees)")
            images.append(client.get_cutout(ra, dec, scale, size)[1])
            keep.append(i)
        except GalmetError as exc:
            label = f"row {i}: " if len(rows) > 1 else ""
            if not skip_bad:
                raise type(exc)(f"{where}: {label}{exc} (use --skip-bad to drop such rows)") from exc
            log.warning("skipped %s row %d (ra %s, dec %s): %s", where, i, ra, dec, exc)
    if not images:
        raise DataError(f"{where}: no cutout could be fetched")
    pred, std = model.predict(
        np.stack(images),
        tta=tta,
        batch_size=batch_size,
        device=device,
        return_std=True,
        tta_mode=tta_mode,
        tta_seed=tta_seed,
    )
    table = positions.iloc[keep].reset_index(drop=True)
    front = [c for c in (OBJID, "ra", "dec") if c in table.columns]
    return _add_predictions(table[front].copy(), table, model.targets, pred, std)
