"""Figure 3: predicted against true labels, with running statistics and a residual inset.

The statistics come from :func:`galmet.science.stats.pred_vs_true_stats` and
:mod:`galmet.science.metrics`; this module only draws them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from galmet.errors import DataError
from galmet.science.metrics import nmad, rmse
from galmet.science.plots.placement import inset_corner, place_legend
from galmet.science.plots.style import (
    COLORS,
    MIN_POINTS_FOR_HIST2D,
    axis_label,
    count_colorbar,
    density,
    finite_pairs,
    merge_kwargs,
    new_figure,
    square_limits,
    style,
)
from galmet.science.stats import fd_bins, paper_fig3_edges, pred_vs_true_stats, running_bins

#: Width and height of the residual inset (fraction of the main panel).
INSET_SIZE = (0.37, 0.24)
#: How Figure 3 bins Z_true: ``paper`` (0.1 dex from 8.2 to 9.2, as the paper), ``adaptive``
#: (galmet's variant: Freedman-Diaconis bins widened until each holds enough galaxies), or
#: ``auto`` (``paper`` for ``oh_p50``, ``adaptive`` for any other target).
BINNINGS = ("auto", "paper", "adaptive")


class PredVsTrueDisplay:
    """Figure 3: predicted against true labels.

    Main panel: 2D histogram (points below 500 galaxies) with its colour bar, running median of
    Z_pred in bins of Z_true (error bars: the standard error of each bin's median) with bands
    median +- RMSE and +- NMAD, the one-to-one line, and an inset histogram of the residuals (in
    the corner with the fewest galaxies; the legend too). Upper panel: RMSE and NMAD per bin
    (side by side, marker area proportional to the bin's galaxies, with a key; error bars: the
    standard error of each bin's RMSE and NMAD), and the global RMSE and NMAD as horizontal
    lines, as the paper drew them.

    Build it with :meth:`from_predictions`, draw it with :meth:`plot`.

    Parameters
    ----------
    z_true, z_pred : ndarray, shape (N,)
        Finite true and predicted labels (dex).
    stats : pandas.DataFrame
        :func:`galmet.science.stats.pred_vs_true_stats` of them: ``lo``, ``hi``, ``center``,
        ``count``, ``median``, ``rmse``, ``nmad`` per bin of Z_true and, when present, their
        standard errors ``median_se``, ``rmse_se``, ``nmad_se`` (dex; NaN in sparse bins).
    rmse, nmad : float
        RMSE and NMAD of all residuals Z_pred - Z_true (dex).
    target : str
        Label name, for the axis labels.
    binning : str
        ``paper`` or ``adaptive`` (how ``stats`` was binned), shown in the upper panel's key.

    Attributes
    ----------
    ax_ : matplotlib Axes
        The main panel.
    axes_ : dict of matplotlib Axes
        ``main``, ``scatter`` (upper panel), ``colorbar``, ``inset``.
    figure_ : matplotlib Figure
        Set by :meth:`plot`.
    """

    def __init__(
        self,
        z_true,
        z_pred,
        stats: pd.DataFrame,
        rmse: float,
        nmad: float,
        target: str = "oh_p50",
        binning: str = "adaptive",
    ):
        self.z_true = z_true
        self.z_pred = z_pred
        self.stats = stats
        self.rmse = rmse
        self.nmad = nmad
        self.target = target
        self.binning = binning

    @classmethod
    def from_predictions(
        cls, z_true, z_pred, target: str = "oh_p50", min_count: int | None = None, binning: str = "auto"
    ) -> PredVsTrueDisplay:
        """The running statistics and overall scatter of predictions against the truth.

        Parameters
        ----------
        z_true, z_pred : array-like, shape (N,)
            True and predicted labels (dex); pairs with a NaN are dropped.
        min_count : int, optional
            Smallest bin shown in the running statistics (default: 10, or 5 below 500 galaxies).
        binning : {"auto", "paper", "adaptive"}
            See :data:`BINNINGS`; ``auto`` is the paper's 0.1 dex bins for ``oh_p50``.
        """
        if binning not in BINNINGS:
            raise DataError(f"pred vs true: binning must be one of {', '.join(BINNINGS)}, got {binning!r}")
        t, p = finite_pairs(z_true, z_pred, "pred vs true")
        min_count = min_count or (10 if t.size >= MIN_POINTS_FOR_HIST2D else 5)
        if binning == "auto":
            binning = "paper" if target == "oh_p50" else "adaptive"
        edges = paper_fig3_edges() if binning == "paper" else running_bins(t, min_count)
        d = p - t
        return cls(t, p, pred_vs_true_stats(t, p, min_count, edges), rmse(d), nmad(d), target, binning)

    def plot(
        self,
        fig=None,
        median_kwargs: dict | None = None,
        rmse_kwargs: dict | None = None,
        nmad_kwargs: dict | None = None,
        diagonal_kwargs: dict | None = None,
    ) -> PredVsTrueDisplay:
        """Draw the figure.

        Parameters
        ----------
        fig : matplotlib Figure, optional
            Draw into this figure (cleared first); default: a new 5.8 x 6 inch one.
        median_kwargs : dict, optional
            Merged over the defaults of the running-median line (``ax.plot``).
        rmse_kwargs, nmad_kwargs : dict, optional
            Merged over the defaults of the median +- RMSE and +- NMAD bands (``ax.fill_between``);
            the upper panel's markers and lines take the bands' colours.
        diagonal_kwargs : dict, optional
            Merged over the defaults of the one-to-one line.

        Returns
        -------
        self
        """
        med_kw = merge_kwargs(
            {"color": COLORS["median"], "lw": 2, "label": "running median", "zorder": 4}, median_kwargs
        )
        rmse_kw = merge_kwargs(
            {"color": COLORS["rmse"], "alpha": 0.18, "lw": 0, "label": "median $\\pm$ RMSE", "zorder": 2}, rmse_kwargs
        )
        nmad_kw = merge_kwargs(
            {"color": COLORS["nmad"], "alpha": 0.3, "lw": 0, "label": "median $\\pm$ NMAD", "zorder": 2}, nmad_kwargs
        )
        diag_kw = merge_kwargs({"color": "k", "ls": "--", "lw": 1, "label": "one-to-one", "zorder": 3}, diagonal_kwargs)
        with style():
            # sized so the main panel is close to square without set_aspect (which would fight sharex)
            fig = fig or new_figure((5.8, 6.4))
            fig.clear()
            margins = {"left": 0.14, "right": 0.87, "top": 0.97, "bottom": 0.08, "hspace": 0.05, "wspace": 0.04}
            gs = fig.add_gridspec(2, 2, height_ratios=[1.25, 3.2], width_ratios=[1, 0.045], **margins)
            ax = fig.add_subplot(gs[1, 0])
            top = fig.add_subplot(gs[0, 0], sharex=ax)
            cax = fig.add_subplot(gs[1, 1])
            self._draw_main(ax, cax, med_kw, rmse_kw, nmad_kw, diag_kw)
            inset = self._draw_inset(ax)
            # where the galaxies are not, and off the inset
            place_legend(ax, self.z_true, self.z_pred, avoid=[inset], frameon=True, framealpha=0.85, edgecolor="0.7")
            self._draw_scatter(top, rmse_kw["color"], nmad_kw["color"])
        self.ax_ = ax
        self.axes_ = {"main": ax, "scatter": top, "colorbar": cax, "inset": inset}
        self.figure_ = fig
        return self

    def _draw_main(self, ax, cax, med_kw: dict, rmse_kw: dict, nmad_kw: dict, diag_kw: dict) -> None:
        """The main panel: density of Z_pred against Z_true (its colour bar in ``cax``), the
        one-to-one line, the running median and its bands (a band needs two bins: one bin is
        drawn as a point with error bars, so the legend lists only what is visible)."""
        t, p = self.z_true, self.z_pred
        good = self.stats.dropna(subset=["median"])
        lim = square_limits(t, p)
        inside = (t >= lim[0]) & (t <= lim[1]) & (p >= lim[0]) & (p <= lim[1])
        bins = fd_bins(t[inside], p[inside], max_bins=70, range=lim) if inside.sum() else None
        m = density(ax, t, p, bins)
        if t.size >= MIN_POINTS_FOR_HIST2D:
            count_colorbar(ax.figure, m, cax)
        else:
            cax.set_axis_off()
        ax.plot(lim, lim, **diag_kw)
        x, med = good["center"].to_numpy(), good["median"].to_numpy()
        if len(good) >= 2:
            ax.fill_between(x, med - good["rmse"], med + good["rmse"], **rmse_kw)
            ax.fill_between(x, med - good["nmad"], med + good["nmad"], **nmad_kw)
            ax.plot(x, med, **med_kw)
            _error_bars(ax, x, med, _column(good, "median_se"), med_kw["color"])
        elif len(good) == 1:
            point = {k: v for k, v in med_kw.items() if k not in ("linewidth", "linestyle", "label")}
            ax.errorbar(x, med, yerr=good["rmse"].to_numpy(), fmt="o", capsize=3, label="median $\\pm$ RMSE", **point)
        ax.set_xlim(lim)
        ax.set_ylim(lim)
        ax.set_xlabel(axis_label(self.target, "true"))
        ax.set_ylabel(axis_label(self.target, "pred"))

    def _draw_inset(self, ax):
        """The histogram of the residuals Z_pred - Z_true in the corner of ``ax`` where it covers the
        fewest galaxies (lower right when that is free, as the paper has it); returns its axes."""
        from matplotlib.ticker import MaxNLocator

        d = self.z_pred - self.z_true
        inset = ax.inset_axes(inset_corner(ax, self.z_true, self.z_pred, INSET_SIZE))
        ebins = fd_bins(d, max_bins=60, range=tuple(np.percentile(d, [0.5, 99.5])))
        inset.hist(d, ebins, histtype="stepfilled", color="0.55")
        inset.axvline(0, color="k", lw=0.8, ls="--")
        inset.set_yticks([])
        inset.xaxis.set_major_locator(MaxNLocator(4))
        inset.tick_params(labelsize=7, top=False, pad=1.5, length=2.5)  # short ticks, close labels:
        inset.set_xlabel(r"$\Delta$ = pred $-$ true (dex)", fontsize=7, labelpad=2.5)  # room for the label
        inset.set_title(f"RMSE {self.rmse:.3f}, NMAD {self.nmad:.3f} dex", fontsize=7.5, pad=2)
        inset.patch.set_alpha(0.9)
        return inset

    def _draw_scatter(self, top, rmse_color, nmad_color) -> None:
        """The upper panel: RMSE and NMAD per bin (side by side, marker area proportional to the
        galaxies in the bin, with a key of marker sizes) and the global RMSE and NMAD as lines."""
        good = self.stats.dropna(subset=["median"])
        top.axhline(self.rmse, color=rmse_color, lw=1, ls="--", zorder=2, label=f"all: RMSE {self.rmse:.3f}")
        top.axhline(self.nmad, color=nmad_color, lw=1, ls=":", zorder=2, label=f"all: NMAD {self.nmad:.3f}")
        ymax = max(self.rmse, self.nmad)
        if len(good):
            widths = (good["hi"] - good["lo"]).to_numpy()
            x = good["center"].to_numpy()
            area = _marker_area(good["count"].to_numpy(), good["count"].max())
            top.scatter(x - 0.18 * widths, good["rmse"], s=area, color=rmse_color, label="RMSE", alpha=0.85, zorder=3)
            _error_bars(top, x - 0.18 * widths, good["rmse"].to_numpy(), _column(good, "rmse_se"), rmse_color)
            _error_bars(top, x + 0.18 * widths, good["nmad"].to_numpy(), _column(good, "nmad_se"), nmad_color)
            top.scatter(
                x + 0.18 * widths,
                good["nmad"],
                s=area,
                color=nmad_color,
                label="NMAD",
                marker="s",
                alpha=0.85,
                zorder=3,
            )
            ymax = max(ymax, float(np.nanmax(good[["rmse", "nmad"]].to_numpy())))
            _size_key(top, int(good["count"].max()))
        top.set_ylim(0, 1.75 * ymax if ymax > 0 else 1)  # headroom for the legends
        top.set_ylabel("scatter (dex)")
        top.tick_params(labelbottom=False)
        bins = "0.1 dex bins" if self.binning == "paper" else "adaptive bins"
        top.legend(
            loc="upper left", ncol=2, frameon=False, fontsize=7.5, markerscale=0.6, title=bins, title_fontsize=7.5
        )


def _column(stats: pd.DataFrame, name: str) -> np.ndarray | None:
    """``stats[name]`` as floats, or None for statistics computed before it existed."""
    return stats[name].to_numpy(dtype=float) if name in stats.columns else None


def _error_bars(ax, x, y, err: np.ndarray | None, color) -> None:
    """Vertical +- ``err`` bars (standard errors, dex) at (x, y); nothing without ``err``."""
    if err is None or not np.isfinite(err).any():
        return
    ax.errorbar(x, y, yerr=np.nan_to_num(err), fmt="none", ecolor=color, elinewidth=1, capsize=2, zorder=4)


def _marker_area(count, largest: float) -> np.ndarray:
    """Marker area (points^2) of bins with ``count`` galaxies: 12 + 150 count / largest."""
    return 12 + 150 * np.asarray(count, dtype=float) / max(float(largest), 1.0)


def _size_key(ax, largest: int) -> None:
    """A second legend, upper right: grey markers of the areas of round galaxy counts."""
    from matplotlib.lines import Line2D

    counts = sorted({c for c in (_round_count(largest), _round_count(largest / 10)) if c >= 1}, reverse=True)
    handles = [
        Line2D([], [], ls="", marker="o", color="0.55", markersize=float(np.sqrt(_marker_area(c, largest))))
        for c in counts
    ]
    key = ax.legend(
        handles,
        [f"{c:,}" for c in counts],
        loc="upper right",
        frameon=False,
        fontsize=7,
        title="galaxies per bin",
        title_fontsize=7,
        handletextpad=0.3,
        borderaxespad=0.2,
        ncol=len(counts),
        columnspacing=0.8,
    )
    ax.add_artist(key)  # so the main legend drawn after does not replace it


def _round_count(v: float) -> int:
    """``v`` rounded down to 1, 2 or 5 times a power of ten."""
    if v < 1:
        return 0
    k = 10 ** int(np.floor(np.log10(v)))
    return int(max(m * k for m in (1, 2, 5) if m * k <= v))


def plot_pred_vs_true(
    z_true, z_pred, target: str = "oh_p50", fig=None, min_count: int | None = None, binning: str = "auto"
):
    """Figure 3 as a matplotlib Figure: :meth:`PredVsTrueDisplay.from_predictions` (same
    parameters), then :meth:`PredVsTrueDisplay.plot` into ``fig`` (cleared) or a new figure."""
    return PredVsTrueDisplay.from_predictions(z_true, z_pred, target, min_count, binning).plot(fig=fig).figure_
