"""The learning-rate range test's curve: loss against lr, with the suggested lrs marked."""

from __future__ import annotations

import numpy as np

from galmet.science.plots.figures import _new_figure, _style


def plot_lr_find(table, suggested_lr: float, steepest_lr: float, title: str = "",
                 units: str = "standardised target units"):
    """Loss per step and its smoothed curve against the learning rate (log axis); returns a Figure.

    Parameters
    ----------
    table : pandas.DataFrame
        ``lr``, ``loss``, ``smoothed_loss`` per step (:class:`galmet.training.lr_find.LRFindResult`).
    suggested_lr, steepest_lr : float
        Marked with vertical lines.
    """
    with _style():
        fig = _new_figure((6, 4))
        ax = fig.add_subplot(1, 1, 1)
        ax.plot(table["lr"], table["loss"], color="0.75", lw=0.8, label="loss per step")
        ax.plot(table["lr"], table["smoothed_loss"], color="C0", lw=1.8, label="smoothed loss")
        ax.axvline(suggested_lr, color="C3", ls="--", label=f"suggested {suggested_lr:.2e}")
        ax.axvline(steepest_lr, color="C2", ls=":", label=f"steepest {steepest_lr:.2e}")
        ax.set_xscale("log")
        shown = table["smoothed_loss"].iloc[max(3, len(table) // 10):]
        shown = shown[np.isfinite(shown)]
        if len(shown) > 1:
            lo, hi = float(shown.min()), float(shown.iloc[0])
            ax.set_ylim(lo - 0.1 * abs(lo), lo + 2.0 * max(hi - lo, 0.05 * abs(lo)) + 1e-9)
        ax.set_xlabel("learning rate (log scale)")
        ax.set_ylabel(f"training loss: RMSE ({units})")
        ax.set_title(f"LR range test{': ' + title if title else ''}", fontsize=10)
        ax.legend(fontsize=8)
        fig.tight_layout()
    return fig
