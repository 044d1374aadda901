"""Binned statistics: Freedman-Diaconis and fixed-width bins, running statistics in bins, and the
statistics and row selections the paper's figures draw.

Numpy and pandas only (no torch, no matplotlib, nothing from :mod:`galmet.science.plots`): the
figures draw what these compute.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from galmet.errors import DataError
from galmet.paper import PAPER_FIG3_BINS
from galmet.science.metrics import NMAD_SCALE, OUTLIER_DEX, OUTLIER_NMAD, rmse_standard_error


def fd_bin_width(x) -> float:
    """Freedman-Diaconis bin width 2 * IQR * n**(-1/3) of the finite values of ``x``.

    Falls back to Scott's rule (3.49 sigma n**(-1/3)) when the IQR is zero, and to 1 when
    every value is the same.
    """
    v = np.asarray(x, dtype=float).ravel()
    v = v[np.isfinite(v)]
    if v.size == 0:
        raise DataError("Freedman-Diaconis bins: no finite values")
    q25, q75 = np.percentile(v, [25, 75])
    width = 2.0 * (q75 - q25) * v.size ** (-1 / 3)
    if width <= 0:
        width = 3.49 * np.std(v) * v.size ** (-1 / 3)
    return float(width) if width > 0 else 1.0


def fd_bins(*arrays, max_bins: int = 200, range: tuple[float, float] | None = None) -> np.ndarray:
    """Common Freedman-Diaconis bin edges for one or more arrays (e.g. Z_true and Z_pred).

    The width is the smallest FD width among the arrays, so both histograms resolve their
    structure; the edges cover all finite values (or ``range``) with at most ``max_bins`` bins.
    """
    if not arrays:
        raise DataError("Freedman-Diaconis bins: no arrays given")
    finite = [np.asarray(a, dtype=float).ravel() for a in arrays]
    finite = [a[np.isfinite(a)] for a in finite]
    if not any(a.size for a in finite):
        raise DataError("Freedman-Diaconis bins: no finite values")
    width = min(fd_bin_width(a) for a in finite if a.size)
    lo, hi = (
        range if range is not None else (min(a.min() for a in finite if a.size), max(a.max() for a in finite if a.size))
    )
    if hi <= lo:
        hi = lo + width
    n = int(np.clip(np.ceil((hi - lo) / width), 1, max_bins))
    return np.linspace(lo, hi, n + 1)


def fixed_width_bins(x, width: float, anchor: float = 0.0) -> np.ndarray:
    """Bin edges of a given width aligned to ``anchor + k * width`` that cover the finite ``x``.

    Used for the paper's 0.2 dex stellar-mass bins (edges at 9.0, 9.2, ...).
    """
    if not width > 0:
        raise DataError(f"bin width must be positive, got {width}")
    v = np.asarray(x, dtype=float).ravel()
    v = v[np.isfinite(v)]
    if v.size == 0:
        raise DataError("fixed-width bins: no finite values")
    k0 = np.floor((v.min() - anchor) / width)
    k1 = np.floor((v.max() - anchor) / width) + 1
    return anchor + np.arange(k0, k1 + 1) * width


def _p16(v):
    return float(np.percentile(v, 16))


def _p84(v):
    return float(np.percentile(v, 84))


#: Statistics available to :func:`binned_statistics` by name; each maps a 1-D array to a float.
STATISTICS: dict[str, Callable[[np.ndarray], float]] = {
    "median": lambda v: float(np.median(v)),
    "mean": lambda v: float(np.mean(v)),
    "std": lambda v: float(np.std(v)),
    "rmse": lambda v: float(np.sqrt(np.mean(v**2))),
    "nmad": lambda v: float(NMAD_SCALE * np.median(np.abs(v - np.median(v)))),
    "bias": lambda v: float(np.median(v)),
    "outlier_fraction": lambda v: float(
        np.mean(
            (np.abs(v) > OUTLIER_NMAD * NMAD_SCALE * np.median(np.abs(v - np.median(v)))) & (np.abs(v) > OUTLIER_DEX)
        )
    ),
    "p16": _p16,
    "p84": _p84,
}


def binned_statistics(
    x,
    y,
    bins,
    statistics: Sequence[str] | Mapping[str, Callable[[np.ndarray], float]] = ("median", "rmse", "nmad"),
    min_count: int = 1,
) -> pd.DataFrame:
    """Statistics of ``y`` in bins of ``x``: the running median, scatter and counts.

    Parameters
    ----------
    x : array-like, shape (N,)
        The binning column (e.g. Z_true or log stellar mass).
    y : array-like, shape (N,)
        The values summarised in each bin (e.g. Z_pred for a running median, or the
        residuals dZ for RMSE / NMAD). Pairs where either is NaN are ignored.
    bins : int or array-like
        Bin edges, or a number of equal-width bins over the range of ``x``.
    statistics : sequence of names in :data:`STATISTICS`, or mapping name -> function
    min_count : int
        Bins with fewer values get NaN statistics (their ``count`` is still reported).

    Returns
    -------
    pandas.DataFrame
        One row per bin: ``lo``, ``hi``, ``center``, ``count`` and one column per statistic.
        Values equal to the last edge fall in the last bin.
    """
    xv = np.asarray(x, dtype=float).ravel()
    yv = np.asarray(y, dtype=float).ravel()
    if xv.shape != yv.shape:
        raise DataError(f"binned statistics: x has {xv.size} values but y has {yv.size}")
    ok = np.isfinite(xv) & np.isfinite(yv)
    xv, yv = xv[ok], yv[ok]
    if np.ndim(bins) == 0:
        if xv.size == 0:
            raise DataError("binned statistics: no finite (x, y) pairs")
        lo, hi = xv.min(), xv.max()
        edges = np.linspace(lo, hi if hi > lo else lo + 1, int(bins) + 1)
    else:
        edges = np.asarray(bins, dtype=float)
    if edges.ndim != 1 or edges.size < 2 or np.any(np.diff(edges) <= 0):
        raise DataError("binned statistics: bin edges must be increasing with at least two edges")
    if isinstance(statistics, Mapping):
        funcs = dict(statistics)
    else:
        unknown = [s for s in statistics if s not in STATISTICS]
        if unknown:
            raise DataError(f"unknown statistic {unknown[0]!r}; choose from {', '.join(STATISTICS)}")
        funcs = {s: STATISTICS[s] for s in statistics}
    idx = np.digitize(xv, edges[1:-1], right=False)
    inside = (xv >= edges[0]) & (xv <= edges[-1])
    rows = []
    for b in range(edges.size - 1):
        v = yv[inside & (idx == b)]
        row = {"lo": edges[b], "hi": edges[b + 1], "center": 0.5 * (edges[b] + edges[b + 1]), "count": int(v.size)}
        for name, f in funcs.items():
            row[name] = f(v) if v.size >= max(min_count, 1) else np.nan
        rows.append(row)
    return pd.DataFrame(rows, columns=["lo", "hi", "center", "count", *funcs])


# --- what the figures draw -------------------------------------------------------------------


def finite_pairs(x, y, what: str) -> tuple[np.ndarray, np.ndarray]:
    """The pairs of ``x`` and ``y`` where both are finite.

    Parameters
    ----------
    x, y : array-like, shape (N,)
        Flattened to 1-D float arrays.
    what : str
        Names the input in the error message.

    Returns
    -------
    x, y : ndarray, shape (M,)
        The finite pairs, M <= N, in their original order.

    Raises
    ------
    galmet.errors.DataError
        When the sizes differ or no pair is finite.
    """
    x = np.asarray(x, dtype=float).ravel()
    y = np.asarray(y, dtype=float).ravel()
    if x.shape != y.shape:
        raise DataError(f"{what}: {x.size} x values but {y.size} y values")
    ok = np.isfinite(x) & np.isfinite(y)
    if not ok.any():
        raise DataError(f"{what}: no finite values to plot")
    return x[ok], y[ok]


def running_bins(x, min_count: int) -> np.ndarray:
    """Bin edges for a running median of something against ``x``.

    Freedman-Diaconis bins on ``x`` (at most 40), halved in number until the median bin holds at
    least ``3 * min_count`` values (a stable median), keeping at least 3 bins.

    Parameters
    ----------
    x : array-like, shape (N,)
        Finite values of the binning column (e.g. Z_true or log stellar mass, dex).
    min_count : int
        Smallest bin a running statistic is reported for.

    Returns
    -------
    ndarray, shape (B + 1,)
        Increasing edges spanning ``x``.
    """
    edges = fd_bins(x, max_bins=40)
    while edges.size > 4 and np.median(np.histogram(x, edges)[0]) < 3 * min_count:
        edges = np.linspace(edges[0], edges[-1], max(3, (edges.size - 1) // 2) + 1)
    return edges


def paper_fig3_edges() -> np.ndarray:
    """The paper's Figure 3 bins of Z_true: 0.1 dex from 8.2 to 9.2 (11 edges)."""
    lo, hi, width = PAPER_FIG3_BINS
    return np.round(np.arange(lo, hi + width / 2, width), 10)


