"""The learning-rate range test's curve: loss against lr, with the suggested lrs marked."""

from __future__ import annotations

import numpy as np
import pandas as pd

from galmet.science.plots.style import axes_or_new, merge_kwargs, style, tidy


class LRFindDisplay:
    """The loss of a learning-rate range test against the learning rate (log axis).

    Build it with :meth:`from_result` or :meth:`from_table`, draw it with :meth:`plot`.

    Parameters
    ----------
    table : pandas.DataFrame
        ``lr``, ``loss``, ``smoothed_loss`` per step.
    suggested_lr, steepest_lr : float
        Learning rates marked with vertical lines.
    title : str
        Appended to the title "LR range test".
    units : str
        Units of the loss (an RMSE), for the y label.

    Attributes
    ----------
    ax_ : matplotlib Axes
    figure_ : matplotlib Figure
        Set by :meth:`plot`.
    """

    def __init__(
        self,
        table: pd.DataFrame,
        suggested_lr: float,
        steepest_lr: float,
        title: str = "",
        units: str = "standardised target units",
    ):
        self.table = table
        self.suggested_lr = suggested_lr
        self.steepest_lr = steepest_lr
        self.title = title
        self.units = units

    @classmethod
    def from_table(
        cls,
        table: pd.DataFrame,
        suggested_lr: float,
        steepest_lr: float,
        title: str = "",
        units: str = "standardised target units",
    ) -> LRFindDisplay:
        """The curve of a range test's table (``lr``, ``loss``, ``smoothed_loss`` per step) and its
        suggested and steepest learning rates."""
        return cls(table, suggested_lr, steepest_lr, title, units)

    @classmethod
    def from_result(cls, result, title: str = "", units: str = "standardised target units") -> LRFindDisplay:
        """The curve of a :class:`galmet.training.lr_find.LRFindResult` (its ``table``,
        ``suggested_lr`` and ``steepest_lr``)."""
        return cls.from_table(result.table, result.suggested_lr, result.steepest_lr, title, units)

    def plot(self, ax=None, loss_kwargs: dict | None = None, smoothed_kwargs: dict | None = None) -> LRFindDisplay:
        """Draw the curve.

        Parameters
        ----------
        ax : matplotlib Axes, optional
            Default: the axes of a new 6 x 4 inch figure.
        loss_kwargs, smoothed_kwargs : dict, optional
            Merged over the defaults of the per-step and the smoothed loss lines (``ax.plot``).

        Returns
        -------
        self
        """
        table = self.table
        loss_kw = merge_kwargs({"color": "0.75", "lw": 0.8, "label": "loss per step"}, loss_kwargs)
        smooth_kw = merge_kwargs({"color": "C0", "lw": 1.8, "label": "smoothed loss"}, smoothed_kwargs)
        with style():
            ax = axes_or_new(ax, (6, 4))
            ax.plot(table["lr"], table["loss"], **loss_kw)
            ax.plot(table["lr"], table["smoothed_loss"], **smooth_kw)
            ax.axvline(self.suggested_lr, color="C3", ls="--", label=f"suggested {self.suggested_lr:.2e}")
            ax.axvline(self.steepest_lr, color="C2", ls=":", label=f"steepest {self.steepest_lr:.2e}")
            ax.set_xscale("log")
            # the y range of the smoothed loss after the first steps (the start is noisy), with room above
            shown = table["smoothed_loss"].iloc[max(3, len(table) // 10) :]
            shown = shown[np.isfinite(shown)]
            if len(shown) > 1:
                lo, hi = float(shown.min()), float(shown.iloc[0])
                ax.set_ylim(lo - 0.1 * abs(lo), lo + 2.0 * max(hi - lo, 0.05 * abs(lo)) + 1e-9)
            ax.set_xlabel("learning rate (log scale)")
            ax.set_ylabel(f"training loss: RMSE ({self.units})")
            ax.set_title(f"LR range test{': ' + self.title if self.title else ''}", fontsize=10)
            ax.legend(fontsize=8)
            tidy(ax)
        self.ax_ = ax
        self.figure_ = ax.figure
        return self


def plot_lr_find(
    table, suggested_lr: float, steepest_lr: float, title: str = "", units: str = "standardised target units"
):
    """Loss per step and its smoothed curve against the learning rate (log axis); returns a Figure.

    :meth:`LRFindDisplay.from_table` (same parameters), then :meth:`LRFindDisplay.plot` into a
    new figure.

    Parameters
    ----------
    table : pandas.DataFrame
        ``lr``, ``loss``, ``smoothed_loss`` per step (:class:`galmet.training.lr_find.LRFindResult`).
    suggested_lr, steepest_lr : float
        Marked with vertical lines.
    """
    return LRFindDisplay.from_table(table, suggested_lr, steepest_lr, title, units).plot().figure_
