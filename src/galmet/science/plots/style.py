"""The look shared by every figure, and the helpers that draw it: rc parameters, colours, labels,
the 2D-histogram-or-points density, the count colour bar, the statistics box, and saving.

matplotlib is imported lazily (:func:`mpl`, or inside the helpers), so importing a figure module
imports no matplotlib; figures are :class:`matplotlib.figure.Figure` objects (no pyplot state)
rendered by the Agg backend unless pyplot is already in use.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from galmet._optional import require
from galmet.io.atomic import atomic_path
from galmet.science.stats import fd_bins, finite_pairs

__all__ = [
    "COLORS",
    "MIN_POINTS_FOR_HIST2D",
    "STYLE",
    "SYMBOLS",
    "axes_or_new",
    "axis_label",
    "count_colorbar",
    "density",
    "figure_bytes",
    "finite_pairs",
    "merge_kwargs",
    "mpl",
    "new_figure",
    "save_figure",
    "short_label",
    "square_limits",
    "stats_box",
    "style",
    "tidy",
]

#: Below this many points a "2D histogram" is drawn as individual points (a histogram is all noise).
MIN_POINTS_FOR_HIST2D = 500

#: rc parameters of every figure (see :func:`style`).
STYLE = {
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
#: Colour of each quantity, the same in every figure.
COLORS = {
    "rmse": "#d62728",
    "nmad": "#1f77b4",
    "median": "#ff7f0e",
    "true": "#333333",
    "pred": "#1f77b4",
    "tremonti": "#2ca02c",
    "rf": "#9467bd",
    "const": "#7f7f7f",
}


def require_matplotlib():
    """The ``matplotlib`` module, or a one-line ConfigError naming the ``analysis`` extra. The runs
    that draw call it with their option checks, before any work."""
    return require("matplotlib", "analysis", "figures")


def mpl():
    """Import matplotlib (Agg unless pyplot is already in use); a clear error when it is missing."""
    matplotlib = require_matplotlib()
    if "matplotlib.pyplot" not in sys.modules:
        matplotlib.use("Agg")
    return matplotlib


@contextlib.contextmanager
def style():
    """Context in which figures are drawn: :data:`STYLE` rc parameters; yields matplotlib."""
    matplotlib = mpl()
    with matplotlib.rc_context(STYLE):
        yield matplotlib


def new_figure(figsize):
    """A pyplot-free :class:`matplotlib.figure.Figure` of ``figsize`` (inches), no layout engine."""
    from matplotlib.figure import Figure

    return Figure(figsize=figsize, layout=None)


def axes_or_new(ax, figsize):
    """``ax``, or the single axes of a new figure of ``figsize`` (inches) when ``ax`` is None."""
    if ax is None:
        ax = new_figure(figsize).add_subplot(1, 1, 1)
    return ax


def square_limits(x, y, pad: float = 0.04) -> tuple[float, float]:
    """Common axis limits of a y-against-x plot with a one-to-one line.

    The range of the 0.2 to 99.8 percentiles of both ``x`` and ``y`` (so a few outliers do not
    shrink the bulk), widened by ``pad`` of its width on each side; in their units (dex).
    """
    lo = min(np.percentile(x, 0.2), np.percentile(y, 0.2))
    hi = max(np.percentile(x, 99.8), np.percentile(y, 99.8))
    margin = pad * (hi - lo)
    return lo - margin, hi + margin


def tidy(ax) -> None:
    """``tight_layout`` the figure of ``ax`` when ``ax`` is its only axes (our own figure); a caller's
    layout is left alone."""
    if len(ax.figure.axes) == 1:
        ax.figure.tight_layout()


_ALIASES = {
    "lw": "linewidth",
    "ls": "linestyle",
    "ec": "edgecolor",
    "fc": "facecolor",
    "ms": "markersize",
    "mec": "markeredgecolor",
    "mfc": "markerfacecolor",
    "mew": "markeredgewidth",
    "aa": "antialiased",
}


def merge_kwargs(defaults: Mapping, user: Mapping | None) -> dict:
    """A figure's default artist keywords with the caller's merged over them.

    Short aliases (``lw``, ``ls``, ``ec``, ...) are spelled out first, so a caller's ``linewidth``
    replaces a default ``lw`` instead of clashing with it. ``c`` is left alone: for ``scatter`` it
    is not the same as ``color``.
    """
    out = {_ALIASES.get(k, k): v for k, v in defaults.items()}
    out.update({_ALIASES.get(k, k): v for k, v in (user or {}).items()})
    return out


# --- labels --------------------------------------------------------------------------------

#: Symbol (math text) and description of the labels with a known meaning.
SYMBOLS = {"oh_p50": ("Z", "12 + log(O/H)"), "lgm_tot_p50": (r"\log M_*", r"log M$_*$/M$_\odot$")}


def axis_label(target: str, which: str = "") -> str:
    """Axis label with units, e.g. ``$Z_\\mathrm{true}$ = 12 + log(O/H) (dex)``.

    Parameters
    ----------
    target : str
        Label name (``oh_p50``, ``lgm_tot_p50`` or any other column).
    which : str
        ``"true"``, ``"pred"``, ``"mzr"`` (a subscript) or ``""``.
    """
    sym, desc = SYMBOLS.get(target, (target.replace("_", r"\_"), target))
    sub = {"true": r"_\mathrm{true}", "pred": r"_\mathrm{pred}", "mzr": r"_\mathrm{MZR}"}.get(which, "")
    if target == "lgm_tot_p50":
        return f"${sym}{sub}$ (dex; M$_*$ in M$_\\odot$)" if sub else "log M$_*$/M$_\\odot$ (dex)"
    if target in SYMBOLS:
        return f"${sym}{sub}$ = {desc} (dex)"
    return f"{target} {which}".strip()


def short_label(target: str, which: str) -> str:
    """The symbol alone with a subscript, e.g. ``$Z_\\mathrm{pred}$`` (legend entries)."""
    sym = SYMBOLS.get(target, (target.replace("_", r"\_"),))[0]
    return f"${sym}_\\mathrm{{{which}}}$"


# --- drawing helpers -----------------------------------------------------------------------


def density(ax, x, y, bins=None, cmap="Greys"):
    """A 2D histogram (log colour scale) of y against x, or points when there are few.

    Parameters
    ----------
    x, y : ndarray, shape (N,)
        Finite values.
    bins : array-like, optional
        Edges used on both axes; default Freedman-Diaconis edges of each (at most 80).

    Returns
    -------
    The mappable: the QuadMesh of the histogram, or the PathCollection of the points below
    :data:`MIN_POINTS_FOR_HIST2D` values.
    """
    from matplotlib.colors import LogNorm

    if x.size < MIN_POINTS_FOR_HIST2D:
        return ax.scatter(x, y, s=8, c="0.35", alpha=0.7, lw=0, rasterized=True, zorder=1)
    if bins is None:
        bx, by = fd_bins(x, max_bins=80), fd_bins(y, max_bins=80)
    else:
        bx = by = bins
    h = ax.hist2d(x, y, bins=[bx, by], cmap=cmap, norm=LogNorm(vmin=1), rasterized=True, zorder=1)
    return h[3]


def count_colorbar(fig, mappable, cax=None, ax=None, **kwargs):
    """A colour bar of galaxies per bin for a log-scaled 2D histogram, ticks at 1, 2, 5 x 10^k
    (``kwargs`` go to ``Figure.colorbar``, e.g. ``fraction`` and ``pad`` when it takes room from ``ax``)."""
    from matplotlib.ticker import FuncFormatter, LogLocator

    cb = fig.colorbar(mappable, cax=cax, ax=ax, **kwargs)
    cb.ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    cb.ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    cb.ax.yaxis.set_minor_formatter(FuncFormatter(lambda v, _: ""))
    cb.set_label("galaxies per bin")
    return cb


def stats_box(ax, text: str, loc: str = "upper left"):
    """A rounded, semi-transparent box of ``text`` anchored at ``loc`` in ``ax``; returns it."""
    from matplotlib.offsetbox import AnchoredText

    at = AnchoredText(text, loc=loc, frameon=True, prop={"size": 9})
    at.patch.set_boxstyle("round,pad=0.3")
    at.patch.set_alpha(0.85)
    at.patch.set_edgecolor("0.7")
    ax.add_artist(at)
    return at


# --- saving --------------------------------------------------------------------------------


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


def figure_bytes(fig, fmt: str = "png", dpi: int = 150) -> bytes:
    """``fig`` rendered in the figure style, as the bytes of a ``fmt`` file (e.g. to embed in HTML)."""
    buf = io.BytesIO()
    with style():
        fig.savefig(buf, format=fmt, dpi=dpi)
    return buf.getvalue()