#: Star-formation columns of the MPA-JHU catalogue, measured from the same SDSS fibre spectra as
#: its metallicity (and the log sSFR galmet derives from one of them): their errors are not
#: independent of the label's, see :data:`SSFR_CAVEAT`.
SSFR_FROM_SPECTRA = ("specsfr_tot_p50", "sfr_tot_p50", "log_ssfr_from_sfr")
#: Why a correlation of dZ = Z_pred - Z_true with MPA-JHU's sSFR is not a null test.
SSFR_CAVEAT = (
    "MPA-JHU's SFR, sSFR and 12 + log(O/H) come from the same spectra (H-alpha, the same dust "
    "correction), so their errors correlate and dZ = Z_pred - Z_true correlates with the SFR even for "
    "a perfect model (dZ then is minus the label's error): not a null test. Compare with a photometry-only "
    "model's dZ on the same galaxies (it carries the same term), or use an SFR tracer independent "
    "of the spectra (UV or infrared)"
)


def ssfr_caveat(column: str) -> str | None:
    """:data:`SSFR_CAVEAT` for a star-formation column measured from the label's own spectra
    (:data:`SSFR_FROM_SPECTRA`), else None (e.g. the synthetic catalogue's latent ``log_ssfr``)."""
    return SSFR_CAVEAT if column in SSFR_FROM_SPECTRA else None


