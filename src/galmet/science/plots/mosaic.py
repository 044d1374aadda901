"""A mosaic of galaxy thumbnails with a label on each, for quick looks (``galmet demo``).

Save it with :func:`galmet.science.plots.figures.save_figure`.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np


def plot_mosaic(images: np.ndarray, labels: Sequence[str], ncols: int = 8, title: str | None = None,
                thumb_inches: float = 1.3):
    """Draw uint8 images (N, H, W, 3) on a grid, each with its label; returns a matplotlib Figure.

    Labels are drawn inside the top-left corner of each thumbnail in white on a dark box, so
    they stay legible on any galaxy.
    """
    from matplotlib.figure import Figure  # no pyplot: nothing global to close, no backend to pick

    n = len(images)
    ncols = max(1, min(ncols, n))
    nrows = int(np.ceil(n / ncols))
    fig = Figure(figsize=(ncols * thumb_inches, nrows * thumb_inches + (0.4 if title else 0)))
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for ax in axes.flat:
        ax.set_axis_off()
    for ax, img, label in zip(axes.flat, images, labels):
        ax.imshow(img, interpolation="nearest")
        ax.text(0.03, 0.97, label, transform=ax.transAxes, va="top", ha="left", fontsize=7, color="white",
                bbox=dict(facecolor="black", alpha=0.55, pad=1.5, edgecolor="none"))
    if title:
        fig.suptitle(title, fontsize=10)
    fig.subplots_adjust(left=0.01, right=0.99, bottom=0.01, top=(0.93 if title else 0.99), wspace=0.03, hspace=0.03)
    return fig

