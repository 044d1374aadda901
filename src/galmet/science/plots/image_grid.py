"""Figure 1: galaxy thumbnails, one row per category (lowest/highest predicted, lowest/highest true,
most under/over-predicted, random), with Z_pred and Z_true on each.

The rows are chosen by :func:`galmet.science.stats.select_grid_rows`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from galmet.errors import DataError
from galmet.science.plots.style import SYMBOLS, merge_kwargs, new_figure, style
from galmet.science.stats import select_grid_rows

#: Row label of each category of :data:`galmet.science.stats.GRID_CATEGORIES`.
ROW_LABELS = {
    "lowest predicted": "lowest\npredicted",
    "highest predicted": "highest\npredicted",
    "lowest true": "lowest\ntrue",
    "highest true": "highest\ntrue",
    "most under-predicted": "most under-\npredicted",
    "most over-predicted": "most over-\npredicted",
    "random": "random",
}


class ImageGridDisplay:
    """Figure 1: a grid of galaxy thumbnails, one row per category, Z_pred and Z_true on each.

    Build it with :meth:`from_table`, draw it with :meth:`plot`.

    Parameters
    ----------
    images : ndarray, uint8, shape (N, H, W, 3)
        Images in the order of ``z_true`` and ``z_pred``.
    z_true, z_pred : ndarray, shape (N,)
        True and predicted labels (dex).
    rows : dict
        Category -> positions (int array, shape (n,)) into ``images``, in row order; every
        category has the same number ``n`` of columns.
    target : str
        Label name, for the title.

    Attributes
    ----------
    axes_ : list of list of matplotlib Axes
        One list per row, one Axes per column (set by :meth:`plot`).
    figure_ : matplotlib Figure
    """

    def __init__(self, images, z_true, z_pred, rows: dict[str, np.ndarray], target: str = "oh_p50"):
        self.images = images
        self.z_true = z_true
        self.z_pred = z_pred
        self.rows = rows
        self.target = target

    @classmethod
    def from_table(
        cls,
        images,
        table: pd.DataFrame,
        target: str = "oh_p50",
        n: int = 6,
        seed: int = 0,
        rows: dict[str, np.ndarray] | None = None,
    ) -> ImageGridDisplay:
        """The thumbnails of ``table``'s rows chosen by :func:`galmet.science.stats.select_grid_rows`.

        Parameters
        ----------
        images : ndarray, uint8, shape (N, H, W, 3)
            Images in the row order of ``table``.
        table : pandas.DataFrame
            ``<target>_pred`` and ``<target>`` per row (dex), N rows.
        n : int
            Thumbnails per category (columns).
        seed : int
            Seed of the random row.
        rows : dict, optional
            Precomputed :func:`~galmet.science.stats.select_grid_rows` (positions in ``table``);
            lets a caller pass only the images and table rows that are shown.
        """
        images = np.asarray(images)
        if images.ndim != 4 or images.shape[0] != len(table):
            raise DataError(f"image grid: {images.shape[0] if images.ndim else 0} images for {len(table)} table rows")
        rows = rows if rows is not None else select_grid_rows(table, target, n, seed)
        return cls(
            images, table[target].to_numpy(dtype=float), table[f"{target}_pred"].to_numpy(dtype=float), rows, target
        )

    def plot(self, fig=None, imshow_kwargs: dict | None = None, text_kwargs: dict | None = None) -> ImageGridDisplay:
        """Draw the grid.

        Parameters
        ----------
        fig : matplotlib Figure, optional
            Draw into this figure (it is cleared); default: a new one, 1.25 inches per thumbnail.
        imshow_kwargs, text_kwargs : dict, optional
            Merged over the defaults of each thumbnail's ``imshow`` and its pred/true text.

        Returns
        -------
        self
        """
        images, rows = self.images, self.rows
        n = len(next(iter(rows.values())))
        im_kw = merge_kwargs({"interpolation": "nearest" if images.shape[1] < 64 else "antialiased"}, imshow_kwargs)
        txt_kw = merge_kwargs(
            {
                "color": "white",
                "fontsize": 7.5,
                "va": "bottom",
                "ha": "left",
                "family": "monospace",
                "bbox": {"boxstyle": "round,pad=0.15", "fc": "black", "ec": "none", "alpha": 0.55},
            },
            text_kwargs,
        )
        with style():
            cell = 1.25
            width, height = 1.25 + cell * n, 0.35 + cell * len(rows)
            fig = fig or new_figure((width, height))
            fig.clear()
            gs = fig.add_gridspec(
                len(rows),
                n,
                left=1.15 / width,
                right=0.995,
                top=1 - 0.3 / height,
                bottom=0.005,
                wspace=0.03,
                hspace=0.03,
            )
            self.axes_ = []
            for r, (name, idx) in enumerate(rows.items()):
                row_axes = []
                for c in range(n):
                    ax = fig.add_subplot(gs[r, c])
                    row_axes.append(ax)
                    ax.set_xticks([])
                    ax.set_yticks([])
                    if c >= len(idx):
                        ax.set_axis_off()
                        continue
                    i = idx[c]
                    ax.imshow(images[i], **im_kw)
                    ax.text(
                        0.03,
                        0.03,
                        f"pred {self.z_pred[i]:.2f}\ntrue {self.z_true[i]:.2f}",
                        transform=ax.transAxes,
                        **txt_kw,
                    )
                    if c == 0:
                        ax.set_ylabel(
                            ROW_LABELS.get(name, name), fontsize=10, rotation=0, ha="right", va="center", labelpad=6
                        )
                self.axes_.append(row_axes)
            sym = SYMBOLS.get(self.target, (self.target,))[0]
            unit = " (dex)" if self.target in SYMBOLS else ""
            fig.suptitle(
                f"Galaxies by ${sym}$: predicted (pred) and true values{unit}",
                fontsize=11,
                y=1 - 0.04 / height,
                va="top",
            )
        self.figure_ = fig
        return self


def plot_image_grid(
    images: np.ndarray,
    table: pd.DataFrame,
    target: str = "oh_p50",
    n: int = 6,
    seed: int = 0,
    fig=None,
    rows: dict[str, np.ndarray] | None = None,
):
    """Figure 1 as a matplotlib Figure: :meth:`ImageGridDisplay.from_table` (same parameters), then
    :meth:`ImageGridDisplay.plot` into ``fig`` (cleared) or a new figure."""
    return ImageGridDisplay.from_table(images, table, target, n, seed, rows).plot(fig=fig).figure_
