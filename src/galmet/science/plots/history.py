"""The training history: train and validation RMSE per epoch (``history.csv`` of ``galmet train``)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from galmet.errors import DataError
from galmet.science.plots.style import axes_or_new, figure_bytes, merge_kwargs, style, tidy

#: Prefixes of the history columns drawn: ``train_rmse_<target>`` and ``valid_rmse_<target>``.
CURVE_PREFIXES = ("train_rmse_", "valid_rmse_")


class HistoryDisplay:
    """Train and validation RMSE per epoch, one line per history column.

    Build it with :meth:`from_history`, draw it with :meth:`plot`.

    Parameters
    ----------
    epochs : ndarray, shape (E,)
        Epoch numbers.
    curves : dict
        Column name (``train_rmse_<target>`` or ``valid_rmse_<target>``) -> ndarray, shape (E,),
        of RMSE in the target's units (dex).

    Attributes
    ----------
    ax_ : matplotlib Axes
    figure_ : matplotlib Figure
        Set by :meth:`plot`.
    """

    def __init__(self, epochs, curves: dict[str, np.ndarray]):
        self.epochs = epochs
        self.curves = curves

    @classmethod
    def from_history(cls, history: pd.DataFrame) -> HistoryDisplay:
        """The RMSE curves of a training history table (``history.csv``).

        Parameters
        ----------
        history : pandas.DataFrame
            One row per epoch: ``epoch`` (1, 2, ... when missing) and ``train_rmse_<target>``
            / ``valid_rmse_<target>`` columns.

        Raises
        ------
        galmet.errors.DataError
            When the table has no rows or no RMSE column (see :func:`history_png`).
        """
        cols = [c for c in history.columns if c.startswith(CURVE_PREFIXES)]
        if not cols or len(history) == 0:
            raise DataError("training history: no train_rmse_* or valid_rmse_* values to plot")
        epochs = history["epoch"].to_numpy() if "epoch" in history.columns else np.arange(1, len(history) + 1)
        return cls(epochs, {c: history[c].to_numpy() for c in cols})

    def plot(self, ax=None, line_kwargs: dict | None = None) -> HistoryDisplay:
        """Draw the curves.

        Parameters
        ----------
        ax : matplotlib Axes, optional
            Default: the axes of a new 5.5 x 3.4 inch figure.
        line_kwargs : dict, optional
            Merged over the defaults of every curve (``ax.plot``): validation circles and solid
            lines, training squares and dashed lines.

        Returns
        -------
        self
        """
        from matplotlib.ticker import MaxNLocator

        with style():
            ax = axes_or_new(ax, (5.5, 3.4))
            for c, values in self.curves.items():
                which, target = c.split("_rmse_", 1)
                shape = {"marker": "o", "ls": "-"} if which == "valid" else {"marker": "s", "ls": "--"}
                ax.plot(
                    self.epochs,
                    values,
                    **merge_kwargs({**shape, "ms": 4, "label": f"{which} RMSE ({target})"}, line_kwargs),
                )
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.set_xlabel("epoch")
            ax.set_ylabel("RMSE (target units, dex)")
            ax.legend(frameon=False)
            tidy(ax)
        self.ax_ = ax
        self.figure_ = ax.figure
        return self


def plot_history(history: pd.DataFrame, ax=None):
    """The training history as a matplotlib Figure: :meth:`HistoryDisplay.from_history`, then
    :meth:`HistoryDisplay.plot` into ``ax`` or a new figure; returns ``ax``'s figure."""
    return HistoryDisplay.from_history(history).plot(ax=ax).figure_


def history_png(history: pd.DataFrame, dpi: int = 110) -> bytes | None:
    """The training history drawn as PNG bytes (for the HTML report), or None when ``history``
    has no rows or no RMSE column."""
    try:
        display = HistoryDisplay.from_history(history)
    except DataError:
        return None
    return figure_bytes(display.plot().figure_, "png", dpi)
