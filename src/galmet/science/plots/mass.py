"""Figure 5: CNN stellar mass against the truth and, when given, Z_MZR (metallicity through the
Tremonti relation from the predicted mass) against Z_true."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from galmet.science.metrics import nmad, rmse
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
    stats_box,
    style,
)
from galmet.science.stats import binned_statistics, fd_bins, running_bins

#: Smallest bin of the running median.
MIN_COUNT = 10


@dataclasses.dataclass
class OneToOnePanel:
    """One panel of Figure 5: y against x with the one-to-one line.

    Attributes
    ----------
    x, y : ndarray, shape (N,)
        Finite values (dex).
    running : pandas.DataFrame
        Running median of y in bins of x (``center``, ``median``; sparse bins dropped).
    rmse, nmad : float
        Of y - x (dex).
    """

    x: np.ndarray
    y: np.ndarray
    running: pd.DataFrame
    rmse: float
    nmad: float

    @classmethod
    def from_pairs(cls, x, y, what: str) -> OneToOnePanel:
        """The finite pairs of ``x`` and ``y`` (``what`` names them in errors) and their statistics."""
        x, y = finite_pairs(x, y, what)
        running = binned_statistics(x, y, running_bins(x, MIN_COUNT), ["median"], MIN_COUNT).dropna()
        return cls(x, y, running, rmse(y - x), nmad(y - x))


class MassDisplay:
    """Figure 5: (a) predicted against true stellar mass; (b) optionally Z_MZR against Z_true.

    Each panel: 2D histogram with its colour bar (points below 500 galaxies), one-to-one line,
    running median and RMSE / NMAD of y - x. Build it with :meth:`from_predictions`, draw it with :meth:`plot`.

    Parameters
    ----------
    mass : OneToOnePanel
        Predicted against true log stellar mass (dex, solar masses).
    z_mzr : OneToOnePanel, optional
        Z_MZR against Z_true (dex).

    Attributes
    ----------
    axes_ : list of matplotlib Axes
        One per panel.
    figure_ : matplotlib Figure
        Set by :meth:`plot`.
    """

    def __init__(self, mass: OneToOnePanel, z_mzr: OneToOnePanel | None = None):
        self.mass = mass
        self.z_mzr = z_mzr

    @classmethod
    def from_predictions(cls, mass_true, mass_pred, z_true=None, z_mzr=None) -> MassDisplay:
        """The panels of Figure 5 from true and predicted values.

        Parameters
        ----------
        mass_true, mass_pred : array-like, shape (N,)
            log stellar mass, true and predicted (dex, solar masses).
        z_true, z_mzr : array-like, shape (M,), optional
            True metallicity and the metallicity implied by the predicted mass through the
            Tremonti MZR (dex); the second panel is drawn when both are given.
        """
        mass = OneToOnePanel.from_pairs(mass_true, mass_pred, "mass")
        z = OneToOnePanel.from_pairs(z_true, z_mzr, "Z_MZR") if z_true is not None and z_mzr is not None else None
        return cls(mass, z)

    def plot(self, fig=None, median_kwargs: dict | None = None, diagonal_kwargs: dict | None = None) -> MassDisplay:
        """Draw the figure.

        Parameters
        ----------
        fig : matplotlib Figure, optional
            Draw into this figure (cleared first); default: a new one, 5 x 4.6 inches per panel.
        median_kwargs, diagonal_kwargs : dict, optional
            Merged over the defaults of the running-median line and the one-to-one line.

        Returns
        -------
        self
        """
        panels = [(self.mass, "lgm_tot_p50")] + ([(self.z_mzr, "oh_p50")] if self.z_mzr is not None else [])
        med_kw = merge_kwargs({"color": COLORS["median"], "lw": 2, "label": "running median"}, median_kwargs)
        diag_kw = merge_kwargs({"color": "k", "ls": "--", "lw": 1}, diagonal_kwargs)
        with style():
            fig = fig or new_figure((5.0 * len(panels), 4.6))
            fig.clear()
            axes = [fig.add_subplot(1, len(panels), i + 1) for i in range(len(panels))]
            for k, (ax, (panel, target)) in enumerate(zip(axes, panels, strict=True)):
                x, y = panel.x, panel.y
                lim = square_limits(x, y)
                inside = (x >= lim[0]) & (x <= lim[1]) & (y >= lim[0]) & (y <= lim[1])
                mappable = density(
                    ax, x, y, fd_bins(x[inside], y[inside], max_bins=60, range=lim) if inside.sum() else None
                )
                if x.size >= MIN_POINTS_FOR_HIST2D:
                    count_colorbar(fig, mappable, ax=ax, fraction=0.046, pad=0.03)
                ax.plot(lim, lim, **diag_kw)
                if len(panel.running):
                    ax.plot(panel.running["center"], panel.running["median"], **med_kw)
                    ax.legend(loc="lower right", frameon=False)
                ax.set_xlim(lim)
                ax.set_ylim(lim)
                ax.set_aspect("equal", adjustable="box")
                if k == 0:
                    ax.set_xlabel(r"true log M$_*$/M$_\odot$ (dex)")
                    ax.set_ylabel(r"predicted log M$_*$/M$_\odot$ (dex)")
                    stats_box(ax, f"RMSE {panel.rmse:.3f} dex\nNMAD {panel.nmad:.3f} dex\nN = {x.size:,}")
                else:
                    ax.set_xlabel(axis_label(target, "true"))
                    ax.set_ylabel(axis_label(target, "mzr"))
                    stats_box(
                        ax,
                        f"$Z_\\mathrm{{MZR}}$ from predicted mass\nRMSE {panel.rmse:.3f} dex\n"
                        f"NMAD {panel.nmad:.3f} dex",
                    )
                titles = ["(a) stellar mass from images", "(b) metallicity via the Tremonti MZR (Eq. 3)"]
                ax.set_title(titles[k], fontsize=10)
            fig.tight_layout()
        self.axes_ = axes
        self.figure_ = fig
        return self


def plot_mass(mass_true, mass_pred, z_true=None, z_mzr=None, fig=None):
    """Figure 5 as a matplotlib Figure: :meth:`MassDisplay.from_predictions` (same parameters),
    then :meth:`MassDisplay.plot` into ``fig`` (cleared) or a new figure."""
    return MassDisplay.from_predictions(mass_true, mass_pred, z_true, z_mzr).plot(fig=fig).figure_
