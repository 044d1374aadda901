"""Figure 6: the predicted mass-metallicity relation against Tremonti et al. (2004).

The binned statistics come from :func:`galmet.science.mzr.mzr_bins`; this module only draws them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from galmet.errors import DataError
from galmet.paper import TREMONTI_SIGMA, tremonti_mzr
from galmet.science.mzr import TREMONTI, MZRRelation, mzr_bins
from galmet.science.plots.placement import data_limits, place_legend
from galmet.science.plots.style import (
    COLORS,
    MIN_POINTS_FOR_HIST2D,
    axes_or_new,
    axis_label,
    count_colorbar,
    density,
    finite_pairs,
    merge_kwargs,
    new_figure,
    style,
    tidy,
)
from galmet.science.stats import fd_bins

#: ``paper``: as the paper drew Figure 6 (running median, median +- RMSE and +- NMAD of
#: Z_pred - MZR(M_true) as dashed lines, an upper panel of that scatter per mass bin);
#: ``galmet``: the earlier single panel (error bars of the scatter about each bin's median, and
#: the median of Z_true).
STYLES = ("paper", "galmet")

MASS_LABEL = r"true log M$_*$/M$_\odot$ (dex)"
#: The stellar masses (dex) over which Tremonti's Eq. 3 is drawn (where his fit holds).
TREMONTI_RANGE = (8.5, 11.5)
#: Legend places of the main panel, in order of preference (the one covering fewest galaxies wins).
PLACES = ("lower right", "upper left", "upper right", "lower left", "center right", "center left")


class MZRDisplay:
    """Figure 6: Z_pred against the true stellar mass, its binned median and scatter, and Tremonti's MZR.

    ``paper`` style (default): Z_pred as a 2D histogram with its colour bar (points below 500
    galaxies); its running median in ``bin_width`` dex mass bins (solid) and median +- RMSE and
    +- NMAD of Z_pred - MZR(M_true) (dashed); Tremonti's Eq. 3 with his +- 1 sigma (0.10 dex, on
    his DR2 sample); the relation the scatter is measured about when it is not Eq. 3; and an
    upper panel with that RMSE and NMAD per mass bin (marker area proportional to the bin's
    galaxies), the same for Z_true (open circles) when given, and Tremonti's sigma dashed.
    ``galmet`` style: one panel, error bars +- RMSE and +- NMAD about each bin's median, and the
    median of Z_true. Build it with :meth:`from_predictions`, draw it with :meth:`plot`.

    Parameters
    ----------
    mass, z_pred : ndarray, shape (N,)
        Finite true log stellar mass (dex, solar masses) and predicted 12 + log(O/H) (dex).
    bins : pandas.DataFrame
        :func:`galmet.science.mzr.mzr_bins` of Z_pred (``center``, ``count``, ``median``,
        ``rmse``, ``nmad``, ``rmse_mzr``, ``nmad_mzr`` per mass bin, dex; NaN in sparse bins).
    bin_width : float
        Width of those mass bins (dex), for the legend and the marker offsets.
    true_bins : pandas.DataFrame, optional
        :func:`~galmet.science.mzr.mzr_bins` of Z_true.
    relation : MZRRelation
        The MZR the scatter is measured about (default Eq. 3).
    style : {"paper", "galmet"}
        See :data:`STYLES`.

    Attributes
    ----------
    ax_ : matplotlib Axes
        The main panel.
    axes_ : dict of matplotlib Axes
        ``main`` and, for the paper style in its own figure, ``scatter`` (upper panel) and
        ``colorbar``.
    figure_ : matplotlib Figure
        Set by :meth:`plot`.
    """

    def __init__(
        self,
        mass,
        z_pred,
        bins: pd.DataFrame,
        bin_width: float = 0.2,
        true_bins: pd.DataFrame | None = None,
        relation: MZRRelation = TREMONTI,
        style: str = "paper",
    ):
        self.mass = mass
        self.z_pred = z_pred
        self.bins = bins
        self.bin_width = bin_width
        self.true_bins = true_bins
        self.relation = relation
        self.style = style

    @classmethod
    def from_predictions(
        cls,
        mass_true,
        z_pred,
        bins: pd.DataFrame | None = None,
        z_true=None,
        bin_width: float = 0.2,
        min_count: int = 10,
        relation: MZRRelation = TREMONTI,
        style: str = "paper",
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
            True 12 + log(O/H) (dex): adds the true MZR's statistics.
        bin_width : float
            Mass bin width (dex); ``min_count`` is the smallest bin with statistics.
        relation : MZRRelation
            The MZR the scatter is measured about (Eq. 3, or one re-fitted on the train split).
        style : {"paper", "galmet"}
            See :data:`STYLES`.
        """
        if style not in STYLES:
            raise DataError(f"MZR figure: style must be one of {', '.join(STYLES)}, got {style!r}")
        m, z = finite_pairs(mass_true, z_pred, "MZR")
        if bins is None:
            bins = mzr_bins(m, z, bin_width=bin_width, min_count=min_count, relation=relation)
        true_bins = None
        if z_true is not None:
            mt, zt = finite_pairs(mass_true, z_true, "true MZR")
            true_bins = mzr_bins(mt, zt, bin_width=bin_width, min_count=min_count, relation=relation)
        return cls(m, z, bins, bin_width, true_bins, relation, style)

    def plot(
        self,
        ax=None,
        median_kwargs: dict | None = None,
        rmse_kwargs: dict | None = None,
        nmad_kwargs: dict | None = None,
        tremonti_kwargs: dict | None = None,
        true_kwargs: dict | None = None,
        fig=None,
    ) -> MZRDisplay:
        """Draw the figure.

        Parameters
        ----------
        ax : matplotlib Axes, optional
            Draw the main panel only, into this axes (no colour bar, no upper panel).
        fig : matplotlib Figure, optional
            Draw the whole figure into this one (cleared first). Default (neither): a new figure,
            6.2 x 6.4 inches (paper style) or 6 x 4.6 (galmet style).
        median_kwargs : dict, optional
            Merged over the defaults of the binned median of Z_pred (``ax.plot``).
        rmse_kwargs, nmad_kwargs : dict, optional
            Merged over the defaults of the +- RMSE and +- NMAD lines (paper) or error bars (galmet).
        tremonti_kwargs : dict, optional
            Merged over the defaults of Tremonti's median line; the +- 1 sigma band takes its colour.
        true_kwargs : dict, optional
            Merged over the defaults of the median of Z_true (galmet style).

        Returns
        -------
        self
        """
        kws = (median_kwargs, rmse_kwargs, nmad_kwargs, tremonti_kwargs, true_kwargs)
        with style():
            if self.style == "galmet":
                ax = axes_or_new(ax, (6.0, 4.6)) if ax is not None or fig is None else _single(fig)
                self._draw_galmet(ax, *kws)
                self.axes_ = {"main": ax}
                tidy(ax)
            elif ax is not None:
                self._draw_paper_main(ax, None, *kws)
                self.axes_ = {"main": ax}
            else:
                fig = fig or new_figure((6.2, 6.4))
                fig.clear()
                margins = {"left": 0.13, "right": 0.86, "top": 0.97, "bottom": 0.08, "hspace": 0.05, "wspace": 0.04}
                gs = fig.add_gridspec(2, 2, height_ratios=[1.15, 3.0], width_ratios=[1, 0.045], **margins)
                ax = fig.add_subplot(gs[1, 0])
                top = fig.add_subplot(gs[0, 0], sharex=ax)
                cax = fig.add_subplot(gs[1, 1])
                self._draw_paper_main(ax, cax, *kws)
                self._draw_scatter_panel(top, rmse_kwargs, nmad_kwargs)
                self.axes_ = {"main": ax, "scatter": top, "colorbar": cax}
        self.ax_ = ax
        self.figure_ = ax.figure
        return self

    # --- paper style -------------------------------------------------------------------------

    def _draw_paper_main(self, ax, cax, median_kwargs, rmse_kwargs, nmad_kwargs, tremonti_kwargs, true_kwargs):
        """Density, Tremonti's relation and band, the running median (solid) and median +- RMSE
        and +- NMAD of Z_pred - MZR(M_true) (dashed)."""
        good = self.bins.dropna(subset=["median"])
        rel = "MZR" if self.relation.name == "tremonti" else "refit MZR"
        med_kw = merge_kwargs(
            {"color": COLORS["median"], "lw": 2, "label": f"median $Z_\\mathrm{{pred}}$ ({self.bin_width:g} dex bins)"},
            median_kwargs,
        )
        rmse_kw = merge_kwargs(
            {
                "color": COLORS["rmse"],
                "ls": "--",
                "lw": 1.3,
                "label": f"median $\\pm$ RMSE of $Z_\\mathrm{{pred}} -$ {rel}",
            },
            rmse_kwargs,
        )
        nmad_kw = merge_kwargs(
            {
                "color": COLORS["nmad"],
                "ls": "--",
                "lw": 1.3,
                "label": f"median $\\pm$ NMAD of $Z_\\mathrm{{pred}} -$ {rel}",
            },
            nmad_kwargs,
        )
        mlim, zlim, mappable = self._draw_density(ax)
        if cax is not None:
            if mappable is not None:
                count_colorbar(ax.figure, mappable, cax)
            else:
                cax.set_axis_off()
        self._draw_tremonti(ax, mlim, tremonti_kwargs)
        if len(good) >= 2:
            x, med = good["center"].to_numpy(), good["median"].to_numpy()
            ax.plot(x, med, zorder=6, **med_kw)
            for col, kw in (("rmse_mzr", rmse_kw), ("nmad_mzr", nmad_kw)):
                ax.plot(x, med + good[col].to_numpy(), zorder=5, **kw)
                ax.plot(x, med - good[col].to_numpy(), zorder=5, **{**kw, "label": None})
        elif len(good) == 1:
            ax.errorbar(
                good["center"],
                good["median"],
                yerr=good["rmse_mzr"],
                fmt="o",
                capsize=3,
                color=med_kw["color"],
                label="median $\\pm$ RMSE",
                zorder=6,
            )
        ax.set_xlim(mlim)
        ax.set_ylim(zlim)
        ax.set_xlabel(MASS_LABEL)
        ax.set_ylabel(axis_label("oh_p50", "pred"))
        place_legend(
            ax, self.mass, self.z_pred, places=PLACES, frameon=True, framealpha=0.85, edgecolor="0.8", fontsize=7.5
        )

    def _draw_scatter_panel(self, top, rmse_kwargs, nmad_kwargs) -> None:
        """RMSE and NMAD of Z_pred - MZR(M_true) per mass bin (area ~ count), Z_true's RMSE (open
        circles) and Tremonti's sigma (dashed)."""
        rmse_c = merge_kwargs({"color": COLORS["rmse"]}, rmse_kwargs)["color"]
        nmad_c = merge_kwargs({"color": COLORS["nmad"]}, nmad_kwargs)["color"]
        good = self.bins.dropna(subset=["median"])
        top.axhline(
            TREMONTI_SIGMA,
            color=COLORS["tremonti"],
            ls="--",
            lw=1.2,
            label=f"Tremonti+04 $\\sigma$ = {TREMONTI_SIGMA:.2f} (DR2)",
        )
        ymax = TREMONTI_SIGMA
        if len(good):
            x, dx = good["center"].to_numpy(), 0.15 * self.bin_width
            area = 12 + 150 * good["count"].to_numpy() / good["count"].max()
            marks = {"s": area, "alpha": 0.85, "zorder": 3}
            top.scatter(x - dx, good["rmse_mzr"], color=rmse_c, label="RMSE", **marks)
            top.scatter(x + dx, good["nmad_mzr"], color=nmad_c, marker="s", label="NMAD", **marks)
            ymax = max(ymax, float(np.nanmax(good[["rmse_mzr", "nmad_mzr"]].to_numpy())))
        if self.true_bins is not None:
            tb = self.true_bins.dropna(subset=["rmse_mzr"])
            if len(tb):
                top.scatter(
                    tb["center"],
                    tb["rmse_mzr"],
                    s=22,
                    facecolors="none",
                    edgecolors="k",
                    lw=0.9,
                    label="$Z_\\mathrm{true}$ RMSE",
                    zorder=4,
                )
                ymax = max(ymax, float(tb["rmse_mzr"].max()))
        top.set_ylim(0, 1.8 * ymax)
        top.set_ylabel("scatter about\nthe MZR (dex)", fontsize=9)
        top.tick_params(labelbottom=False)
        top.legend(
            loc="upper left",
            ncol=2,
            frameon=False,
            fontsize=7,
            markerscale=0.6,
            title="marker area $\\propto$ galaxies per bin",
            title_fontsize=7,
        )

    # --- galmet style (the earlier figure) ---------------------------------------------------

    def _draw_galmet(self, ax, median_kwargs, rmse_kwargs, nmad_kwargs, tremonti_kwargs, true_kwargs) -> None:
        bin_width = self.bin_width
        good = self.bins.dropna(subset=["median"])
        bar = {"fmt": "none", "elinewidth": 1.5, "capsize": 2.5}
        rmse_kw = merge_kwargs({**bar, "ecolor": COLORS["rmse"], "label": "$\\pm$ RMSE", "zorder": 4}, rmse_kwargs)
        nmad_kw = merge_kwargs({**bar, "ecolor": COLORS["nmad"], "label": "$\\pm$ NMAD", "zorder": 5}, nmad_kwargs)
        med_kw = {
            "marker": "o",
            "ls": "-",
            "color": COLORS["median"],
            "ms": 4,
            "lw": 1.5,
            "label": f"median $Z_\\mathrm{{pred}}$ ({bin_width:g} dex bins)",
            "zorder": 6,
        }
        med_kw = merge_kwargs(med_kw, median_kwargs)
        true_kw = merge_kwargs(
            {"ls": ":", "color": "k", "lw": 1.5, "label": "median $Z_\\mathrm{true}$", "zorder": 6}, true_kwargs
        )
        mlim, zlim, _ = self._draw_density(ax)
        self._draw_tremonti(ax, mlim, tremonti_kwargs)
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
        ax.set_xlabel(MASS_LABEL)
        ax.set_ylabel(axis_label("oh_p50", "pred"))
        place_legend(
            ax, self.mass, self.z_pred, places=PLACES, frameon=True, framealpha=0.85, edgecolor="0.8", fontsize=8
        )

    # --- shared ------------------------------------------------------------------------------

    def _draw_tremonti(self, ax, mlim, tremonti_kwargs) -> None:
        """Eq. 3 over 8.5-11.5 with Tremonti's +- 1 sigma band, and the re-fitted relation when
        the scatter is measured about it."""
        trem_kw = merge_kwargs(
            {"color": COLORS["tremonti"], "lw": 2, "label": "Tremonti+04 (Eq. 3)", "zorder": 3}, tremonti_kwargs
        )
        xs = np.linspace(max(mlim[0], TREMONTI_RANGE[0]), min(mlim[1], TREMONTI_RANGE[1]), 200)
        trem = tremonti_mzr(xs)
        ax.plot(xs, trem, **trem_kw)
        band = f"Tremonti+04 $\\pm$ {TREMONTI_SIGMA:.2f} dex ($\\sigma$ of his DR2 sample)"
        kw = {"color": trem_kw.get("color"), "alpha": 0.18, "lw": 0, "label": band, "zorder": 2}
        ax.fill_between(xs, trem - TREMONTI_SIGMA, trem + TREMONTI_SIGMA, **kw)
        if self.relation.name != "tremonti":
            xr = np.linspace(mlim[0], mlim[1], 200)
            ax.plot(xr, self.relation(xr), color="k", ls="-.", lw=1.4, label=self.relation.label, zorder=3)

    def _draw_density(self, ax):
        """Z_pred against mass as a 2D histogram (points below 500 galaxies) in ``ax``.

        Returns the axis limits (dex), each from its data's own range
        (:func:`~galmet.science.plots.placement.data_limits`: the bulk and its ordinary tails, not
        a far outlier), the Z range also covering Tremonti's relation where it is drawn (mass
        8.5-11.5 inside the mass axis); and the histogram's mappable (None for points).
        """
        from matplotlib.colors import LogNorm

        m, z = self.mass, self.z_pred
        mlim = data_limits(m)
        zlo, zhi = data_limits(z)
        drawn = np.linspace(max(mlim[0], TREMONTI_RANGE[0]), min(mlim[1], TREMONTI_RANGE[1]), 50)
        if drawn[0] < drawn[-1]:
            trem = tremonti_mzr(drawn)
            pad = 0.05 * (zhi - zlo)
            zlo, zhi = min(zlo, float(trem.min()) - pad), max(zhi, float(trem.max()) + pad)
        zlim = (zlo, zhi)
        inside = (m >= mlim[0]) & (m <= mlim[1]) & (z >= zlim[0]) & (z <= zlim[1])
        if m.size < MIN_POINTS_FOR_HIST2D or not inside.sum():
            density(ax, m, z)
            return mlim, zlim, None
        hb = [fd_bins(m[inside], max_bins=70, range=mlim), fd_bins(z[inside], max_bins=70, range=zlim)]
        h = ax.hist2d(m, z, bins=hb, cmap="Greys", norm=LogNorm(vmin=1), rasterized=True, zorder=1)
        return mlim, zlim, h[3]


def _single(fig):
    """The one axes of ``fig`` after clearing it."""
    fig.clear()
    return fig.add_subplot(1, 1, 1)


def plot_mzr(
    mass_true,
    z_pred,
    bins: pd.DataFrame | None = None,
    z_true=None,
    ax=None,
    bin_width: float = 0.2,
    min_count: int = 10,
    relation: MZRRelation = TREMONTI,
    style: str = "paper",
    fig=None,
):
    """Figure 6 as a matplotlib Figure: :meth:`MZRDisplay.from_predictions` (same parameters),
    then :meth:`MZRDisplay.plot` into ``ax`` (main panel only), ``fig`` or a new figure; returns
    the figure."""
    disp = MZRDisplay.from_predictions(mass_true, z_pred, bins, z_true, bin_width, min_count, relation, style)
    return disp.plot(ax=ax, fig=fig).figure_
