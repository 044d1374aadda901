"""Figure 2: histograms of the true and predicted labels, each in its own Freedman-Diaconis bins as
the paper drew them (or, as a labelled variant, in common bins)."""

from __future__ import annotations

import numpy as np

from galmet.errors import DataError
from galmet.science.metrics import HIGH_Z
from galmet.science.plots.style import (
    COLORS,
    axes_or_new,
    axis_label,
    merge_kwargs,
    short_label,
    stats_box,
    style,
    tidy,
)
from galmet.science.stats import MIN_HIST_WIDTH, histogram_edges

#: How Figure 2 bins: ``paper`` (each histogram its own Freedman-Diaconis bins, heights in
#: galaxies per dex so different bins compare) or ``common`` (galmet's variant: one set of bins,
#: Z_true's Freedman-Diaconis width, at least MIN_HIST_WIDTH dex; heights in galaxies per bin).
BINNINGS = ("paper", "common")


class HistogramsDisplay:
    """Figure 2: histograms of the true and predicted labels.

    Build it with :meth:`from_predictions`, draw it with :meth:`plot`.

    Parameters
    ----------
    z_true, z_pred : ndarray, shape (N,) and (M,)
        Finite true and predicted labels (dex).
    bins : ndarray, shape (B + 1,)
        Bin edges of the Z_true histogram (dex).
    pred_bins : ndarray, shape (C + 1,), optional
        Bin edges of the Z_pred histogram; default ``bins``.
    density : bool
        Heights in galaxies per dex (``paper`` binning, where the two histograms' bins differ)
        instead of galaxies per bin.
    target : str
        Label name, for the axis and legend labels.
    high_z : float, optional
        Threshold marked by a dotted line (dex), with the fractions above it.
    frac_above : tuple of float, optional
        Fractions (0-1) of ``z_true`` and of ``z_pred`` above ``high_z``.

    Attributes
    ----------
    ax_ : matplotlib Axes
    figure_ : matplotlib Figure
        Set by :meth:`plot`.
    """

    def __init__(
        self,
        z_true,
        z_pred,
        bins,
        target: str = "oh_p50",
        high_z: float | None = None,
        frac_above: tuple[float, float] | None = None,
        pred_bins=None,
        density: bool = False,
    ):
        self.z_true = z_true
        self.z_pred = z_pred
        self.bins = bins
        self.pred_bins = bins if pred_bins is None else pred_bins
        self.density = density
        self.target = target
        self.high_z = high_z
        self.frac_above = frac_above

    @classmethod
    def from_predictions(
        cls, z_true, z_pred, target: str = "oh_p50", bins=None, binning: str = "paper"
    ) -> HistogramsDisplay:
        """The histograms of true and predicted labels.

        Parameters
        ----------
        z_true, z_pred : array-like, shape (N,)
            True and predicted labels (dex). NaNs are dropped (from each separately).
        bins : array-like, optional
            Common bin edges for both (overrides ``binning``).
        binning : {"paper", "common"}
            ``paper`` (default): each histogram in its own Freedman-Diaconis bins
            (:func:`galmet.science.stats.histogram_edges`), heights per dex. ``common``: both in
            bins of Z_true's Freedman-Diaconis width, at least
            :data:`~galmet.science.stats.MIN_HIST_WIDTH` dex (a narrow Z_pred no longer shrinks
            the bins to ~0.003 dex).
        target : str
            For ``oh_p50`` the fractions above :data:`galmet.science.metrics.HIGH_Z` are shown.
        """
        if binning not in BINNINGS:
            raise DataError(f"histograms: binning must be one of {', '.join(BINNINGS)}, got {binning!r}")
        t = np.asarray(z_true, dtype=float)
        p = np.asarray(z_pred, dtype=float)
        t, p = t[np.isfinite(t)], p[np.isfinite(p)]
        if t.size == 0 or p.size == 0:
            raise DataError("histograms: no finite values to plot")
        high_z = frac = None
        if target == "oh_p50":
            high_z = HIGH_Z
            frac = (float(np.mean(t > HIGH_Z)), float(np.mean(p > HIGH_Z)))
        if bins is not None:
            return cls(t, p, np.asarray(bins, dtype=float), target, high_z, frac)
        if binning == "paper":
            return cls(t, p, histogram_edges(t), target, high_z, frac, pred_bins=histogram_edges(p), density=True)
        span = (min(t.min(), p.min()), max(t.max(), p.max()))
        return cls(t, p, histogram_edges(t, MIN_HIST_WIDTH, span=span), target, high_z, frac)

    def plot(self, ax=None, true_kwargs: dict | None = None, pred_kwargs: dict | None = None) -> HistogramsDisplay:
        """Draw the histograms.

        Parameters
        ----------
        ax : matplotlib Axes, optional
            Default: the axes of a new 5.5 x 4 inch figure.
        true_kwargs : dict, optional
            Merged over the defaults of the filled ``ax.hist`` of Z_true; its outline takes the
            same colour.
        pred_kwargs : dict, optional
            Merged over the defaults of the step ``ax.hist`` of Z_pred.

        Returns
        -------
        self
        """
        t, p, edges, target = self.z_true, self.z_pred, self.bins, self.target
        true_kw = merge_kwargs(
            {
                "histtype": "stepfilled",
                "color": COLORS["true"],
                "alpha": 0.25,
                "label": f"{short_label(target, 'true')} (N = {t.size:,})",
            },
            true_kwargs,
        )
        pred_kw = merge_kwargs(
            {"histtype": "step", "color": COLORS["pred"], "lw": 1.8, "label": f"{short_label(target, 'pred')}"},
            pred_kwargs,
        )
        pred_edges = self.pred_bins
        if self.density:  # different bins: galaxies per dex compare, counts per bin would not
            true_kw.setdefault("weights", np.full(t.size, 1.0 / np.diff(edges)[0]))
            pred_kw.setdefault("weights", np.full(p.size, 1.0 / np.diff(pred_edges)[0]))
        with style():
            ax = axes_or_new(ax, (5.5, 4.0))
            ax.hist(t, edges, **true_kw)
            ax.hist(t, edges, histtype="step", color=true_kw.get("color"), lw=1.2, weights=true_kw.get("weights"))
            ax.hist(p, pred_edges, **pred_kw)
            ax.set_xlabel(axis_label(target))
            ax.set_ylabel("galaxies per dex" if self.density else "galaxies per bin")
            ax.legend(loc="upper left", frameon=False)
            if self.high_z is not None:
                ax.axvline(self.high_z, color="0.5", ls=":", lw=1)
                if self.frac_above is not None:
                    ft, fp = self.frac_above
                    stats_box(ax, f"Z > {self.high_z}:\n true {ft:.1%}\n pred {fp:.1%}", loc="upper right")
            ax.set_xlim(min(edges[0], pred_edges[0]), max(edges[-1], pred_edges[-1]))
            ax.set_ylim(0, 1.22 * ax.get_ylim()[1])  # headroom: the legend and the box stay clear of the bars
            tidy(ax)
        self.ax_ = ax
        self.figure_ = ax.figure
        return self


def plot_histograms(z_true, z_pred, target: str = "oh_p50", bins=None, ax=None, binning: str = "paper"):
    """Figure 2 as a matplotlib Figure: :meth:`HistogramsDisplay.from_predictions` (same
    parameters), then :meth:`HistogramsDisplay.plot` into ``ax`` or a new figure; returns
    ``ax``'s figure."""
    return HistogramsDisplay.from_predictions(z_true, z_pred, target, bins, binning).plot(ax=ax).figure_
