"""Figure 4: RMSE and NMAD of the CNN against image size (with error bars: the spread over the
training seeds, or the test sample's standard error for one seed), the baselines as open markers
(random forest RMSE and NMAD, constant mean), the paper's best case (0.03 dex) as a horizontal
line and, for a synthetic set, its observable oracle and noise floor as horizontal lines.
:func:`plot_study` draws it from a study's table and settings."""

from __future__ import annotations

import numpy as np
import pandas as pd

from galmet.errors import DataError
from galmet.paper import PAPER_BEST_CASE_DEX, PAPER_RF_GRI_RMSE
from galmet.science.plots.style import COLORS, axes_or_new, merge_kwargs, style, tidy


class ResolutionDisplay:
    """Figure 4: the CNN's scatter against image size, with baselines.

    Build it with :meth:`from_table`, draw it with :meth:`plot`.

    Parameters
    ----------
    table : pandas.DataFrame
        Finished sizes only, in increasing ``size`` (pixels per side), with ``rmse`` and
        ``nmad`` (dex) and, when known, their error bars (:func:`error_bars`).
    rf_rmse, constant_rmse : float, optional
        Test RMSE of the random-forest and constant-mean baselines (dex), open markers.
    rf_label : str
        Name of the random forest in the legend.
    paper_rf_rmse : float, optional
        The paper's random-forest RMSE (dex), drawn dotted when given.
    oracle_rmse, noise_floor : float, optional
        A synthetic set's observable-oracle RMSE and noise floor (dex), drawn dotted when given.
    rf_nmad : float, optional
        Test NMAD of the random forest (dex), open squares.
    best_case : float, optional
        The paper's best case (:data:`galmet.paper.PAPER_BEST_CASE_DEX`), a horizontal line;
        None leaves it out.

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
        rf_nmad: float | None = None,
        best_case: float | None = PAPER_BEST_CASE_DEX,
    ):
        self.table = table
        self.rf_rmse = rf_rmse
        self.constant_rmse = constant_rmse
        self.rf_label = rf_label
        self.paper_rf_rmse = paper_rf_rmse
        self.oracle_rmse = oracle_rmse
        self.noise_floor = noise_floor
        self.rf_nmad = rf_nmad
        self.best_case = best_case

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
        rf_nmad: float | None = None,
        best_case: float | None = PAPER_BEST_CASE_DEX,
    ) -> ResolutionDisplay:
        """A resolution study's results table and its baselines.

        Parameters
        ----------
        table : pandas.DataFrame
            Columns ``size`` (pixels per side), ``rmse`` and ``nmad`` (dex), as written by
            ``galmet resolution-study`` (optionally ``seeds``, ``rmse_std``, ``nmad_std``,
            ``rmse_sample_se``, ``nmad_sample_se``: the error bars); sizes without an RMSE
            (unfinished) are dropped.
        rf_rmse, constant_rmse, rf_nmad : float, optional
            Test RMSE of the random-forest and constant-mean baselines, the forest's NMAD (dex).
        paper_rf : bool
            Also draw the paper's random-forest RMSE (0.130 dex) as a dotted line.
        oracle_rmse, noise_floor : float, optional
            A synthetic set's observable oracle (a regressor on the latent quantities its images
            show, without redshift) and noise floor (a perfect image model), dex.
        best_case : float, optional
            The paper's best-case line (dex); None: not drawn.
        """
        for col in ("size", "rmse", "nmad"):
            if col not in table.columns:
                raise DataError(f"resolution table has no column {col!r}")
        tab = table.dropna(subset=["rmse"]).sort_values("size")
        if tab.empty:
            raise DataError("resolution table has no finished sizes")
        paper = PAPER_RF_GRI_RMSE if paper_rf else None
        return cls(tab, rf_rmse, constant_rmse, rf_label, paper, oracle_rmse, noise_floor, rf_nmad, best_case)

    def plot(self, ax=None, rmse_kwargs: dict | None = None, nmad_kwargs: dict | None = None) -> ResolutionDisplay:
        """Draw the figure.

        Parameters
        ----------
        ax : matplotlib Axes, optional
            Default: the axes of a new 5.6 x 4.6 inch figure.
        rmse_kwargs, nmad_kwargs : dict, optional
            Merged over the defaults of the CNN's RMSE and NMAD curves (``ax.plot``); their error
            bars (:func:`error_bars`) take the curves' colours.

        Returns
        -------
        self
        """
        tab = self.table
        rmse_kw = merge_kwargs(
            {"marker": "o", "ls": "-", "color": COLORS["rmse"], "label": "CNN RMSE", "zorder": 3}, rmse_kwargs
        )
        nmad_kw = merge_kwargs(
            {"marker": "s", "ls": "--", "color": COLORS["nmad"], "label": "CNN NMAD", "zorder": 3}, nmad_kwargs
        )
        with style():
            ax = axes_or_new(ax, (5.6, 4.6))
            ax.set_xscale("log", base=2)
            why = error_bars(tab, "rmse")[1]
            for metric, kw in (("rmse", rmse_kw), ("nmad", nmad_kw)):
                ax.plot(tab["size"], tab[metric], **kw)
                err = error_bars(tab, metric)[0]
                if err is not None:
                    color = kw.get("color", kw.get("c"))
                    ax.errorbar(tab["size"], tab[metric], yerr=err, fmt="none", ecolor=color, capsize=3, zorder=3)
            sizes = sorted(set(int(s) for s in tab["size"]))
            self._draw_baselines(ax, sizes)
            self._draw_lines(ax)
            self._axes(ax, sizes, why)
        self.ax_ = ax
        self.figure_ = ax.figure
        return self

    def _draw_baselines(self, ax, sizes: list[int]) -> None:
        """The random forest's RMSE and NMAD and the constant mean's RMSE: open markers at every
        size (they do not depend on it), as the paper drew them."""
        x = np.asarray(sizes, dtype=float)
        marks = [
            (self.rf_rmse, "o", COLORS["rf"], f"{self.rf_label} RMSE"),
            (self.rf_nmad, "s", COLORS["rf"], f"{self.rf_label} NMAD"),
            (self.constant_rmse, "^", COLORS["const"], "constant mean RMSE"),
        ]
        for level, marker, color, label in marks:
            if level is not None and np.isfinite(level):
                ax.plot(
                    x, np.full(x.size, level), ls="none", marker=marker, mfc="none", mec=color, mew=1.3, label=label
                )

    def _draw_lines(self, ax) -> None:
        """Horizontal reference lines: the paper's forest, its best case, a synthetic set's oracle and floor."""
        if self.paper_rf_rmse is not None:
            ax.axhline(self.paper_rf_rmse, color=COLORS["rf"], lw=1, ls=":", label="paper's RF RMSE")
        if self.best_case is not None:
            ax.axhline(self.best_case, color="0.3", lw=1, ls="--", label=f"best case ({self.best_case:g} dex, paper)")
        if self.oracle_rmse is not None:
            ax.axhline(self.oracle_rmse, color="k", lw=1.2, ls=":", label="observable oracle RMSE (no redshift)")
        if self.noise_floor is not None:
            ax.axhline(
                self.noise_floor, color="0.45", lw=1.2, ls=(0, (1, 3)), label="noise floor (perfect image model)"
            )

    def _axes(self, ax, sizes: list[int], why: str) -> None:
        """Ticks at the sizes, labels (with what the error bars are), limits clear of every level, legend."""
        tab = self.table
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
        if why:
            ax.set_title(f"error bars: {why}", fontsize=8)
        extra = (self.rf_rmse, self.rf_nmad, self.constant_rmse, self.paper_rf_rmse, self.oracle_rmse, self.best_case)
        levels = [*tab["rmse"], *tab["nmad"], *(v for v in extra if v is not None)]
        err = error_bars(tab, "rmse")[0]
        top = np.nanmax(levels) if err is None else max(np.nanmax(levels), np.nanmax(tab["rmse"] + err))
        ax.set_ylim(0, 1.12 * top)  # keep every baseline line clear of the frame
        # below the axes: the curves span every size, so any spot inside could hide a point
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=2, frameon=False)
        tidy(ax)


def error_bars(table: pd.DataFrame, metric: str) -> tuple[np.ndarray | None, str]:
    """(1-sigma error bar of ``metric`` per row, dex, or None; what it is, for the figure).

    The standard deviation over the training seeds (``<metric>_std``) where a size has at least
    two (``seeds``); else the test sample's standard error (``<metric>_sample_se``) when the
    table has it; else none.
    """
    seeds = table["seeds"].to_numpy(dtype=float) if "seeds" in table.columns else np.ones(len(table))
    std = table[f"{metric}_std"].to_numpy(dtype=float) if f"{metric}_std" in table.columns else None
    sample = table[f"{metric}_sample_se"].to_numpy(dtype=float) if f"{metric}_sample_se" in table.columns else None
    if std is not None and (seeds >= 2).any():
        fallback = sample if sample is not None else np.zeros(len(table))
        err = np.where(seeds >= 2, std, fallback)
        k = sorted(set(int(s) for s in seeds if s >= 2))
        return np.nan_to_num(err), f"standard deviation over {'/'.join(map(str, k))} training seeds"
    if sample is not None and np.isfinite(sample).any():
        return np.nan_to_num(sample), "standard error over the test galaxies (one training seed)"
    return None, ""


def plot_resolution(
    table: pd.DataFrame,
    rf_rmse: float | None = None,
    constant_rmse: float | None = None,
    rf_label: str = "random forest (gri)",
    ax=None,
    paper_rf: bool = False,
    oracle_rmse: float | None = None,
    noise_floor: float | None = None,
    rf_nmad: float | None = None,
    best_case: float | None = PAPER_BEST_CASE_DEX,
):
    """Figure 4 as a matplotlib Figure: :meth:`ResolutionDisplay.from_table` (same parameters),
    then :meth:`ResolutionDisplay.plot` into ``ax`` or a new figure; returns ``ax``'s figure."""
    disp = ResolutionDisplay.from_table(
        table, rf_rmse, constant_rmse, rf_label, paper_rf, oracle_rmse, noise_floor, rf_nmad, best_case
    )
    return disp.plot(ax=ax).figure_


def plot_study(table: pd.DataFrame, meta: dict, ax=None):
    """Figure 4 of a resolution study: its summary table (``resolution.csv``) and settings
    (``resolution.json``: ``rf_rmse``, ``rf_nmad``, ``constant_rmse``, ``bands``, ``oracle_rmse``,
    ``noise_floor``), as :func:`galmet.science.resolution.read_resolution` returns them."""
    return plot_resolution(
        table,
        meta.get("rf_rmse"),
        meta.get("constant_rmse"),
        rf_label=f"random forest ({meta.get('bands', 'gri')})",
        ax=ax,
        oracle_rmse=meta.get("oracle_rmse"),
        noise_floor=meta.get("noise_floor"),
        rf_nmad=meta.get("rf_nmad"),
    )
