"""``galmet figures``: the paper's figures from a predictions table (and a dataset, a resolution
study, stellar-mass predictions when given), written as PNG and PDF."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from galmet.columns import INTERVAL_LEVELS, err_column, interval_columns
from galmet.data.dataset import as_dataset
from galmet.errors import DataError
from galmet.io.locks import holds_folder_lock
from galmet.io.safety import Input, check_output_dir, inputs_of
from galmet.layout import FIGURE_NAMES, RESOLUTION_META, RESOLUTION_TABLE, UNCERTAINTY_FIGURE
from galmet.science.metrics import describe_exclusions, select_split, usable_rows
from galmet.science.mzr import mzr_analysis
from galmet.science.plots.histograms import plot_histograms
from galmet.science.plots.image_grid import plot_image_grid
from galmet.science.plots.mass import plot_mass
from galmet.science.plots.mzr import plot_mzr
from galmet.science.plots.pred_vs_true import plot_pred_vs_true
from galmet.science.plots.resolution import plot_study
from galmet.science.plots.style import require_matplotlib, save_figure
from galmet.science.plots.uncertainty import plot_uncertainty
from galmet.science.predictions import load_predictions
from galmet.science.resolution import read_resolution
from galmet.science.stats import select_grid_rows

log = logging.getLogger(__name__)


def _dataset_images_for(table: pd.DataFrame, dataset) -> np.ndarray:
    """Images of ``dataset`` in the row order of ``table`` (matched on objID or file)."""
    cat = dataset.catalog
    key = next((k for k in ("objID", "file") if k in table.columns and k in cat.columns), None)
    if key is None:
        raise DataError(f"{dataset.root}: cannot match predictions to images (no objID or file column in common)")
    pos = pd.Series(np.arange(len(cat)), index=cat[key].to_numpy())
    want = table[key].to_numpy()
    missing = ~pd.Index(want).isin(pos.index)
    if missing.any():
        raise DataError(
            f"{dataset.root}: {key} {want[np.flatnonzero(missing)[0]]} of the predictions is not in the dataset"
        )
    return np.asarray(dataset.images()[pos.loc[want].to_numpy()])


def check_figure_outputs(
    out_dir,
    formats: Sequence[str],
    predictions=None,
    dataset=None,
    resolution=None,
    mass=None,
    overwrite: bool = False,
):
    """Refuse (one line) an ``out_dir`` where a figure would replace one of the inputs, a file of
    another kind or (without ``overwrite``) a file galmet did not write, or that is a file or sits
    under one; touches nothing."""
    inputs = inputs_of(predictions, "the predictions file") + inputs_of(mass, "the --mass predictions file")
    inputs += inputs_of(dataset, "the dataset")
    if isinstance(resolution, (str, os.PathLike)):
        res = Path(resolution)
        inputs += [Input(res, "the resolution table")]
        inputs += [Input(res / name, "the resolution study") for name in (RESOLUTION_TABLE, RESOLUTION_META)]
    require_matplotlib()
    stems = [*FIGURE_NAMES.values(), UNCERTAINTY_FIGURE]
    files = [(f"{stem}.{fmt}", fmt, "figure") for stem in stems for fmt in formats]
    check_output_dir(out_dir, "out_dir", files, inputs, overwrite=overwrite)


@holds_folder_lock("out_dir", "'galmet figures'")
def make_figures(
    predictions,
    dataset=None,
    out_dir: str | os.PathLike = "figures",
    target: str | None = None,
    split: str | None = "test",
    resolution=None,
    mass=None,
    formats: Sequence[str] = ("png", "pdf"),
    n_thumbnails: int = 6,
    seed: int = 0,
    hist_binning: str = "paper",
    fig3_binning: str = "auto",
    mzr_style: str = "paper",
    relation: str = "tremonti",
    overwrite: bool = False,
) -> list[Path]:
    """Draw the paper's figures from a predictions table; return the files written.

    When the predictions carry calibrated error bars (``<target>_err`` and the interval
    columns) the figure of their calibration (:mod:`galmet.science.plots.uncertainty`) is added
    as ``uncertainty_calibration``.

    Parameters
    ----------
    predictions : path-like or pandas.DataFrame
        Predictions in the ``galmet predict`` format.
    dataset : path-like or galmet.data.dataset.Dataset, optional
        Supplies the images of Figure 1 (skipped without it) and the truth when missing.
    out_dir : path-like
        Output folder; files are ``fig<k>_<name>.png`` and ``.pdf`` (see :data:`FIGURE_NAMES`).
    split : str or None
        Split shown in Figures 1-3 (default test; None or "all" for every row).
    resolution : path-like or pandas.DataFrame, optional
        A ``galmet resolution-study`` output folder or table: adds Figure 4.
    mass : path-like or pandas.DataFrame, optional
        Stellar-mass predictions (target ``lgm_tot_p50``): adds Figures 5 and 6.
    hist_binning : {"paper", "common"}
        Figure 2: each histogram in its own Freedman-Diaconis bins (the paper) or common bins.
    fig3_binning : {"auto", "paper", "adaptive"}
        Figure 3: the paper's 0.1 dex bins of Z_true (``auto`` for oh_p50) or adaptive bins.
    overwrite : bool
        Replace files at the figures' names that galmet did not write.
    mzr_style, relation : str
        Figure 6 as the paper drew it or galmet's variant, and the MZR its scatter is measured
        about (``tremonti``: Eq. 3; ``refit``: re-fitted on the dataset's train split).
    """
    check_figure_outputs(out_dir, formats, predictions, dataset, resolution, mass, overwrite=overwrite)
    if dataset is not None:
        dataset = as_dataset(dataset, targets=[])
    df, target = _shown_predictions(predictions, target, dataset, split)
    # read every optional input before drawing, so a bad one fails before any file is written
    res = read_resolution(resolution) if resolution is not None else None
    mzr = None
    if mass is not None:
        mzr = mzr_analysis(df, mass, dataset=dataset, split=None, relation=relation, use_rf=False)
    grid = _thumbnail_grid(df, dataset, target, n_thumbnails, seed) if dataset is not None else None
    out = Path(out_dir)
    written: list[Path] = []
    for k, fig in _paper_figures(df, target, grid, res, mzr, n_thumbnails, seed, hist_binning, fig3_binning, mzr_style):
        written.extend(save_figure(fig, out / FIGURE_NAMES[k], formats))
    if err_column(target) in df.columns:
        written.extend(save_figure(_uncertainty_figure(df, target), out / UNCERTAINTY_FIGURE, formats))
    return written


def _shown_predictions(predictions, target: str | None, dataset, split: str | None) -> tuple[pd.DataFrame, str]:
    """The predictions of ``split`` with a usable truth and a finite prediction, and their target;
    the rows left out are logged (warnings)."""
    df, target = load_predictions(predictions, target, dataset)
    df = select_split(df, split)
    df, excluded = usable_rows(df, [target])
    for line in describe_exclusions(excluded):
        log.warning("figures: %s", line)
    bad = ~np.isfinite(df[f"{target}_pred"].to_numpy(dtype=float))
    if bad.any():
        log.warning("figures: dropping %d rows with a NaN prediction", int(bad.sum()))
        df = df[~bad].reset_index(drop=True)
    return df, target


def _paper_figures(
    df: pd.DataFrame,
    target: str,
    grid,
    res,
    mzr: dict | None,
    n_thumbnails: int,
    seed: int,
    hist_binning: str,
    fig3_binning: str,
    mzr_style: str,
):
    """Yield (figure number, matplotlib Figure) of the paper's figures that the inputs allow, in
    order, each drawn when the previous one has been saved: 1 with the thumbnail ``grid``
    (:func:`_thumbnail_grid`), 2 and 3 always, 4 with the resolution study ``res`` ((table,
    baselines) of :func:`read_resolution`), 5 and 6 with the :func:`mzr_analysis` result ``mzr``."""
    t, p = df[target].to_numpy(dtype=float), df[f"{target}_pred"].to_numpy(dtype=float)
    if grid is not None:
        yield 1, plot_image_grid(grid[0], grid[1], target, n_thumbnails, seed, rows=grid[2])
    else:
        log.info("figures: no dataset images given, skipping Figure 1")
    yield 2, plot_histograms(t, p, target, binning=hist_binning)
    yield 3, plot_pred_vs_true(t, p, target, binning=fig3_binning)
    if res is not None:
        yield 4, plot_study(*res)
    if mzr is not None:
        j = mzr["joined"]
        yield 5, plot_mass(j["lgm_tot_p50"], j["lgm_tot_p50_pred"], j["oh_p50"], j["z_mzr"])
        yield (
            6,
            plot_mzr(
                j["lgm_tot_p50"],
                j["oh_p50_pred"],
                mzr["bins"],
                z_true=j["oh_p50"],
                relation=mzr["relation"],
                style=mzr_style,
            ),
        )


def _uncertainty_figure(df: pd.DataFrame, target: str):
    """The calibration figure of the predictions' error bars (``<target>_err`` and the interval
    columns of every level in :data:`INTERVAL_LEVELS`)."""
    t, p = df[target].to_numpy(dtype=float), df[f"{target}_pred"].to_numpy(dtype=float)
    intervals = {lv: tuple(df[c].to_numpy(dtype=float) for c in interval_columns(target, lv)) for lv in INTERVAL_LEVELS}
    return plot_uncertainty(t, p, df[err_column(target)].to_numpy(dtype=float), intervals, target)


def _thumbnail_grid(df: pd.DataFrame, dataset, target: str, n_thumbnails: int, seed: int):
    """Figure 1's inputs: (images, their rows of ``df``, the rows per panel), or None when the
    dataset has no images. Only the thumbnails shown are read: a large test set's images need
    not fit in memory."""
    if not dataset.has_images:
        return None
    rows = select_grid_rows(df, target, n_thumbnails, seed)
    needed = np.unique(np.concatenate(list(rows.values())))
    shown = df.iloc[needed].reset_index(drop=True)
    where = {int(old): new for new, old in enumerate(needed)}
    rows = {k: np.array([where[int(i)] for i in v], dtype=np.int64) for k, v in rows.items()}
    return _dataset_images_for(shown, dataset), shown, rows