#: Standard error of a median over sigma / sqrt(N), for a normal distribution: sqrt(pi / 2).
MEDIAN_SE_FACTOR = float(np.sqrt(np.pi / 2))
#: Standard error of the NMAD over sigma / sqrt(N), for a normal distribution: the median absolute
#: deviation has an asymptotic efficiency of 0.3675 against the standard deviation (whose standard
#: error is sigma / sqrt(2 N)), so 1 / sqrt(2 * 0.3675) = 1.166.
NMAD_SE_FACTOR = float(1 / np.sqrt(2 * 0.3675))


def _robust_sigma(v: np.ndarray) -> float:
    return float(NMAD_SCALE * np.median(np.abs(v - np.median(v))))


def median_standard_error(values) -> float:
    """Standard error of the median of ``values`` (N,): sqrt(pi/2) NMAD / sqrt(N), the normal
    approximation with the NMAD as a robust sigma (NaN below 2 values)."""
    v = np.asarray(values, dtype=float)
    return float(MEDIAN_SE_FACTOR * _robust_sigma(v) / np.sqrt(v.size)) if v.size >= 2 else float("nan")


def nmad_standard_error(values) -> float:
    """Standard error of the NMAD of ``values`` (N,): :data:`NMAD_SE_FACTOR` NMAD / sqrt(N), the
    normal approximation (NaN below 2 values)."""
    v = np.asarray(values, dtype=float)
    return float(NMAD_SE_FACTOR * _robust_sigma(v) / np.sqrt(v.size)) if v.size >= 2 else float("nan")


#: Standard errors of Figure 3's per-bin statistics: column -> function of the bin's values.
BIN_ERRORS = {"rmse_se": rmse_standard_error, "nmad_se": nmad_standard_error}


