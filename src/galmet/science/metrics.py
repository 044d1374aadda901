"""Regression metrics for metallicity (or any label) predictions, and binned statistics.

Numpy (and pandas for tables) only: no torch, so figures and reports run anywhere.

All quantities are in the units of the label (dex for ``oh_p50`` and ``lgm_tot_p50``).
Residuals are ``dZ = Z_pred - Z_true``, so a positive bias means over-prediction.

Definitions. The paper (Wu & Boada 2019, section 4) reports these three:

- RMSE = sqrt(mean(dZ**2))
- NMAD = 1.4826 * median(|dZ - median(dZ)|), a robust scatter equal to sigma for a normal
- bias = median(dZ)

The outlier fraction is galmet's addition (the paper defines no outliers): the fraction with
|dZ| > 3 NMAD *and* |dZ| > 0.3 dex, a common photometric-redshift style definition.

Uncertainty of the three (galmet's addition): :func:`bootstrap_metrics` resamples the galaxies
(percentile 68% and 95% intervals and the bootstrap standard error); :func:`rmse_standard_error`
is the delta-method standard error of one RMSE, for binned statistics.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from galmet.columns import pred_column
from galmet.data.labels import describe_exclusions, usable_rows
from galmet.errors import DataError

#: Scale factor that makes the median absolute deviation equal sigma for a normal distribution.
NMAD_SCALE = 1.4826
#: Outliers: |dZ| beyond this many NMAD ...
OUTLIER_NMAD = 3.0
#: ... and |dZ| beyond this many dex.
OUTLIER_DEX = 0.3
#: 12 + log(O/H) above which the paper counts "high-metallicity" galaxies (12.6% true, 5.7% predicted).
HIGH_Z = 9.1


def _values(x, name: str = "values") -> np.ndarray:
    """1-D float array with every value finite; raise DataError (one line) otherwise."""
    arr = np.asarray(x, dtype=float).ravel()
    if arr.size == 0:
        raise DataError(f"{name}: no values to compute a metric on (empty input)")
    bad = ~np.isfinite(arr)
    if bad.any():
        raise DataError(
            f"{name}: {int(bad.sum())} of {arr.size} values are NaN or infinite "
            f"(first at index {int(np.flatnonzero(bad)[0])})"
        )
    return arr


def residuals(y_true, y_pred) -> np.ndarray:
    """dZ = y_pred - y_true as a float array; raise DataError on a shape mismatch, NaN or empty input."""
    t = _values(y_true, "truth")
    p = _values(y_pred, "prediction")
    if t.shape != p.shape:
        raise DataError(f"truth has {t.size} values but prediction has {p.size}")
    return p - t


def rmse(dz) -> float:
    """Root-mean-square of residuals ``dz`` (dex)."""
    d = _values(dz, "residuals")
    return float(np.sqrt(np.mean(d**2)))


def nmad(dz) -> float:
    """Normalised median absolute deviation 1.4826 * median(|dz - median(dz)|) (dex)."""
    d = _values(dz, "residuals")
    return float(NMAD_SCALE * np.median(np.abs(d - np.median(d))))


def median_bias(dz) -> float:
    """Median residual (dex); positive means the predictions are too high."""
    return float(np.median(_values(dz, "residuals")))


def outlier_mask(dz, n_nmad: float = OUTLIER_NMAD, min_dex: float = OUTLIER_DEX) -> np.ndarray:
    """Boolean mask of catastrophic outliers: |dz| > n_nmad * NMAD(dz) and |dz| > min_dex."""
    d = _values(dz, "residuals")
    return (np.abs(d) > n_nmad * nmad(d)) & (np.abs(d) > min_dex)


def outlier_fraction(dz, n_nmad: float = OUTLIER_NMAD, min_dex: float = OUTLIER_DEX) -> float:
    """Fraction (0-1) of residuals flagged by :func:`outlier_mask`."""
    return float(np.mean(outlier_mask(dz, n_nmad, min_dex)))


def regression_metrics(y_true, y_pred) -> dict:
    """All headline metrics of a prediction set.

    Parameters
    ----------
    y_true, y_pred : array-like, shape (N,)
        True and predicted labels (dex).

    Returns
    -------
    dict
        ``n``, ``rmse``, ``nmad``, ``bias`` (median dZ), ``mean_bias``, ``std`` (of dZ),
        ``outlier_fraction``, ``n_outliers`` — floats in dex except the counts and fraction.
    """
    d = residuals(y_true, y_pred)
    out = outlier_mask(d)
    return {
        "n": int(d.size),
        "rmse": rmse(d),
        "nmad": nmad(d),
        "bias": median_bias(d),
        "mean_bias": float(np.mean(d)),
        "std": float(np.std(d)),
        "outlier_fraction": float(np.mean(out)),
        "n_outliers": int(out.sum()),
    }


# --- prediction tables ---------------------------------------------------------------------


def summarize(
    pred_df: pd.DataFrame, target: str = "oh_p50", split: str | None = "test", n_boot: int = 2000, seed: int = 0
) -> dict:
    """Headline metrics of a predictions table (the ``galmet predict`` format).

    Parameters
    ----------
    pred_df : pandas.DataFrame
        Columns ``<target>_pred`` and ``<target>`` (the truth), optionally ``split``.
    target : str
        Label name, e.g. ``oh_p50`` (dex).
    split : str or None
        Keep only rows of this split when the table has a ``split`` column; ``None`` or
        ``"all"`` uses every row.
    n_boot : int
        Bootstrap resamples of the galaxies for the intervals of RMSE, NMAD and bias
        (:func:`bootstrap_metrics`); 0: no intervals.
    seed : int
        Seeds the resampling (the same table gives the same intervals).

    Returns
    -------
    dict
        ``target``, ``split``, the :func:`regression_metrics` entries, ``intervals`` (with
        ``n_boot`` > 0: :func:`bootstrap_metrics`), ``excluded`` (rows of the
        split left out because their truth is missing or outside :data:`galmet.columns.LABEL_RANGES`,
        see :func:`usable_rows`) and, for ``oh_p50``, ``frac_true_above_9.1`` /
        ``frac_pred_above_9.1`` (the paper quotes 12.6% / 5.7%, section 4.2) and ``paper`` (the
        paper's test-set values).

    Raises
    ------
    DataError
        A missing column, an empty split, or no row with a valid truth and prediction (rows
        with a missing or invalid prediction are left out and counted like truths).
    """
    df = select_split(pred_df, split)
    pc = pred_column(target)
    for col in (pc, target):
        if col not in df.columns:
            raise DataError(f"predictions table has no column {col!r} (columns: {', '.join(map(str, df.columns))})")
    df, excluded = usable_rows(df, [target])
    t = df[target].to_numpy(dtype=float)
    p = df[pc].to_numpy(dtype=float)
    # a table without a split column is scored whole (select_split): say so, not "test"
    scored = split if split not in (None, "all") and "split" in df.columns else "all"
    out: dict[str, Any] = {"target": target, "split": scored}
    out.update(regression_metrics(t, p))
    if n_boot:
        out["intervals"] = bootstrap_metrics(t, p, n_boot, seed)
    out["excluded"] = excluded
    if target == "oh_p50":
        from galmet.paper import PAPER_HIGH_Z_FRACTIONS, PAPER_METRICS, PAPER_SIZES

        out["frac_true_above_9.1"] = float(np.mean(t > HIGH_Z))
        out["frac_pred_above_9.1"] = float(np.mean(p > HIGH_Z))
        out["paper"] = {**PAPER_METRICS, **PAPER_HIGH_Z_FRACTIONS, "n": PAPER_SIZES["test_images"]}
    elif target == "lgm_tot_p50":
        from galmet.paper import PAPER_MASS_METRICS

        out["paper"] = dict(PAPER_MASS_METRICS)
    return out


def select_split(df: pd.DataFrame, split: str | None) -> pd.DataFrame:
    """Rows of ``df`` whose ``split`` is ``split``; all rows for None/"all" or when there is no split column.

    Raises DataError when the split is asked for, exists as a column, but has no rows or a row
    without a split (naming the first such row).
    """
    if split in (None, "all") or "split" not in df.columns:
        if len(df) == 0:
            raise DataError("predictions table is empty")
        return df.reset_index(drop=True)
    empty = df["split"].isna().to_numpy()
    if empty.any():
        i = int(np.flatnonzero(empty)[0])
        raise DataError(
            f"predictions table: row {i} has an empty split cell ({int(empty.sum())} of {len(df)} rows): "
            "fill the split column in, or score every row (split all)"
        )
    sel = df[df["split"].astype(str) == split]
    if len(sel) == 0:
        have = sorted(df["split"].astype(str).unique())
        raise DataError(
            f"predictions table has no {split!r} rows (splits present: {', '.join(have)}); use split all", param="split"
        )
    return sel.reset_index(drop=True)


def format_metrics_table(summary: dict) -> str:
    """A plain-text table of a :func:`summarize` dict, with the paper's values beside ours."""
    paper = summary.get("paper", {})
    rows = [
        ("N", f"{summary['n']:d}", _fmt_paper(paper.get("n"), "{:d}")),
        ("RMSE (dex)", f"{summary['rmse']:.4f}", _fmt_paper(paper.get("rmse"))),
        ("NMAD (dex)", f"{summary['nmad']:.4f}", _fmt_paper(paper.get("nmad"))),
        ("median bias (dex)", f"{summary['bias']:+.4f}", _fmt_paper(paper.get("bias"), "{:+.3f}")),
        ("mean bias (dex)", f"{summary['mean_bias']:+.4f}", ""),
        ("outlier fraction", f"{100 * summary['outlier_fraction']:.2f}%", ""),
    ]
    if "frac_true_above_9.1" in summary:
        rows.append(
            (
                "Z_true > 9.1",
                f"{100 * summary['frac_true_above_9.1']:.1f}%",
                _fmt_paper(paper.get("frac_true_above_9.1"), "{:.1%}"),
            )
        )
        rows.append(
            (
                "Z_pred > 9.1",
                f"{100 * summary['frac_pred_above_9.1']:.1f}%",
                _fmt_paper(paper.get("frac_pred_above_9.1"), "{:.1%}"),
            )
        )
    head = f"{summary['target']} on split {summary['split']}"
    has_paper = bool(paper)
    boot = summary.get("intervals")
    spans = _interval_cells(boot) if boot else {}
    lines = [head, f"{'metric':<20}{'galmet':>12}" + (f"{'paper':>12}" if has_paper else "")]
    lines[-1] += f"  {'68% interval':>18}  {'95% interval':>18}" if spans else ""
    for name, ours, theirs in rows:
        line = f"{name:<20}{ours:>12}" + (f"{theirs:>12}" if has_paper else "")
        lines.append(line + spans.get(name, ""))
    if boot:
        lines.append(
            f"intervals: percentile bootstrap over the {summary['n']} galaxies "
            f"({boot['n_boot']} resamples, seed {boot['seed']})"
        )
    lines += [f"note: {line}" for line in describe_exclusions(summary.get("excluded", {}))]
    return "\n".join(lines)


#: Rows of :func:`format_metrics_table` that carry a bootstrap interval, with their metric.
_INTERVAL_ROWS = {"RMSE (dex)": "rmse", "NMAD (dex)": "nmad", "median bias (dex)": "bias"}


def _interval_cells(boot: dict) -> dict[str, str]:
    """Row name -> the 68% and 95% interval cells of :func:`format_metrics_table`."""
    cells = {}
    for row, key in _INTERVAL_ROWS.items():
        b = boot[key]
        fmt = "{:+.4f}" if key == "bias" else "{:.4f}"
        pair = [f"[{fmt.format(b[f'lo{lv}'])}, {fmt.format(b[f'hi{lv}'])}]" for lv in (68, 95)]
        cells[row] = f"  {pair[0]:>18}  {pair[1]:>18}"
    return cells


def _fmt_paper(value, fmt: str = "{:.3f}") -> str:
    return "-" if value is None else fmt.format(value)


# --- bootstrap intervals -------------------------------------------------------------------


def bootstrap_rmse(residual_sets, n_boot: int = 2000, level: float = 0.95, seed: int = 0) -> dict:
    """RMSE of several predictors on the same galaxies, with paired percentile bootstrap intervals.

    Every resample draws galaxies (with replacement) once and scores every predictor on that
    same draw, so the interval on a difference of RMSEs is much narrower than the two intervals
    on their own suggest.

    Parameters
    ----------
    residual_sets : mapping of str to array-like, each shape (N,)
        dZ = Z_pred - Z_true of each predictor, aligned row by row (the same galaxy in row i), dex.
        The first entry is the reference of the differences.
    n_boot : int
        Number of bootstrap resamples (at least 10).
    level : float
        Confidence level of the intervals, 0 < level < 1.
    seed : int
        Seeds the resampling: the same inputs give the same intervals.

    Returns
    -------
    dict
        name -> ``{"n", "rmse", "lo", "hi"}`` and, for every entry after the first,
        ``"diff"``, ``"diff_lo"``, ``"diff_hi"`` (RMSE of the first minus RMSE of this one, dex;
        negative when the first is better), plus ``"n_boot"``, ``"level"``, ``"seed"`` under
        the key ``"settings"``.
    """
    names = list(residual_sets)
    if not names:
        raise DataError("bootstrap_rmse: no residuals given")
    arrays = [_values(residual_sets[k], f"residuals of {k}") for k in names]
    n = arrays[0].size
    if any(a.size != n for a in arrays):
        raise DataError(f"bootstrap_rmse: residual sets differ in length ({', '.join(str(a.size) for a in arrays)})")
    if not (isinstance(n_boot, int) and n_boot >= 10 and 0 < level < 1):
        raise DataError(f"bootstrap_rmse: need n_boot >= 10 and 0 < level < 1, got {n_boot!r}, {level!r}")
    rng = np.random.default_rng(seed)
    sq = np.stack([a**2 for a in arrays])  # (P, N)
    boot = np.empty((len(names), n_boot))
    chunk = max(1, min(n_boot, 2_000_000 // n))  # resamples at a time: about 2 million indices in memory
    for start in range(0, n_boot, chunk):
        stop = min(start + chunk, n_boot)
        idx = rng.integers(0, n, size=(stop - start, n))
        boot[:, start:stop] = np.sqrt(sq[:, idx].mean(axis=2))
    q = [50 * (1 - level), 50 * (1 + level)]
    point = np.sqrt(sq.mean(axis=1))
    out: dict = {"settings": {"n_boot": n_boot, "level": level, "seed": seed}}
    for i, name in enumerate(names):
        lo, hi = np.percentile(boot[i], q)
        entry = {"n": int(n), "rmse": float(point[i]), "lo": float(lo), "hi": float(hi)}
        if i:
            dlo, dhi = np.percentile(boot[0] - boot[i], q)
            entry.update(diff=float(point[0] - point[i]), diff_lo=float(dlo), diff_hi=float(dhi))
        out[name] = entry
    return out


#: Metrics :func:`bootstrap_metrics` puts intervals on, and how each is computed from residuals (N,).
BOOTSTRAPPED = ("rmse", "nmad", "bias")
#: Central levels (per cent) of the bootstrap intervals.
BOOTSTRAP_LEVELS = (68, 95)
#: The fewest resamples a bootstrap interval is computed from.
MIN_BOOT = 10


def check_n_boot(n_boot: Any, param: str = "n_boot") -> int:
    """``n_boot`` as an int: 0 (no intervals) or at least :data:`MIN_BOOT`; DataError (one line,
    naming ``param``) otherwise."""
    if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)) or (n_boot != 0 and n_boot < MIN_BOOT):
        raise DataError(f"{param} must be 0 (no intervals) or an integer >= {MIN_BOOT}, got {n_boot!r}", param=param)
    return int(n_boot)


def _boot_stats(d: np.ndarray) -> np.ndarray:
    """(3, B) RMSE, NMAD and median bias of each row of residual resamples ``d`` (B, N)."""
    med = np.median(d, axis=1)
    return np.stack(
        [
            np.sqrt(np.mean(d**2, axis=1)),
            NMAD_SCALE * np.median(np.abs(d - med[:, None]), axis=1),
            med,
        ]
    )


def bootstrap_metrics(y_true, y_pred, n_boot: int = 2000, seed: int = 0) -> dict:
    """Percentile bootstrap intervals of RMSE, NMAD and median bias.

    The galaxies are resampled with replacement ``n_boot`` times and the three metrics computed
    on every resample.

    Parameters
    ----------
    y_true, y_pred : array-like, shape (N,)
        True and predicted labels (dex).
    n_boot : int
        Resamples (at least :data:`MIN_BOOT`).
    seed : int
        Seeds the resampling: the same inputs give the same intervals.

    Returns
    -------
    dict
        ``n_boot``, ``seed`` and, for each of ``rmse``, ``nmad``, ``bias``: ``{"value", "se",
        "lo68", "hi68", "lo95", "hi95"}`` (dex): the metric on all galaxies, the standard
        deviation of its resamples, and the central 68% and 95% percentile intervals.
    """
    d = residuals(y_true, y_pred)
    n_boot = check_n_boot(n_boot)
    if n_boot == 0:
        raise DataError(f"bootstrap_metrics: n_boot must be >= {MIN_BOOT}", param="n_boot")
    rng = np.random.default_rng(seed)
    boot = np.empty((len(BOOTSTRAPPED), n_boot))
    chunk = max(1, min(n_boot, 2_000_000 // d.size))  # about 2 million resampled values in memory
    for start in range(0, n_boot, chunk):
        stop = min(start + chunk, n_boot)
        boot[:, start:stop] = _boot_stats(d[rng.integers(0, d.size, size=(stop - start, d.size))])
    point = _boot_stats(d[None, :])[:, 0]
    out: dict[str, Any] = {"n_boot": n_boot, "seed": seed}
    for i, name in enumerate(BOOTSTRAPPED):
        entry = {"value": float(point[i]), "se": float(np.std(boot[i], ddof=1))}
        for level in BOOTSTRAP_LEVELS:
            lo, hi = np.percentile(boot[i], [50 - level / 2, 50 + level / 2])
            entry[f"lo{level}"], entry[f"hi{level}"] = float(lo), float(hi)
        out[name] = entry
    return out


def format_interval(entry: dict | None, level: int = 95, signed: bool = False) -> str:
    """``"[lo, hi]"`` of one :func:`bootstrap_metrics` entry at ``level`` (68 or 95) percent, dex to
    4 decimals (``signed``: with a sign, for a bias); ``""`` when there is no entry."""
    if not entry:
        return ""
    fmt = "{:+.4f}" if signed else "{:.4f}"
    return f"[{fmt.format(entry[f'lo{level}'])}, {fmt.format(entry[f'hi{level}'])}]"


def rmse_standard_error(dz) -> float:
    """Delta-method standard error of the RMSE of residuals ``dz`` (N,), dex:
    sqrt(var(dz**2) / N) / (2 RMSE). NaN for fewer than 2 residuals or an RMSE of 0."""
    d = _values(dz, "residuals")
    r = float(np.sqrt(np.mean(d**2)))
    if d.size < 2 or r == 0:
        return float("nan")
    return float(np.sqrt(np.var(d**2, ddof=1) / d.size) / (2 * r))
