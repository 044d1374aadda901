"""Systematics: bias and scatter of dZ = Z_pred - Z_true against each galaxy property, one panel each.

Per bin (:func:`galmet.science.systematics.systematics`): the bias (median dZ, filled circles) and
the scatter (NMAD, open squares), both with their bootstrap confidence intervals, at the bin's
median property value; a dotted line at zero bias. The panel title gives the Spearman correlation
of dZ with the property; a panel marked ``*`` (MPA-JHU's SFR and sSFR, measured from the same
spectra as the label) is explained in a footnote: its correlation is expected even for a perfect
model.
"""

from __future__ import annotations

import math

import numpy as np

from galmet.errors import DataError
from galmet.science.plots.style import COLORS, merge_kwargs, new_figure, style
from galmet.science.systematics import Systematics


def interval_yerr(value, lo, hi) -> np.ndarray:
    """Error-bar lengths (2, N) below and above ``value`` for the intervals ``[lo, hi]``.

    A bootstrap percentile interval need not contain its point estimate (few resamples, a skewed
    statistic): the side it misses is drawn as zero length, never a negative one (which
    matplotlib refuses); a NaN bound draws no bar on that side.
    """
    v, lo_, hi_ = (np.asarray(a, dtype=float) for a in (value, lo, hi))
    below = np.nan_to_num(np.clip(v - lo_, 0, None), nan=0.0)
    above = np.nan_to_num(np.clip(hi_ - v, 0, None), nan=0.0)
    return np.vstack([below, above])


class SystematicsDisplay:
    """Binned bias and scatter of the residuals against every property (see the module docstring).

    Build it with :meth:`from_result`, draw it with :meth:`plot`.

    Parameters
    ----------
    result : galmet.science.systematics.Systematics

    Attributes
    ----------
    axes_ : list of matplotlib Axes
        One per property, in :data:`galmet.science.systematics.PROPERTIES` order.
    figure_ : matplotlib Figure
    """

    def __init__(self, result: Systematics):
        self.result = result

    @classmethod
    def from_result(cls, result: Systematics) -> SystematicsDisplay:
        """Keep a :class:`~galmet.science.systematics.Systematics` to draw; DataError when it is empty."""
        if result.table.empty:
            raise DataError("systematics figure: no property had enough galaxies to bin")
        return cls(result)

    def plot(self, fig=None, ncols: int = 3, bias_kwargs: dict | None = None, scatter_kwargs: dict | None = None):
        """Draw one panel per property into ``fig`` (default: a new figure, 3.6 x 2.9 inches per panel)."""
        tab = self.result.table
        props = list(dict.fromkeys(tab["property"]))
        nrows = math.ceil(len(props) / ncols)
        level = self.result.settings.get("level", 0.95)
        with style():
            fig = fig if fig is not None else new_figure((3.6 * ncols, 2.9 * nrows))
            axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
            for ax, name in zip(axes, props, strict=False):
                t = tab[tab["property"] == name]
                x = t["x"].to_numpy()
                bias_style = {"fmt": "o", "color": COLORS["median"], "capsize": 2, "ms": 5, "label": "bias (median dZ)"}
                ax.errorbar(
                    x,
                    t["bias"],
                    yerr=interval_yerr(t["bias"], t["bias_lo"], t["bias_hi"]),
                    **merge_kwargs(bias_style, bias_kwargs),
                )
                scatter_style = {
                    "fmt": "s",
                    "mfc": "none",
                    "color": COLORS["nmad"],
                    "capsize": 2,
                    "ms": 5,
                    "label": "scatter (NMAD)",
                }
                ax.errorbar(
                    x,
                    t["scatter"],
                    yerr=interval_yerr(t["scatter"], t["scatter_lo"], t["scatter_hi"]),
                    **merge_kwargs(scatter_style, scatter_kwargs),
                )
                ax.axhline(0, color="0.5", lw=0.8, ls=":")
                ax.set_xlabel(str(t["label"].iloc[0]))
                ax.set_title(_panel_title(self.result.trends.get(name, {})), fontsize=9)
            for ax in axes[len(props) :]:
                ax.set_visible(False)
            axes[0].set_ylabel("dZ (dex)")
            axes[0].legend(frameon=False, fontsize=8)
            fig.suptitle(
                f"dZ = Z_pred - Z_true of {self.result.settings.get('n', '?')} galaxies; "
                f"error bars: {100 * level:.0f}% bootstrap intervals",
                fontsize=10,
            )
            fig.tight_layout()
            _caveat_note(fig, self.result.trends)
        self.axes_ = list(axes[: len(props)])
        self.figure_ = fig
        return self


def _panel_title(trend: dict) -> str:
    """A panel's title: the Spearman correlation of dZ with its property, ``*`` when it has a caveat."""
    rho = trend.get("spearman_rho")
    title = f"rho = {rho:+.2f} (p = {trend['spearman_p']:.1g})" if rho is not None and np.isfinite(rho) else ""
    return title + (" *" if trend.get("caveat") else "")


def _caveat_note(fig, trends: dict) -> None:
    """A footnote under the panels marked ``*``: why their correlation is not a null test."""
    caveats = list(dict.fromkeys(t["caveat"] for t in trends.values() if t.get("caveat")))
    if not caveats:
        return
    import textwrap

    text = "\n".join(textwrap.wrap("* " + " ".join(caveats), width=int(fig.get_figwidth() * 16)))
    height_in = (text.count("\n") + 1) * 7 * 1.25 / 72  # 7-point lines
    fig.subplots_adjust(bottom=fig.subplotpars.bottom + (height_in + 0.05) / fig.get_figheight())
    fig.text(0.01, 0.005, text, fontsize=7, va="bottom", ha="left")


def plot_systematics(result: Systematics, fig=None):
    """:meth:`SystematicsDisplay.from_result` then :meth:`SystematicsDisplay.plot`; returns the Figure."""
    return SystematicsDisplay.from_result(result).plot(fig=fig).figure_
