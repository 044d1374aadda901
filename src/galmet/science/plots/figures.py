"""The paper's six figures, one function each: tables/arrays in, a matplotlib Figure out.

Computing is kept apart from drawing (the statistics come from :mod:`galmet.science.metrics`), and
every function can draw into a caller's axes (``ax=``) or figure (``fig=``), so it works in a
notebook as well as from ``galmet figures``. matplotlib is imported lazily; figures are built
with :class:`matplotlib.figure.Figure` (no pyplot state) and rendered by the Agg backend.

=====  ===========================  =========================================================
Fig    function                     shows
=====  ===========================  =========================================================
1      :func:`plot_image_grid`      thumbnails: lowest/highest predicted, lowest/highest true,
                                    most under/over-predicted, random; Z_pred, Z_true on each
2      :func:`plot_histograms`      Z_true and Z_pred histograms, Freedman-Diaconis bins
3      :func:`plot_pred_vs_true`    2D histogram, running median, RMSE/NMAD bands, 1:1 line,
                                    residual inset, binned RMSE/NMAD panel (area ~ counts)
4      :func:`plot_resolution`      RMSE, NMAD against image size; RF and constant baselines
5      :func:`plot_mass`            predicted vs true mass; Z_MZR (Tremonti) vs Z_true
6      :func:`plot_mzr`             Z_pred vs true mass with running median and scatter,
                                    against Tremonti's median +- 1 sigma
=====  ===========================  =========================================================
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from galmet.errors import DataError, GalmetError
from galmet.io.atomic import atomic_path
from galmet.science.metrics import nmad, rmse
from galmet.science.stats import binned_statistics, fd_bins

#: Below this many points a "2D histogram" is drawn as individual points (a histogram is all noise).
MIN_POINTS_FOR_HIST2D = 500

_STYLE = {
    "font.size": 10,
    "axes.labelsize": 11,
    "axes.titlesize": 11,
    "legend.fontsize": 9,
    "xtick.labelsize": 9,
    "ytick.labelsize": 9,
    "xtick.direction": "in",
    "ytick.direction": "in",
    "xtick.top": True,
    "ytick.right": True,
    "savefig.dpi": 150,
}
_COLORS = {"rmse": "#d62728", "nmad": "#1f77b4", "median": "#ff7f0e", "true": "#333333", "pred": "#1f77b4",
           "tremonti": "#2ca02c", "rf": "#9467bd", "const": "#7f7f7f"}


def _mpl():
    """Import matplotlib (Agg unless pyplot is already in use); a clear error when it is missing."""
    try:
        import matplotlib
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise GalmetError("figures need matplotlib, which is not installed: pip install matplotlib") from exc
    if "matplotlib.pyplot" not in sys.modules:
        matplotlib.use("Agg")
    return matplotlib


@contextlib.contextmanager
def _style():
    mpl = _mpl()
    with mpl.rc_context(_STYLE):
        yield mpl


def _new_figure(figsize):
    from matplotlib.figure import Figure

    return Figure(figsize=figsize, layout=None)


# --- labels --------------------------------------------------------------------------------

_SYMBOLS = {"oh_p50": ("Z", "12 + log(O/H)"), "lgm_tot_p50": (r"\log M_*", r"log M$_*$/M$_\odot$")}


def axis_label(target: str, which: str = "") -> str:
    """Axis label with units, e.g. ``$Z_\\mathrm{true}$ = 12 + log(O/H) (dex)``."""
    sym, desc = _SYMBOLS.get(target, (target.replace("_", r"\_"), target))
    sub = {"true": r"_\mathrm{true}", "pred": r"_\mathrm{pred}", "mzr": r"_\mathrm{MZR}"}.get(which, "")
    if target == "lgm_tot_p50":
        return f"${sym}{sub}$ (dex; M$_*$ in M$_\\odot$)" if sub else "log M$_*$/M$_\\odot$ (dex)"
    if target in _SYMBOLS:
        return f"${sym}{sub}$ = {desc} (dex)"
    return f"{target} {which}".strip()


def _short(target: str, which: str) -> str:
    sym = _SYMBOLS.get(target, (target.replace("_", r"\_"),))[0]
    return f"${sym}_\\mathrm{{{which}}}$"


def _finite_pairs(x, y, what: str) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(x, dtype=float).ravel()
    y = np.asarray(y, dtype=float).ravel()
    if x.shape != y.shape:
        raise DataError(f"{what}: {x.size} x values but {y.size} y values")
    ok = np.isfinite(x) & np.isfinite(y)
    if not ok.any():
        raise DataError(f"{what}: no finite values to plot")
    return x[ok], y[ok]


def _density(ax, x, y, bins=None, cmap="Greys"):
    """A 2D histogram (log colour scale) of y against x, or points when there are few; returns the mappable."""
    from matplotlib.colors import LogNorm

    if x.size < MIN_POINTS_FOR_HIST2D:
        return ax.scatter(x, y, s=8, c="0.35", alpha=0.7, lw=0, rasterized=True, zorder=1)
    if bins is None:
        bx, by = fd_bins(x, max_bins=80), fd_bins(y, max_bins=80)
    else:
        bx = by = bins
    h = ax.hist2d(x, y, bins=[bx, by], cmap=cmap, norm=LogNorm(vmin=1), rasterized=True, zorder=1)
    return h[3]


def _count_colorbar(fig, mappable, cax=None, ax=None):
    from matplotlib.ticker import FuncFormatter, LogLocator

    cb = fig.colorbar(mappable, cax=cax, ax=ax)
    cb.ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    cb.ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    cb.ax.yaxis.set_minor_formatter(FuncFormatter(lambda v, _: ""))
    cb.set_label("galaxies per bin")
    return cb


def _running_bins(x, min_count):
    """FD bins on x, widened until the typical bin holds enough points for a stable median."""
    edges = fd_bins(x, max_bins=40)
    while edges.size > 4 and np.median(np.histogram(x, edges)[0]) < 3 * min_count:
        edges = np.linspace(edges[0], edges[-1], max(3, (edges.size - 1) // 2) + 1)
    return edges


def _stats_box(ax, text, loc="upper left"):
    from matplotlib.offsetbox import AnchoredText

    at = AnchoredText(text, loc=loc, frameon=True, prop={"size": 9})
    at.patch.set_boxstyle("round,pad=0.3")
    at.patch.set_alpha(0.85)
    at.patch.set_edgecolor("0.7")
    ax.add_artist(at)


# --- Figure 1 ------------------------------------------------------------------------------

GRID_CATEGORIES = (
    ("lowest predicted", "lowest\npredicted"),
    ("highest predicted", "highest\npredicted"),
    ("lowest true", "lowest\ntrue"),
    ("highest true", "highest\ntrue"),
    ("most under-predicted", "most under-\npredicted"),
    ("most over-predicted", "most over-\npredicted"),
    ("random", "random"),
)


def select_grid_rows(table: pd.DataFrame, target: str = "oh_p50", n: int = 6, seed: int = 0) -> dict[str, np.ndarray]:
    """Row positions of ``table`` for each Figure 1 category (``n`` each, extreme first).

    Categories: lowest/highest predicted, lowest/highest true, most under-predicted
    (most negative Z_pred - Z_true), most over-predicted, and a seeded random draw.
    """
    t = table[target].to_numpy(dtype=float)
    p = table[f"{target}_pred"].to_numpy(dtype=float)
    if len(t) == 0:
        raise DataError("image grid: no galaxies to show")
    n = min(n, len(t))
    d = p - t
    order = {
        "lowest predicted": np.argsort(p, kind="stable")[:n],
        "highest predicted": np.argsort(-p, kind="stable")[:n],
        "lowest true": np.argsort(t, kind="stable")[:n],
        "highest true": np.argsort(-t, kind="stable")[:n],
        "most under-predicted": np.argsort(d, kind="stable")[:n],
        "most over-predicted": np.argsort(-d, kind="stable")[:n],
        "random": np.sort(np.random.default_rng(seed).choice(len(t), n, replace=False)),
    }
    return order


def plot_image_grid(images: np.ndarray, table: pd.DataFrame, target: str = "oh_p50", n: int = 6,
                    seed: int = 0, fig=None, rows: dict[str, np.ndarray] | None = None):
    """Figure 1: a grid of galaxy thumbnails, one row per category, Z_pred and Z_true on each.

    Parameters
    ----------
    images : ndarray, uint8 (N, H, W, 3)
        Images in the row order of ``table``.
    table : pandas.DataFrame
        ``<target>_pred`` and ``<target>`` per row (dex).
    n : int
        Thumbnails per category (columns).
    seed : int
        Seed of the random row.
    fig : matplotlib Figure, optional
        Draw into this figure (it is cleared); default: a new one.
    rows : dict, optional
        Precomputed :func:`select_grid_rows` (positions in ``table``); lets a caller pass only
        the images and table rows that are shown.
    """
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[0] != len(table):
        raise DataError(f"image grid: {images.shape[0] if images.ndim else 0} images for {len(table)} table rows")
    rows = rows if rows is not None else select_grid_rows(table, target, n, seed)
    n = len(next(iter(rows.values())))
    t = table[target].to_numpy(dtype=float)
    p = table[f"{target}_pred"].to_numpy(dtype=float)
    with _style():
        cell = 1.25
        fig = fig or _new_figure((1.25 + cell * n, 0.35 + cell * len(rows)))
        fig.clear()
        gs = fig.add_gridspec(len(rows), n, left=1.15 / (1.25 + cell * n), right=0.995, top=1 - 0.3 / (0.35 + cell * len(rows)),
                              bottom=0.005, wspace=0.03, hspace=0.03)
        labels = dict(GRID_CATEGORIES)
        for r, (name, idx) in enumerate(rows.items()):
            for c in range(n):
                ax = fig.add_subplot(gs[r, c])
                ax.set_xticks([])
                ax.set_yticks([])
                if c >= len(idx):
                    ax.set_axis_off()
                    continue
                i = idx[c]
                ax.imshow(images[i], interpolation="nearest" if images.shape[1] < 64 else "antialiased")
                ax.text(0.03, 0.03, f"pred {p[i]:.2f}\ntrue {t[i]:.2f}", transform=ax.transAxes, color="white",
                        fontsize=7.5, va="bottom", ha="left", family="monospace",
                        bbox={"boxstyle": "round,pad=0.15", "fc": "black", "ec": "none", "alpha": 0.55})
                if c == 0:
                    ax.set_ylabel(labels[name], fontsize=10, rotation=0, ha="right", va="center", labelpad=6)
        sym = _SYMBOLS.get(target, (target,))[0]
        unit = " (dex)" if target in _SYMBOLS else ""
        fig.suptitle(f"Galaxies by ${sym}$: predicted (pred) and true values{unit}", fontsize=11,
                     y=1 - 0.04 / (0.35 + cell * len(rows)), va="top")
    return fig


# --- Figure 2 ------------------------------------------------------------------------------


def plot_histograms(z_true, z_pred, target: str = "oh_p50", bins=None, ax=None):
    """Figure 2: histograms of the true and predicted labels with common Freedman-Diaconis bins.

    Parameters
    ----------
    z_true, z_pred : array-like (N,)
        True and predicted labels (dex). NaNs are dropped.
    bins : array-like, optional
        Bin edges; default :func:`galmet.science.metrics.fd_bins` of both arrays.
    ax : matplotlib Axes, optional
    """
    t = np.asarray(z_true, dtype=float)
    p = np.asarray(z_pred, dtype=float)
    t, p = t[np.isfinite(t)], p[np.isfinite(p)]
    if t.size == 0 or p.size == 0:
        raise DataError("histograms: no finite values to plot")
    edges = fd_bins(t, p) if bins is None else np.asarray(bins, dtype=float)
    with _style():
        if ax is None:
            fig = _new_figure((5.5, 4.0))
            ax = fig.add_subplot(1, 1, 1)
        ax.hist(t, edges, histtype="stepfilled", color=_COLORS["true"], alpha=0.25, label=f"{_short(target, 'true')} (N = {t.size:,})")
        ax.hist(t, edges, histtype="step", color=_COLORS["true"], lw=1.2)
        ax.hist(p, edges, histtype="step", color=_COLORS["pred"], lw=1.8, label=f"{_short(target, 'pred')}")
        ax.set_xlabel(axis_label(target))
        ax.set_ylabel("galaxies per bin")
        ax.legend(loc="upper left", frameon=False)
        if target == "oh_p50":
            from galmet.science.metrics import HIGH_Z

            ax.axvline(HIGH_Z, color="0.5", ls=":", lw=1)
            _stats_box(ax, f"Z > {HIGH_Z}:\n true {np.mean(t > HIGH_Z):.1%}\n pred {np.mean(p > HIGH_Z):.1%}", loc="upper right")
        ax.set_xlim(edges[0], edges[-1])
        ax.set_ylim(0, None)
        if len(ax.figure.axes) == 1:  # our own figure: tidy it; a caller's layout is left alone
            ax.figure.tight_layout()
    return ax.figure


# --- Figure 3 ------------------------------------------------------------------------------


def pred_vs_true_stats(z_true, z_pred, min_count: int = 10) -> pd.DataFrame:
    """Binned statistics for Figure 3, in Freedman-Diaconis bins of Z_true.

    Returns a table with ``center``, ``count``, ``median`` (of Z_pred), ``rmse`` and ``nmad``
    (of dZ = Z_pred - Z_true) per bin; bins with fewer than ``min_count`` galaxies are NaN.
    """
    t, p = _finite_pairs(z_true, z_pred, "pred vs true")
    edges = _running_bins(t, min_count)
    med = binned_statistics(t, p, edges, ["median"], min_count)
    scat = binned_statistics(t, p - t, edges, ["rmse", "nmad"], min_count)
    return med.join(scat[["rmse", "nmad"]])


def plot_pred_vs_true(z_true, z_pred, target: str = "oh_p50", fig=None, min_count: int | None = None):
    """Figure 3: predicted against true labels.

    Main panel: 2D histogram (points below 500 galaxies), running median of Z_pred in bins of
    Z_true with bands median +- RMSE and +- NMAD, the one-to-one line, and an inset histogram
    of the residuals. Upper panel: RMSE and NMAD per bin, marker area proportional to counts.

    Parameters
    ----------
    z_true, z_pred : array-like (N,)
        True and predicted labels (dex).
    fig : matplotlib Figure, optional
        Draw into this figure (cleared first).
    min_count : int, optional
        Smallest bin shown in the running statistics (default: 10, or 5 below 500 galaxies).
    """
    t, p = _finite_pairs(z_true, z_pred, "pred vs true")
    min_count = min_count or (10 if t.size >= MIN_POINTS_FOR_HIST2D else 5)
    stats = pred_vs_true_stats(t, p, min_count)
    good = stats.dropna(subset=["median"])
    d = p - t
    lo = min(np.percentile(t, 0.2), np.percentile(p, 0.2))
    hi = max(np.percentile(t, 99.8), np.percentile(p, 99.8))
    pad = 0.04 * (hi - lo)
    lim = (lo - pad, hi + pad)
    with _style():
        # sized so the main panel is close to square without set_aspect (which would fight sharex)
        fig = fig or _new_figure((5.8, 6.0))
        fig.clear()
        gs = fig.add_gridspec(2, 2, height_ratios=[1, 3.2], width_ratios=[1, 0.045], hspace=0.05, wspace=0.04,
                              left=0.14, right=0.87, top=0.97, bottom=0.09)
        ax = fig.add_subplot(gs[1, 0])
        top = fig.add_subplot(gs[0, 0], sharex=ax)
        cax = fig.add_subplot(gs[1, 1])
        inside = (t >= lim[0]) & (t <= lim[1]) & (p >= lim[0]) & (p <= lim[1])
        bins = fd_bins(t[inside], p[inside], max_bins=70, range=lim) if inside.sum() else None
        m = _density(ax, t, p, bins)
        if t.size >= MIN_POINTS_FOR_HIST2D:
            _count_colorbar(fig, m, cax)
        else:
            cax.set_axis_off()
        ax.plot(lim, lim, color="k", ls="--", lw=1, label="one-to-one", zorder=3)
        if len(good):
            x, med = good["center"].to_numpy(), good["median"].to_numpy()
            ax.fill_between(x, med - good["rmse"], med + good["rmse"], color=_COLORS["rmse"], alpha=0.18, lw=0,
                            label="median $\\pm$ RMSE", zorder=2)
            ax.fill_between(x, med - good["nmad"], med + good["nmad"], color=_COLORS["nmad"], alpha=0.3, lw=0,
                            label="median $\\pm$ NMAD", zorder=2)
            ax.plot(x, med, color=_COLORS["median"], lw=2, label="running median", zorder=4)
        ax.set_xlim(lim)
        ax.set_ylim(lim)
        ax.set_xlabel(axis_label(target, "true"))
        ax.set_ylabel(axis_label(target, "pred"))
        ax.legend(loc="upper left", frameon=True, framealpha=0.85, edgecolor="0.7")

        inset = ax.inset_axes([0.60, 0.07, 0.37, 0.27])
        ebins = fd_bins(d, max_bins=60, range=tuple(np.percentile(d, [0.5, 99.5])))
        inset.hist(d, ebins, histtype="stepfilled", color="0.55")
        inset.axvline(0, color="k", lw=0.8, ls="--")
        inset.set_yticks([])
        inset.tick_params(labelsize=7.5, top=False)
        inset.set_xlabel(r"$\Delta$ = pred $-$ true (dex)", fontsize=7.5, labelpad=1)
        inset.set_title(f"RMSE {rmse(d):.3f}, NMAD {nmad(d):.3f} dex", fontsize=7.5, pad=2)
        inset.patch.set_alpha(0.9)

        counts = good["count"].to_numpy() if len(good) else np.array([])
        if len(good):
            area = 12 + 150 * counts / counts.max()
            top.scatter(good["center"], good["rmse"], s=area, color=_COLORS["rmse"], label="RMSE", alpha=0.85, zorder=3)
            top.scatter(good["center"], good["nmad"], s=area, color=_COLORS["nmad"], label="NMAD", marker="s",
                        alpha=0.85, zorder=3)
            ymax = float(np.nanmax(good[["rmse", "nmad"]].to_numpy()))
            top.set_ylim(0, 1.6 * ymax if ymax > 0 else 1)  # headroom for the legend
        top.set_ylabel("scatter (dex)")
        top.tick_params(labelbottom=False)
        top.legend(loc="upper center", ncol=2, frameon=False, fontsize=8.5, markerscale=0.6)
        top.text(0.01, 0.96, "marker area\n$\\propto$ galaxies per bin", transform=top.transAxes, fontsize=7,
                 ha="left", va="top", color="0.35")
    return fig


# --- Figure 4 ------------------------------------------------------------------------------


def plot_resolution(table: pd.DataFrame, rf_rmse: float | None = None, constant_rmse: float | None = None,
                    rf_label: str = "random forest (gri)", ax=None, paper_rf: bool = False):
    """Figure 4: RMSE and NMAD of the CNN against image size, with baselines as horizontal lines.

    Parameters
    ----------
    table : pandas.DataFrame
        Columns ``size`` (pixels per side), ``rmse`` and ``nmad`` (dex), as written by
        ``galmet resolution-study``.
    rf_rmse, constant_rmse : float, optional
        Test RMSE of the random-forest and constant-mean baselines (dex).
    paper_rf : bool
        Also draw the paper's random-forest RMSE (0.130 dex) as a dotted line.
    ax : matplotlib Axes, optional
    """
    for col in ("size", "rmse", "nmad"):
        if col not in table.columns:
            raise DataError(f"resolution table has no column {col!r}")
    tab = table.dropna(subset=["rmse"]).sort_values("size")
    if tab.empty:
        raise DataError("resolution table has no finished sizes")
    with _style():
        if ax is None:
            fig = _new_figure((5.6, 4.6))
            ax = fig.add_subplot(1, 1, 1)
        ax.set_xscale("log", base=2)
        ax.plot(tab["size"], tab["rmse"], "o-", color=_COLORS["rmse"], label="CNN RMSE", zorder=3)
        ax.plot(tab["size"], tab["nmad"], "s--", color=_COLORS["nmad"], label="CNN NMAD", zorder=3)
        if rf_rmse is not None:
            ax.axhline(rf_rmse, color=_COLORS["rf"], lw=1.5, label=f"{rf_label} RMSE")
        if constant_rmse is not None:
            ax.axhline(constant_rmse, color=_COLORS["const"], lw=1.5, ls="-.", label="constant mean RMSE")
        if paper_rf:
            from galmet.science.paper import PAPER_RF_GRI_RMSE

            ax.axhline(PAPER_RF_GRI_RMSE, color=_COLORS["rf"], lw=1, ls=":", label="paper's RF RMSE")
        sizes = sorted(set(int(s) for s in tab["size"]))
        ax.set_xticks(sizes)
        ax.set_xticklabels([str(s) for s in sizes])
        ax.minorticks_off()
        ax.set_xlim(min(sizes) / 1.4, max(sizes) * 1.4)
        ax.set_xlabel("image size (pixels per side, after block averaging)")
        ax.set_ylabel("scatter of $\\Delta Z$ (dex)")
        levels = [*tab["rmse"], *tab["nmad"], *(v for v in (rf_rmse, constant_rmse) if v is not None)]
        if paper_rf:
            levels.append(PAPER_RF_GRI_RMSE)
        ax.set_ylim(0, 1.12 * np.nanmax(levels))  # keep every baseline line clear of the frame
        # below the axes: the curves span every size, so any spot inside could hide a point
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.17), ncol=2, frameon=False)
        if len(ax.figure.axes) == 1:
            ax.figure.tight_layout()
    return ax.figure


# --- Figures 5 and 6 -------------------------------------------------------------------------


def plot_mass(mass_true, mass_pred, z_true=None, z_mzr=None, fig=None):
    """Figure 5: CNN stellar mass against the truth and, when given, Z_MZR against Z_true.

    Parameters
    ----------
    mass_true, mass_pred : array-like (N,)
        log stellar mass, true and predicted (dex, solar masses).
    z_true, z_mzr : array-like (M,), optional
        True metallicity and the metallicity implied by the predicted mass through the
        Tremonti MZR (dex).
    fig : matplotlib Figure, optional
    """
    mt, mp = _finite_pairs(mass_true, mass_pred, "mass")
    panels = 2 if z_true is not None and z_mzr is not None else 1
    with _style():
        fig = fig or _new_figure((5.0 * panels, 4.6))
        fig.clear()
        axes = [fig.add_subplot(1, panels, i + 1) for i in range(panels)]
        pairs = [(mt, mp, "lgm_tot_p50")]
        if panels == 2:
            pairs.append((*_finite_pairs(z_true, z_mzr, "Z_MZR"), "oh_p50"))
        for k, (ax, (x, y, target)) in enumerate(zip(axes, pairs)):
            lo = min(np.percentile(x, 0.2), np.percentile(y, 0.2))
            hi = max(np.percentile(x, 99.8), np.percentile(y, 99.8))
            pad = 0.04 * (hi - lo)
            lim = (lo - pad, hi + pad)
            inside = (x >= lim[0]) & (x <= lim[1]) & (y >= lim[0]) & (y <= lim[1])
            _density(ax, x, y, fd_bins(x[inside], y[inside], max_bins=60, range=lim) if inside.sum() else None)
            ax.plot(lim, lim, "k--", lw=1)
            stats = binned_statistics(x, y, _running_bins(x, 10), ["median"], 10).dropna()
            if len(stats):
                ax.plot(stats["center"], stats["median"], color=_COLORS["median"], lw=2, label="running median")
                ax.legend(loc="lower right", frameon=False)
            ax.set_xlim(lim)
            ax.set_ylim(lim)
            ax.set_aspect("equal", adjustable="box")
            d = y - x
            if k == 0:
                ax.set_xlabel(r"true log M$_*$/M$_\odot$ (dex)")
                ax.set_ylabel(r"predicted log M$_*$/M$_\odot$ (dex)")
                _stats_box(ax, f"RMSE {rmse(d):.3f} dex\nNMAD {nmad(d):.3f} dex\nN = {d.size:,}")
            else:
                ax.set_xlabel(axis_label("oh_p50", "true"))
                ax.set_ylabel(axis_label("oh_p50", "mzr"))
                _stats_box(ax, f"$Z_\\mathrm{{MZR}}$ from predicted mass\nRMSE {rmse(d):.3f} dex\nNMAD {nmad(d):.3f} dex")
            ax.set_title(["(a) stellar mass from images", "(b) metallicity via the Tremonti MZR"][k], fontsize=10)
        fig.tight_layout()
    return fig


def plot_mzr(mass_true, z_pred, bins: pd.DataFrame | None = None, z_true=None, ax=None,
             bin_width: float = 0.2, min_count: int = 10):
    """Figure 6: the predicted mass-metallicity relation against Tremonti et al. (2004).

    Z_pred against the true stellar mass as a 2D histogram; its median in ``bin_width`` dex
    mass bins with error bars +- RMSE and +- NMAD of Z_pred about that median (see
    :func:`galmet.science.mzr.mzr_bins`); Tremonti's median relation with its +- 1 sigma
    (0.10 dex) band. With ``z_true`` the median of the true MZR is drawn too.

    Parameters
    ----------
    mass_true : array-like (N,)
        True log stellar mass (dex, solar masses).
    z_pred : array-like (N,)
        Predicted 12 + log(O/H) (dex).
    bins : pandas.DataFrame, optional
        Precomputed :func:`galmet.science.mzr.mzr_bins`; computed when omitted.
    ax : matplotlib Axes, optional
    """
    from galmet.science.paper import TREMONTI_SIGMA, tremonti_mzr

    m, z = _finite_pairs(mass_true, z_pred, "MZR")
    if bins is None:
        from galmet.science.mzr import mzr_bins

        bins = mzr_bins(m, z, bin_width=bin_width, min_count=min_count)
    good = bins.dropna(subset=["median"])
    with _style():
        if ax is None:
            fig = _new_figure((6.0, 4.6))
            ax = fig.add_subplot(1, 1, 1)
        mlo, mhi = np.percentile(m, [0.3, 99.7])
        zlo, zhi = np.percentile(z, [0.3, 99.7])
        mlim = (mlo - 0.1, mhi + 0.1)
        zlim = (min(zlo, float(tremonti_mzr(mlim[0]))) - 0.1, max(zhi, float(tremonti_mzr(min(mlim[1], 11.5)))) + 0.12)
        inside = (m >= mlim[0]) & (m <= mlim[1]) & (z >= zlim[0]) & (z <= zlim[1])
        hb = None
        if inside.sum():
            hb = [fd_bins(m[inside], max_bins=70, range=mlim), fd_bins(z[inside], max_bins=70, range=zlim)]
        if m.size < MIN_POINTS_FOR_HIST2D:
            _density(ax, m, z)
        else:
            from matplotlib.colors import LogNorm

            ax.hist2d(m, z, bins=hb, cmap="Greys", norm=LogNorm(vmin=1), rasterized=True, zorder=1)
        xs = np.linspace(max(mlim[0], 8.5), min(mlim[1], 11.5), 200)
        ax.plot(xs, tremonti_mzr(xs), color=_COLORS["tremonti"], lw=2, label="Tremonti+04 median", zorder=3)
        ax.fill_between(xs, tremonti_mzr(xs) - TREMONTI_SIGMA, tremonti_mzr(xs) + TREMONTI_SIGMA,
                        color=_COLORS["tremonti"], alpha=0.18, lw=0, label=f"Tremonti+04 $\\pm$ {TREMONTI_SIGMA:.2f} dex",
                        zorder=2)
        if len(good):
            x = good["center"].to_numpy()
            med = good["median"].to_numpy()
            dx = 0.12 * bin_width  # side by side, so the two scatter measures stay readable
            ax.errorbar(x + dx, med, yerr=good["rmse"].to_numpy(), fmt="none", ecolor=_COLORS["rmse"], elinewidth=1.5,
                        capsize=2.5, label="$\\pm$ RMSE", zorder=4)
            ax.errorbar(x - dx, med, yerr=good["nmad"].to_numpy(), fmt="none", ecolor=_COLORS["nmad"], elinewidth=1.5,
                        capsize=2.5, label="$\\pm$ NMAD", zorder=5)
            ax.plot(x, med, "o-", color=_COLORS["median"], ms=4, lw=1.5,
                    label=f"median $Z_\\mathrm{{pred}}$ ({bin_width:g} dex bins)", zorder=6)
        if z_true is not None:
            from galmet.science.mzr import mzr_bins

            mt, zt = _finite_pairs(mass_true, z_true, "true MZR")
            tb = mzr_bins(mt, zt, bin_width=bin_width, min_count=min_count).dropna(subset=["median"])
            if len(tb):
                ax.plot(tb["center"], tb["median"], ls=":", color="k", lw=1.5, label="median $Z_\\mathrm{true}$", zorder=6)
        ax.set_xlim(mlim)
        ax.set_ylim(zlim)
        ax.set_xlabel(r"true log M$_*$/M$_\odot$ (dex)")
        ax.set_ylabel(axis_label("oh_p50", "pred"))
        ax.legend(loc="lower right", frameon=True, framealpha=0.85, edgecolor="0.8", fontsize=8)
        if len(ax.figure.axes) == 1:
            ax.figure.tight_layout()
    return ax.figure


# --- saving and the whole set --------------------------------------------------------------


def save_figure(fig, stem: str | os.PathLike, formats: Sequence[str] = ("png", "pdf"), dpi: int = 150) -> list[Path]:
    """Write ``fig`` as ``stem.png`` and ``stem.pdf`` (atomically, never half-written); return the paths."""
    stem = Path(stem)
    paths = []
    for fmt in formats:
        path = stem.with_name(f"{stem.name}.{fmt}")
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=fmt, dpi=dpi, bbox_inches="tight", pad_inches=0.05)
        paths.append(path)
    return paths
