"""A mosaic of galaxy thumbnails with a label on each, for quick looks (``galmet demo``).

Save it with :func:`galmet.science.plots.style.save_figure`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from galmet.science.plots.style import merge_kwargs, new_figure


class MosaicDisplay:
    """Thumbnails on a grid, each with a label drawn inside its top-left corner.

    Labels are white on a dark box, so they stay legible on any galaxy. Build it with
    :meth:`from_images`, draw it with :meth:`plot`.

    Parameters
    ----------
    images : ndarray, uint8, shape (N, H, W, 3)
    labels : sequence of str, length N
    ncols, nrows : int
        Grid shape, ``ncols * nrows >= N``.
    title : str, optional
    thumb_inches : float
        Side of one thumbnail in a new figure (inches).

    Attributes
    ----------
    axes_ : ndarray of matplotlib Axes, shape (nrows, ncols)
    figure_ : matplotlib Figure
        Set by :meth:`plot`.
    """

    def __init__(
        self, images, labels: Sequence[str], ncols: int, nrows: int, title: str | None = None, thumb_inches: float = 1.3
    ):
        self.images = images
        self.labels = labels
        self.ncols = ncols
        self.nrows = nrows
        self.title = title
        self.thumb_inches = thumb_inches

    @classmethod
    def from_images(
        cls,
        images: np.ndarray,
        labels: Sequence[str],
        ncols: int = 8,
        title: str | None = None,
        thumb_inches: float = 1.3,
    ) -> MosaicDisplay:
        """A mosaic of ``images`` with at most ``ncols`` columns and as many rows as needed."""
        n = len(images)
        ncols = max(1, min(ncols, n))
        return cls(images, labels, ncols, int(np.ceil(n / ncols)), title, thumb_inches)

    def plot(self, fig=None, imshow_kwargs: dict | None = None, text_kwargs: dict | None = None) -> MosaicDisplay:
        """Draw the mosaic.

        Parameters
        ----------
        fig : matplotlib Figure, optional
            Draw into this figure (cleared first); default: a new one of ``thumb_inches`` per
            thumbnail.
        imshow_kwargs, text_kwargs : dict, optional
            Merged over the defaults of each thumbnail's ``imshow`` and its label's ``text``.

        Returns
        -------
        self
        """
        ncols, nrows, title = self.ncols, self.nrows, self.title
        im_kw = merge_kwargs({"interpolation": "nearest"}, imshow_kwargs)
        txt_kw = merge_kwargs(
            {
                "va": "top",
                "ha": "left",
                "fontsize": 7,
                "color": "white",
                "bbox": dict(facecolor="black", alpha=0.55, pad=1.5, edgecolor="none"),
            },
            text_kwargs,
        )
        if fig is None:  # no pyplot: nothing global to close, no backend to pick
            fig = new_figure((ncols * self.thumb_inches, nrows * self.thumb_inches + (0.4 if title else 0)))
        fig.clear()
        axes = fig.subplots(nrows, ncols, squeeze=False)
        for ax in axes.flat:
            ax.set_axis_off()
        for ax, img, label in zip(axes.flat, self.images, self.labels, strict=False):
            ax.imshow(img, **im_kw)
            ax.text(0.03, 0.97, label, transform=ax.transAxes, **txt_kw)
        if title:
            fig.suptitle(title, fontsize=10)
        fig.subplots_adjust(left=0.01, right=0.99, bottom=0.01, top=(0.93 if title else 0.99), wspace=0.03, hspace=0.03)
        self.axes_ = axes
        self.figure_ = fig
        return self


def plot_mosaic(
    images: np.ndarray, labels: Sequence[str], ncols: int = 8, title: str | None = None, thumb_inches: float = 1.3
):
    """Draw uint8 images (N, H, W, 3) on a grid, each with its label; returns a matplotlib Figure.

    :meth:`MosaicDisplay.from_images` (same parameters), then :meth:`MosaicDisplay.plot` into a
    new figure.
    """
    return MosaicDisplay.from_images(images, labels, ncols, title, thumb_inches).plot().figure_
