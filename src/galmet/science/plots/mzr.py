"""Figure 6: the predicted mass-metallicity relation against Tremonti et al. (2004).

The binned statistics come from :func:`galmet.science.mzr.mzr_bins`; this module only draws them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from galmet.paper import TREMONTI_SIGMA, tremonti_mzr
from galmet.science.mzr import mzr_bins
from galmet.science.plots.style import (
    COLORS,
    MIN_POINTS_FOR_HIST2D,
    axes_or_new,
    axis_label,
    density,
    finite_pairs,
    merge_kwargs,
    style,
    tidy,
)
from galmet.science.stats import fd_bins


class MZRDisplay:
    """Figure 6: Z_pred against the true stellar mass, its binned median and scatter, and Tremonti's MZR.

    Z_pred as a 2D histogram (points below 500 galaxies); its median in ``bin_width`` dex mass
    bins with error bars +- RMSE and +- NMAD of Z_pred about that median; Tremonti's median
    relation with its +- 1 sigma (0.10 dex) band; with ``true_bins`` the median of the true MZR.
    Build it with :meth:`from_predictions`, draw it with :meth:`plot`.

    Parameters
    ----------
    mass, z_pred : ndarray, shape (N,)
        Finite true log stellar mass (dex, solar masses) and predicted 12 + log(O/H) (dex).
    bins : pandas.DataFrame
        :func:`galmet.science.mzr.mzr_bins` of Z_pred (``center``, ``median``, ``rmse``,
        ``nmad`` per mass bin, dex; NaN in sparse bins).
    bin_width : float
        Width of those mass bins (dex), for the legend and the error-bar offsets.
    true_bins : pandas.DataFrame, optional
        :func:`~galmet.science.mzr.mzr_bins` of Z_true.

    Attributes
    ----------
    ax_ : matplotlib Axes
    figure_ : matplotlib Figure
        Set by :meth:`plot`.
    """

    def __init__(self, mass, z_pred, bins: pd.DataFrame, bin_width: float = 0.2, true_bins: pd.DataFrame | None = None):
        self.mass = mass
        self.z_pred = z_pred
        self.bins = bins
        self.bin_width = bin_width
        self.true_bins = true_bins

    @classmethod
    def from_predictions(
        cls,
        mass_true,
        z_pred,
        bins: pd.DataFrame | None = None,
        z_true=None,
        bin_width: float = 0.2,
        min_count: int = 10,
    ) -> MZRDisplay:
        """The predicted MZR and its binned statistics.

        Parameters
        ----------
        mass_true : array-like, shape (N,)
            True log stellar mass (dex, solar masses).
        z_pred : array-like, shape (N,)
            Predicted 12 + log(O/H) (dex).
        bins : pandas.DataFrame, optional
            Precomputed :func:`galmet.science.mzr.mzr_bins`; computed when omitted.
        z_true : array-like, shape (N,), optional
            True 12 + log(O/H) (dex): adds the median of the true MZR.
        bin_width : float
            Mass bin width (dex); ``min_count`` is the smallest bin with statistics.
        """
        m, z = finite_pairs(mass_true, z_pred, "MZR")
        if bins is None:
            bins = mzr_bins(m, z, bin_width=bin_width, min_count=min_count)
        true_bins = None
        if z_true is not None:
            mt, zt = finite_pairs(mass_true, z_true, "true MZR")
            true_bins = mzr_bins(mt, zt, bin_width=bin_width, min_count=min_count)
        return cls(m, z, bins, bin_width, true_bins)

    def plot(
        self,
        ax=None,
        median_kwargs: dict | None = None,
        rmse_kwargs: dict | None = None,
        nmad_kwargs: dict | None = None,
        tremonti_kwargs: dict | None = None,
        true_kwargs: dict | None = None,
    ) -> MZRDisplay:
        """Draw the figure.

        Parameters
        ----------
        ax : matplotlib Axes, optional
            Default: the axes of a new 6 x 4.6 inch figure.
        median_kwargs : dict, optional
            Merged over the defaults of the binned median of Z_pred (``ax.plot``).
        rmse_kwargs, nmad_kwargs : dict, optional
            Merged over the defaults of the +- RMSE and +- NMAD error bars (``ax.errorbar``).
        tremonti_kwargs : dict, optional
            Merged over the defaults of Tremonti's median line; the +- 1 sigma band takes its colour.
        true_kwargs : dict, optional
            Merged over the defaults of the median of Z_true.

        Returns
        -------
        self
        """
        bin_width = self.bin_width
        good = self.bins.dropna(subset=["median"])
        trem_kw = merge_kwargs(
            {"color": COLORS["tremonti"], "lw": 2, "label": "Tremonti+04 median", "zorder": 3}, tremonti_kwargs
        )
        bar = {"fmt": "none", "elinewidth": 1.5, "capsize": 2.5}
        rmse_kw = merge_kwargs({**bar, "ecolor": COLORS["rmse"], "label": "$\\pm$ RMSE", "zorder": 4}, rmse_kwargs)
        nmad_kw = merge_kwargs({**bar, "ecolor": COLORS["nmad"], "label": "$\\pm$ NMAD", "zorder": 5}, nmad_kwargs)
        med_label = f"median $Z_\\mathrm{{pred}}$ ({bin_width:g} dex bins)"
        med_kw = {
            "marker": "o",
            "ls": "-",
            "color": COLORS["median"],
            "ms": 4,
            "lw": 1.5,
            "label": med_label,
            "zorder": 6,
        }
        med_kw = merge_kwargs(med_kw, median_kwargs)
        true_kw = merge_kwargs(
            {"ls": ":", "color": "k", "lw": 1.5, "label": "median $Z_\\mathrm{true}$", "zorder": 6}, true_kwargs
        )
        with style():
            ax = axes_or_new(ax, (6.0, 4.6))
            mlim, zlim = self._draw_density(ax)
            xs = np.linspace(max(mlim[0], 8.5), min(mlim[1], 11.5), 200)
            trem = tremonti_mzr(xs)
            ax.plot(xs, trem, **trem_kw)
            band = f"Tremonti+04 $\\pm$ {TREMONTI_SIGMA:.2f} dex"
            kw = {"color": trem_kw.get("color"), "alpha": 0.18, "lw": 0, "label": band, "zorder": 2}
            ax.fill_between(xs, trem - TREMONTI_SIGMA, trem + TREMONTI_SIGMA, **kw)
            if len(good):
                x = good["center"].to_numpy()
                med = good["median"].to_numpy()
                dx = 0.12 * bin_width  # side by side, so the two scatter measures stay readable
                ax.errorbar(x + dx, med, yerr=good["rmse"].to_numpy(), **rmse_kw)
                ax.errorbar(x - dx, med, yerr=good["nmad"].to_numpy(), **nmad_kw)
                ax.plot(x, med, **med_kw)
            if self.true_bins is not None:
                tb = self.true_bins.dropna(subset=["median"])
                if len(tb):
                    ax.plot(tb["center"], tb["median"], **true_kw)
            ax.set_xlim(mlim)
            ax.set_ylim(zlim)
            ax.set_xlabel(r"true log M$_*$/M$_\odot$ (dex)")
            ax.set_ylabel(axis_label("oh_p50", "pred"))
            ax.legend(loc="lower right", frameon=True, framealpha=0.85, edgecolor="0.8", fontsize=8)
            tidy(ax)
        self.ax_ = ax
        self.figure_ = ax.figure
        return self

    def _draw_density(self, ax) -> tuple[tuple[float, float], tuple[float, float]]:
        """Z_pred against mass as a 2D histogram (points below 500 galaxies) in ``ax``.

        Returns the axis limits (dex): the 0.3 to 99.7 percentiles of mass and Z_pred widened
        by 0.1 dex, the Z range also covering Tremonti's relation across the mass range.
        """
        m, z = self.mass, self.z_pred
        mlo, mhi = np.percentile(m, [0.3, 99.7])
        zlo, zhi = np.percentile(z, [0.3, 99.7])
        mlim = (mlo - 0.1, mhi + 0.1)
        zlim = (
            min(zlo, float(tremonti_mzr(mlim[0]))) - 0.1,
            max(zhi, float(tremonti_mzr(min(mlim[1], 11.5)))) + 0.12,
        )
        inside = (m >= mlim[0]) & (m <= mlim[1]) & (z >= zlim[0]) & (z <= zlim[1])
        hb = None
        if inside.sum():
            hb = [fd_bins(m[inside], max_bins=70, range=mlim), fd_bins(z[inside], max_bins=70, range=zlim)]
        if m.size < MIN_POINTS_FOR_HIST2D:
            density(ax, m, z)
        else:
            from matplotlib.colors import LogNorm

            ax.hist2d(m, z, bins=hb, cmap="Greys", norm=LogNorm(vmin=1), rasterized=True, zorder=1)
        return mlim, zlim


def plot_mzr(
    mass_true,
    z_pred,
    bins: pd.DataFrame | None = None,
    z_true=None,
    ax=None,
    bin_width: float = 0.2,
    min_count: int = 10,
):
    """Figure 6 as a matplotlib Figure: :meth:`MZRDisplay.from_predictions` (same parameters),
    then :meth:`MZRDisplay.plot` into ``ax`` or a new figure; returns ``ax``'s figure."""
    return MZRDisplay.from_predictions(mass_true, z_pred, bins, z_true, bin_width, min_count).plot(ax=ax).figure_
