"""Figure 4: RMSE and NMAD of the CNN against image size, with the baselines (and, for a synthetic
set, its observable oracle and noise floor) as horizontal lines."""

from __future__ import annotations

import numpy as np
import pandas as pd

from galmet.errors import DataError
from galmet.paper import PAPER_RF_GRI_RMSE
from galmet.science.plots.style import COLORS, axes_or_new, merge_kwargs, style, tidy


class ResolutionDisplay:
    """Figure 4: the CNN's scatter against image size, with baselines.

    Build it with :meth:`from_table`, draw it with :meth:`plot`.

    Parameters
    ----------
    table : pandas.DataFrame
        Finished sizes only, in increasing ``size`` (pixels per side), with ``rmse`` and
        ``nmad`` (dex).
    rf_rmse, constant_rmse : float, optional
        Test RMSE of the random-forest and constant-mean baselines (dex).
    rf_label : str
        Name of the random forest in the legend.
    paper_rf_rmse : float, optional
        The paper's random-forest RMSE (dex), drawn dotted when given.
    oracle_rmse, noise_floor : float, optional
        A synthetic set's observable-oracle RMSE and noise floor (dex), drawn dotted when given.

    Attributes
    ----------
    ax_ : matplotlib Axes
    figure_ : matplotlib Figure
        Set by :meth:`plot`.
    """

    def __init__(
        self,
        table: pd.DataFrame,
        rf_rmse: float | None = None,
        constant_rmse: float | None = None,
        rf_label: str = "random forest (gri)",
        paper_rf_rmse: float | None = None,
        oracle_rmse: float | None = None,
        noise_floor: float | None = None,
    ):
        self.table = table
        self.rf_rmse = rf_rmse
        self.constant_rmse = constant_rmse
        self.rf_label = rf_label
        self.paper_rf_rmse = paper_rf_rmse
        self.oracle_rmse = oracle_rmse
        self.noise_floor = noise_floor

    @classmethod
    def from_table(
        cls,
        table: pd.DataFrame,
        rf_rmse: float | None = None,
        constant_rmse: float | None = None,
        rf_label: str = "random forest (gri)",
        paper_rf: bool = False,
        oracle_rmse: float | None = None,
        noise_floor: float | None = None,
    ) -> ResolutionDisplay:
        """A resolution study's results table and its baselines.

        Parameters
        ----------
        table : pandas.DataFrame
            Columns ``size`` (pixels per side), ``rmse`` and ``nmad`` (dex), as written by
            ``galmet resolution-study``; sizes without an RMSE (unfinished) are dropped.
        rf_rmse, constant_rmse : float, optional
            Test RMSE of the random-forest and constant-mean baselines (dex).
        paper_rf : bool
            Also draw the paper's random-forest RMSE (0.130 dex) as a dotted line.
        oracle_rmse, noise_floor : float, optional
            A synthetic set's observable oracle (a regressor on the latent quantities its images
            show, without redshift) and noise floor (a perfect image model), dex.
        """
        for col in ("size", "rmse", "nmad"):
            if col not in table.columns:
                raise DataError(f"resolution table has no column {col!r}")
        tab = table.dropna(subset=["rmse"]).sort_values("size")
        if tab.empty:
            raise DataError("resolution table has no finished sizes")
        paper = PAPER_RF_GRI_RMSE if paper_rf else None
        return cls(tab, rf_rmse, constant_rmse, rf_label, paper, oracle_rmse, noise_floor)

    def plot(self, ax=None, rmse_kwargs: dict | None = None, nmad_kwargs: dict | None = None) -> ResolutionDisplay:
        """Draw the figure.

        Parameters
        ----------
        ax : matplotlib Axes, optional
            Default: the axes of a new 5.6 x 4.6 inch figure.
        rmse_kwargs, nmad_kwargs : dict, optional
            Merged over the defaults of the CNN's RMSE and NMAD curves (``ax.plot``).

        Returns
        -------
        self
        """
        tab, rf_rmse, constant_rmse = self.table, self.rf_rmse, self.constant_rmse
        rmse_kw = merge_kwargs(
            {"marker": "o", "ls": "-", "color": COLORS["rmse"], "label": "CNN RMSE", "zorder": 3}, rmse_kwargs
        )
        nmad_kw = merge_kwargs(
            {"marker": "s", "ls": "--", "color": COLORS["nmad"], "label": "CNN NMAD", "zorder": 3}, nmad_kwargs
        )
        with style():
            ax = axes_or_new(ax, (5.6, 4.6))
            ax.set_xscale("log", base=2)
            ax.plot(tab["size"], tab["rmse"], **rmse_kw)
            ax.plot(tab["size"], tab["nmad"], **nmad_kw)
            if rf_rmse is not None:
                ax.axhline(rf_rmse, color=COLORS["rf"], lw=1.5, label=f"{self.rf_label} RMSE")
            if constant_rmse is not None:
                ax.axhline(constant_rmse, color=COLORS["const"], lw=1.5, ls="-.", label="constant mean RMSE")
            if self.paper_rf_rmse is not None:
                ax.axhline(self.paper_rf_rmse, color=COLORS["rf"], lw=1, ls=":", label="paper's RF RMSE")
            if self.oracle_rmse is not None:
                ax.axhline(self.oracle_rmse, color="k", lw=1.2, ls=":", label="observable oracle RMSE (no redshift)")
            if self.noise_floor is not None:
                ax.axhline(
                    self.noise_floor, color="0.45", lw=1.2, ls=(0, (1, 3)), label="noise floor (perfect image model)"
                )
            sizes = sorted(set(int(s) for s in tab["size"]))
            ax.set_xticks(sizes)
            ax.set_xticklabels([str(s) for s in sizes])
            ax.minorticks_off()
            ax.set_xlim(min(sizes) / 1.4, max(sizes) * 1.4)
            replicated = "input_size" in tab.columns and bool((tab["input_size"] != tab["size"]).any())
            ax.set_xlabel(
                "image size s (pixels per side, after block averaging)\n"
                + ("network input: pixel-replicated (galmet's variant)" if replicated else "network input: s x s")
            )
            ax.set_ylabel("scatter of $\\Delta Z$ (dex)")
            levels = [
                *tab["rmse"],
                *tab["nmad"],
                *(v for v in (rf_rmse, constant_rmse, self.paper_rf_rmse, self.oracle_rmse) if v is not None),
            ]
            ax.set_ylim(0, 1.12 * np.nanmax(levels))  # keep every baseline line clear of the frame
            # below the axes: the curves span every size, so any spot inside could hide a point
            ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=2, frameon=False)
            tidy(ax)
        self.ax_ = ax
        self.figure_ = ax.figure
        return self


def plot_resolution(
    table: pd.DataFrame,
    rf_rmse: float | None = None,
    constant_rmse: float | None = None,
    rf_label: str = "random forest (gri)",
    ax=None,
    paper_rf: bool = False,
    oracle_rmse: float | None = None,
    noise_floor: float | None = None,
):
    """Figure 4 as a matplotlib Figure: :meth:`ResolutionDisplay.from_table` (same parameters),
    then :meth:`ResolutionDisplay.plot` into ``ax`` or a new figure; returns ``ax``'s figure."""
    disp = ResolutionDisplay.from_table(table, rf_rmse, constant_rmse, rf_label, paper_rf, oracle_rmse, noise_floor)
    return disp.plot(ax=ax).figure_