def pred_vs_true_stats(z_true, z_pred, min_count: int = 10, edges=None) -> pd.DataFrame:
    """Running statistics of predictions in bins of the truth (paper, Figure 3).

    Parameters
    ----------
    z_true, z_pred : array-like, shape (N,)
        True and predicted labels (dex); pairs with a NaN are dropped.
    min_count : int
        Bins with fewer galaxies get NaN statistics; without ``edges`` also sets the bin width
        (:func:`running_bins`).
    edges : array-like, optional
        Bin edges of Z_true (e.g. :func:`paper_fig3_edges`); default :func:`running_bins`.

    Returns
    -------
    pandas.DataFrame
        One row per bin of Z_true: ``lo``, ``hi``, ``center``, ``count``, ``median`` (of Z_pred),
        ``rmse`` and ``nmad`` (of dZ = Z_pred - Z_true), and the standard error of each of the
        three, ``median_se``, ``rmse_se``, ``nmad_se`` (:func:`median_standard_error`,
        :func:`galmet.science.metrics.rmse_standard_error`, :func:`nmad_standard_error`), all in dex.
    """
    t, p = finite_pairs(z_true, z_pred, "pred vs true")
    edges = running_bins(t, min_count) if edges is None else np.asarray(edges, dtype=float)
    centre = {"median": STATISTICS["median"], "median_se": median_standard_error}
    med = binned_statistics(t, p, edges, centre, min_count)
    scatter = {"rmse": STATISTICS["rmse"], "nmad": STATISTICS["nmad"], **BIN_ERRORS}
    scat = binned_statistics(t, p - t, edges, scatter, min_count)
    return med[["lo", "hi", "center", "count", "median"]].join(scat[list(scatter)]).join(med[["median_se"]])


#: The rows of Figure 1 in order: which galaxies :func:`select_grid_rows` picks.
GRID_CATEGORIES = (
    "lowest predicted",
    "highest predicted",
    "lowest true",
    "highest true",
    "most under-predicted",
    "most over-predicted",
    "random",
)


def select_grid_rows(table: pd.DataFrame, target: str = "oh_p50", n: int = 6, seed: int = 0) -> dict[str, np.ndarray]:
    """Row positions of ``table`` for each Figure 1 category (``n`` each, extreme first).

    Categories (:data:`GRID_CATEGORIES`): lowest/highest predicted, lowest/highest true, most
    under-predicted (most negative Z_pred - Z_true), most over-predicted, and a seeded random draw
    (in increasing row order).

    Parameters
    ----------
    table : pandas.DataFrame
        ``<target>`` and ``<target>_pred`` per row (dex).
    n : int
        Rows per category; at most ``len(table)``.
    seed : int
        Seed of the random draw.

    Returns
    -------
    dict
        Category name -> int array, shape (min(n, N),), of positions in ``table``.
    """
    t = table[target].to_numpy(dtype=float)
    p = table[f"{target}_pred"].to_numpy(dtype=float)
    if len(t) == 0:
        raise DataError("image grid: no galaxies to show")
    n = min(n, len(t))
    d = p - t
    sort_keys = {
        "lowest predicted": p,
        "highest predicted": -p,
        "lowest true": t,
        "highest true": -t,
        "most under-predicted": d,
        "most over-predicted": -d,
    }
    order = {name: np.argsort(key, kind="stable")[:n] for name, key in sort_keys.items()}
    order["random"] = np.sort(np.random.default_rng(seed).choice(len(t), n, replace=False))
    return order


# --- statistics at fixed mass (the MZR null tests) -------------------------------------------


