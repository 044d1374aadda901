"""Attribution maps over the cutouts, in a grid like Figure 1: each galaxy as the network sees it,
then the same cutout with its map overlaid; Z_pred and Z_true above each pair.

Grad-CAM maps (non-negative) use a sequential colour map; integrated gradients and occlusion
(signed: red raises Z, blue lowers it) a diverging one, symmetric about zero. Each map is divided
by its own largest |value|, so one colour bar, on the right, reads for every galaxy.
"""

from __future__ import annotations

import math

import numpy as np

from galmet.errors import DataError
from galmet.science.plots.style import SYMBOLS, merge_kwargs, new_figure, style

#: Method name -> title shown on the figure.
TITLES = {
    "gradcam": "Grad-CAM",
    "integrated-gradients": "integrated gradients (red raises Z, blue lowers it)",
    "occlusion": "occlusion (red: hiding it lowers Z)",
}


#: Method name -> label of the colour bar (each map is divided by its own largest |value|).
COLORBAR_LABELS = {
    "gradcam": "Grad-CAM, fraction of the galaxy's maximum",
    "integrated-gradients": "attribution / the galaxy's largest |value|",
    "occlusion": "change of Z / the galaxy's largest |change|",
}


class AttributionGridDisplay:
    """Cutouts and their attribution maps, two panels per galaxy (see the module docstring).

    Build it with :meth:`from_maps`, draw it with :meth:`plot`.

    Parameters
    ----------
    images : ndarray, uint8, shape (N, S, S, 3)
        What the network sees (the central crop).
    maps : ndarray, shape (N, S, S)
        Attribution per pixel.
    z_pred : ndarray, shape (N,)
    z_true : ndarray, shape (N,) or None
    method : str
    target : str

    Attributes
    ----------
    axes_ : list of matplotlib Axes
    colorbar_ : matplotlib Colorbar
        The one colour bar of the maps (each map is divided by its own largest |value|, so 1 is
        each galaxy's strongest pixel; signed methods run from -1 to 1).
    figure_ : matplotlib Figure
    """

    def __init__(self, images, maps, z_pred, z_true, method: str, target: str = "oh_p50"):
        self.images, self.maps, self.z_pred, self.z_true = images, maps, z_pred, z_true
        self.method, self.target = method, target

    @classmethod
    def from_maps(cls, images, maps, z_pred, z_true=None, method: str = "gradcam", target: str = "oh_p50"):
        """Check the shapes; DataError (one line) when images and maps do not match."""
        images, maps = np.asarray(images), np.asarray(maps, dtype=np.float32)
        if images.ndim != 4 or maps.shape != images.shape[:3] or len(images) == 0:
            raise DataError(f"attribution grid: images {images.shape} and maps {maps.shape} do not match")
        z_true = None if z_true is None else np.asarray(z_true, dtype=float)
        return cls(images, maps, np.asarray(z_pred, dtype=float), z_true, method, target)

    def plot(self, fig=None, ncols: int = 4, alpha: float = 0.55, imshow_kwargs: dict | None = None):
        """Draw ``ncols`` galaxies (two panels each) per row into ``fig`` (default: a new figure)."""
        n = len(self.images)
        nrows = math.ceil(n / ncols)
        symbol = SYMBOLS.get(self.target, (self.target, self.target))[0]
        signed = self.method != "gradcam"
        with style():
            fig = fig if fig is not None else new_figure((2 * 1.55 * ncols, 1.75 * nrows + 0.5))
            axes = fig.subplots(nrows, 2 * ncols, squeeze=False)
            mappable = None
            for k in range(nrows * ncols):
                a_img, a_map = axes[k // ncols, 2 * (k % ncols)], axes[k // ncols, 2 * (k % ncols) + 1]
                for a in (a_img, a_map):
                    a.set_xticks([])
                    a.set_yticks([])
                    for side in a.spines.values():
                        side.set_visible(k < n)
                if k >= n:
                    a_img.set_visible(False)
                    a_map.set_visible(False)
                    continue
                a_img.imshow(self.images[k], interpolation="nearest")
                a_map.imshow(self.images[k].mean(-1), cmap="gray", interpolation="nearest")
                m = self.maps[k]
                # each map over its own largest |value|: one colour scale (and bar) for the grid
                scale = float(np.max(np.abs(m))) or 1.0
                style_map = (
                    {"cmap": "RdBu_r", "vmin": -1.0, "vmax": 1.0}
                    if signed
                    else {"cmap": "inferno", "vmin": 0.0, "vmax": 1.0}
                )
                shown = a_map.imshow(
                    m / scale, alpha=alpha, interpolation="bilinear", **merge_kwargs(style_map, imshow_kwargs)
                )
                mappable = mappable or shown
                text = f"pred {self.z_pred[k]:.2f}"
                if self.z_true is not None and np.isfinite(self.z_true[k]):
                    text += f"  true {self.z_true[k]:.2f}"
                a_img.set_title(text, fontsize=7, loc="left")
            fig.suptitle(f"{TITLES.get(self.method, self.method)}; ${symbol}$ in dex", fontsize=9)
            top = 1 - 0.45 / fig.get_figheight()
            right = 1 - 0.75 / fig.get_figwidth()  # room for the colour bar and its label
            fig.subplots_adjust(left=0.01, right=right, bottom=0.01, top=top, wspace=0.04)
            cax = fig.add_axes([right + 0.1 / fig.get_figwidth(), 0.06, 0.12 / fig.get_figwidth(), top - 0.1])
            self.colorbar_ = fig.colorbar(mappable, cax=cax)
            self.colorbar_.solids.set_alpha(1)
            self.colorbar_.set_label(
                COLORBAR_LABELS.get(self.method, "attribution / the galaxy's largest |value|"), fontsize=8
            )
            cax.tick_params(labelsize=7)
        self.axes_ = list(axes.ravel())
        self.figure_ = fig
        return self


def plot_attribution_grid(images, maps, z_pred, z_true=None, method: str = "gradcam", target: str = "oh_p50", fig=None):
    """:meth:`AttributionGridDisplay.from_maps` then :meth:`AttributionGridDisplay.plot`; returns the Figure."""
    return AttributionGridDisplay.from_maps(images, maps, z_pred, z_true, method, target).plot(fig=fig).figure_