def within_bin_residuals(x, y, edges, min_count: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """``y`` minus its mean in each bin of ``x``, and which values were kept.

    Parameters
    ----------
    x, y : array-like, shape (N,)
        The control variable (e.g. log stellar mass, dex) and the variable to residualise.
    edges : array-like, shape (B + 1,)
        Bin edges of ``x``; values outside them, non-finite pairs, and bins with fewer than
        ``min_count`` values are left out.

    Returns
    -------
    (ndarray, ndarray)
        The residuals, float (N,) (NaN where left out), and the bool (N,) mask of kept values.
    """
    xv = np.asarray(x, dtype=float).ravel()
    yv = np.asarray(y, dtype=float).ravel()
    edges = np.asarray(edges, dtype=float)
    idx = np.clip(np.digitize(xv, edges[1:-1]), 0, edges.size - 2)
    ok = np.isfinite(xv) & np.isfinite(yv) & (xv >= edges[0]) & (xv <= edges[-1])
    out = np.full(xv.shape, np.nan)
    for b in range(edges.size - 1):
        sel = ok & (idx == b)
        if sel.sum() >= max(min_count, 2):
            out[sel] = yv[sel] - yv[sel].mean()
    return out, np.isfinite(out)


def partial_correlation(x, y, control, edges, min_count: int = 10) -> dict:
    """Pearson correlation of ``x`` and ``y`` at fixed ``control``, with a 95% interval.

    Both are residualised on ``control`` by subtracting their mean in each bin of it
    (:func:`within_bin_residuals`; bins with fewer than ``min_count`` pairs are left out), then
    correlated. The interval is Fisher's: atanh(r) +- 1.96 / sqrt(n - k - 2) for ``k`` bins
    (each bin mean costs a degree of freedom).

    Returns
    -------
    dict
        ``r``, ``lo``, ``hi`` (the 95% interval), ``n`` (pairs used), ``bins`` (k); ``r`` is NaN
        when fewer than ``k + 4`` pairs are left.
    """
    xv = np.asarray(x, dtype=float).ravel()
    yv = np.asarray(y, dtype=float).ravel()
    cv = np.asarray(control, dtype=float).ravel()
    both = np.isfinite(xv) & np.isfinite(yv) & np.isfinite(cv)
    rx, kept_x = within_bin_residuals(np.where(both, cv, np.nan), xv, edges, min_count)
    ry, kept_y = within_bin_residuals(np.where(both, cv, np.nan), yv, edges, min_count)
    kept = kept_x & kept_y
    n = int(kept.sum())
    idx = np.digitize(cv[kept], np.asarray(edges, dtype=float)[1:-1])
    k = int(np.unique(idx).size)
    if n < k + 4 or np.std(rx[kept]) == 0 or np.std(ry[kept]) == 0:
        return {"r": float("nan"), "lo": float("nan"), "hi": float("nan"), "n": n, "bins": k}
    r = float(np.corrcoef(rx[kept], ry[kept])[0, 1])
    z, half = np.arctanh(np.clip(r, -0.999999, 0.999999)), 1.96 / np.sqrt(n - k - 2)
    return {"r": r, "lo": float(np.tanh(z - half)), "hi": float(np.tanh(z + half)), "n": n, "bins": k}


def pooled_scatter(bin_table: pd.DataFrame, column: str) -> float:
    """sqrt of the count-weighted mean of ``column`` squared over the bins where it is finite:
    the pooled within-bin scatter (dex) of per-bin standard deviations or RMS values."""
    g = bin_table[np.isfinite(bin_table[column].to_numpy(dtype=float))]
    if not len(g) or g["count"].sum() == 0:
        return float("nan")
    return float(np.sqrt(np.average(g[column].to_numpy(dtype=float) ** 2, weights=g["count"])))


#: Narrowest histogram bin of Figure 2's common-bins variant (dex): well below the 0.03 dex
#: measurement error of a metallicity, so it hides nothing, yet never the ~0.003 dex bins a
#: narrow prediction distribution gives.
MIN_HIST_WIDTH = 0.01


def histogram_edges(v, min_width: float = 0.0, max_bins: int = 500, span=None) -> np.ndarray:
    """Freedman-Diaconis bin edges of one array (``np.histogram_bin_edges(v, "fd")``, with the
    Scott fallback of :func:`fd_bin_width` when the IQR is zero), at least ``min_width`` wide.

    Parameters
    ----------
    v : array-like
        Values (NaNs ignored).
    min_width : float
        Floor of the bin width (units of ``v``).
    max_bins : int
        At most this many bins (wider bins otherwise).
    span : (float, float), optional
        Range to cover; default the range of ``v``.
    """
    x = np.asarray(v, dtype=float).ravel()
    x = x[np.isfinite(x)]
    if x.size == 0:
        raise DataError("histogram: no finite values")
    width = max(fd_bin_width(x), float(min_width))
    lo, hi = span if span is not None else (float(x.min()), float(x.max()))
    if hi <= lo:
        hi = lo + width
    n = int(np.clip(np.ceil((hi - lo) / width), 1, max_bins))
    return np.linspace(lo, hi, n + 1)
