"""Calibrated uncertainties: fit a split-conformal calibration on held-out residuals, and score one.

- :func:`fit_calibration`: a :class:`galmet.nn.uncertainty.Calibration` from a predictions table
  of galaxies the model did not train on -- the out-of-fold predictions of ``galmet train
  --folds`` (CV residuals) or the ``valid`` rows of an ordinary run (split-conformal).
- :func:`uncertainty_metrics`: how good the error bars of a predictions table are, from its
  ``_err`` and interval columns: coverage of the 68% and 95% intervals against nominal (with its
  binomial standard error), coverage per tercile of the truth and per tercile of the prediction
  (conditional coverage, with binomial standard errors), mean
  interval width (sharpness), the interval score (Gneiting & Raftery 2007), and, reading each
  prediction as the Gaussian N(centre of the 68% interval, err) that "Z +- err" means to an
  astronomer, its PIT histogram, CRPS and negative log-likelihood.
- :func:`label_noise_budget`: how much of the squared error the label's own uncertainty
  (MPA-JHU ``oh_p16`` / ``oh_p84``) explains.

Numpy, scipy and pandas only (no torch).
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np
import pandas as pd

from galmet.columns import (
    INTERVAL_LEVELS,
    LABEL_PERCENTILES,
    err_column,
    interval_columns,
    pred_column,
    sigma_column,
    spread_column,
)
from galmet.data.labels import describe_exclusions, invalid_label_mask, no_truth, usable_rows
from galmet.errors import ConfigError, DataError
from galmet.nn.uncertainty import METHODS, Calibration
from galmet.science.metrics import select_split

log = logging.getLogger(__name__)

#: Fewest calibration galaxies accepted (the 95% two-tailed interval needs 39 to be finite).
MIN_CALIBRATION = 10
#: Bins of the PIT histogram.
PIT_BINS = 10


def _finite_rows(df: pd.DataFrame, cols: list[str]) -> np.ndarray:
    ok = np.ones(len(df), dtype=bool)
    for c in cols:
        ok &= np.isfinite(pd.to_numeric(df[c], errors="coerce").to_numpy(dtype=float))
    return ok


def fit_calibration(
    table: pd.DataFrame,
    target: str,
    method: str = "auto",
    symmetric: bool = False,
    split: str | None = None,
    offset: float | None = None,
    source: dict | None = None,
    where: str = "predictions",
    bins: int | str = 1,
    members: int = 0,
    weights=None,
    test_weight: float | None = None,
) -> Calibration:
    """Fit the calibration of ``target`` on the held-out rows of a predictions table.

    Truths that are not labels (missing, -9999, infinite, out of range: :mod:`galmet.data.labels`)
    are left out, counted in a warning and in the calibration's ``excluded``.

    Parameters
    ----------
    table : pandas.DataFrame
        A predictions table (``galmet predict`` / ``oof.parquet`` format) with the truth.
    target : str
        The label, e.g. ``oh_p50``.
    method : {"auto", "absolute", "spread", "sigma"}
        How residuals are scaled (:mod:`galmet.nn.uncertainty`). ``auto``: ``sigma`` when the
        table has the gaussian head's ``<target>_sigma``, else ``absolute``.
    symmetric : bool
        Symmetric intervals from absolute scores instead of two tails of the signed scores.
    split : str, optional
        Only rows of this split (``valid``); None or ``"all"``: every row.
    offset : float, optional
        Added to the scale of ``spread`` / ``sigma`` (default: the calibration set's median
        spread for ``spread``, 0 for ``sigma``).
    source : dict, optional
        Provenance recorded in the calibration.
    bins : int or "auto"
        Equal-count Mondrian bins of the *prediction*, each with its own quantiles (:func:`mondrian`;
        ``auto``: :func:`auto_bins`; 1: pooled, marginal coverage only).
    members : int
        CV+ for an ensemble of this many fold models, from the ``fold`` column (:func:`cv_plus_folds`).
    weights : array-like, optional
        Weighted conformal under covariate shift (:mod:`galmet.nn.uncertainty`): the importance
        weight of each row of ``table`` (float (len(table),), finite, > 0); not with ``members``.
    test_weight : float, optional
        The weight of a new galaxy (> 0; required with ``weights``).

    Raises
    ------
    DataError
        One line: no truth column, a truth that is not a number, no usable rows, too few rows, a
        scale column missing or not positive.
    """
    if weights is not None:
        table = table.assign(**{WEIGHT_KEY: _row_weights(weights, len(table), members, where)})
    df = select_split(table, split)
    pc, sc, gc = pred_column(target), spread_column(target), sigma_column(target)
    _check_truth(df, target, where)
    df, excluded = usable_rows(df, [target], where)
    for line in describe_exclusions(excluded):
        log.warning("%s: %s", where, line)
    if method == "auto":
        method = "sigma" if gc in df.columns and np.isfinite(df[gc].to_numpy(dtype=float)).any() else "absolute"
    if method not in METHODS:
        raise DataError(f"unknown calibration method {method!r} (choose from auto, {', '.join(METHODS)})")
    need = {"absolute": [], "spread": [sc], "sigma": [gc]}[method]
    for c in need:
        if c not in df.columns:
            why = "a loss gaussian model" if c == gc else "test-time augmentation or an ensemble"
            raise DataError(f"{where}: method {method} needs the column {c!r} (from {why})", param="loss")
    ok = _finite_rows(df, [target, pc, *need])
    if ok.sum() < MIN_CALIBRATION:
        raise DataError(
            f"{where}: {int(ok.sum())} rows with a finite truth, prediction and scale: "
            f"too few to calibrate on (need at least {MIN_CALIBRATION})"
        )
    d = df[ok]
    y, p = d[target].to_numpy(dtype=float), d[pc].to_numpy(dtype=float)
    spread = d[sc].to_numpy(dtype=float) if sc in d.columns else None
    sigma = d[gc].to_numpy(dtype=float) if method == "sigma" else None
    if offset is None:
        offset = float(np.median(np.nan_to_num(spread, nan=0.0))) if method == "spread" and spread is not None else 0.0
    probe = Calibration(target, method, np.zeros(1), 1, symmetric, float(offset))
    u = probe.scale(spread, sigma, n=len(p))
    if not (u > 0).all():
        raise DataError(
            f"{where}: {int((u <= 0).sum())} rows have a zero scale for method {method}; give offset > 0",
            param="offset",
        )
    z = (y - p) / u
    info = {"split": split or "all", "n": int(len(z)), **(source or {}), **({"excluded": excluded} if excluded else {})}
    z = np.abs(z) if symmetric else z
    folds = cv_plus_folds(d, members, where) if members else None
    w = d[WEIGHT_KEY].to_numpy(dtype=float) if weights is not None else None
    cal = Calibration.from_scores(target, method, z, symmetric, float(offset), info, folds, members, w, test_weight)
    return mondrian(cal, p, z, check_bins(bins, len(z), where), folds, w)


#: Temporary column carrying the weights of :func:`fit_calibration` through its row selections.
WEIGHT_KEY = "__galmet_weight__"


def _row_weights(weights, n: int, members: int, where: str) -> np.ndarray:
    """``weights`` as float64 (n,); ConfigError (one line) when not n finite positive numbers or with CV+."""
    if members:
        raise ConfigError(f"{where}: weighted calibration is not combined with CV+", param="cv_plus")
    w = np.asarray(weights, dtype=np.float64).ravel()
    if w.size != n:
        raise ConfigError(f"{where}: {w.size} weights for {n} rows", param="weights")
    bad = int((~(np.isfinite(w) & (w > 0))).sum())
    if bad:
        raise ConfigError(f"{where}: {bad} weights are not finite and > 0", param="weights")
    return w


def _check_truth(df: pd.DataFrame, target: str, where: str) -> None:
    """DataError (one line) when ``df`` holds no predictions of ``target`` or no truth of it."""
    pc = pred_column(target)
    if pc not in df.columns:
        raise DataError(f"{where}: no column {pc!r}: these are not predictions of {target}")
    if target not in df.columns or df[target].isna().all():
        raise DataError(
            f"{where}: "
            + (
                f"no truth column {target!r} to calibrate on"
                if target not in df
                else f"{no_truth(df, target)}: nothing to calibrate on"
            )
            + " (pass dataset to join it by objID)",
            param="dataset",
        )


def cv_plus_folds(table: pd.DataFrame, members: int, where: str = "predictions") -> np.ndarray:
    """The ``fold`` column of an out-of-fold table as member ids, int (N,); DataError (one line)
    when it is missing or its folds are not exactly 0 .. ``members`` - 1."""
    if "fold" not in table.columns:
        raise DataError(f"{where}: CV+ needs the fold column of out-of-fold predictions", param="cv_plus")
    f = pd.to_numeric(table["fold"], errors="coerce").to_numpy(dtype=float)
    if not np.isfinite(f).all() or set(np.unique(f).tolist()) != set(range(members)):
        raise DataError(
            f"{where}: fold column holds {sorted(set(np.unique(f[np.isfinite(f)]).tolist()))}, "
            f"not the folds 0 .. {members - 1} of the {members} ensemble members",
            param="cv_plus",
        )
    return f.astype(np.int64)


#: ``bins="auto"``: at least this many calibration galaxies per Mondrian bin ...
ROWS_PER_AUTO_BIN = 100
#: ... and at most this many bins.
MAX_AUTO_BINS = 5


def auto_bins(n: int) -> int:
    """Mondrian bins for ``n`` calibration galaxies: max(1, min(5, n // 100))."""
    return max(1, min(MAX_AUTO_BINS, n // ROWS_PER_AUTO_BIN))


def check_bins(bins: int | str, n: int | None = None, where: str = "predictions") -> int:
    """The number of Mondrian bins ``bins`` (an int >= 1 or ``"auto"``) means for ``n`` galaxies;
    ConfigError (one line) for anything else, DataError when a bin would hold fewer than
    :data:`MIN_CALIBRATION`. With ``n`` None only the value is checked (``auto`` -> 0)."""
    if isinstance(bins, str) and bins.strip().lower() == "auto":
        return 0 if n is None else auto_bins(n)
    try:
        k = int(bins)
        if isinstance(bins, float | bool) or str(bins).strip() != str(k):
            raise ValueError
    except (TypeError, ValueError):
        raise ConfigError(f"bins must be a whole number >= 1 or 'auto', got {bins!r}", param="bins") from None
    if k < 1:
        raise ConfigError(f"bins must be a whole number >= 1 or 'auto', got {bins!r}", param="bins")
    if n is not None and n // k < MIN_CALIBRATION:
        raise DataError(
            f"{where}: {n} calibration galaxies in {k} bins: too few per bin (need at least {MIN_CALIBRATION} a bin)",
            param="bins",
        )
    return k


def mondrian(cal: Calibration, pred: np.ndarray, z: np.ndarray, k: int, folds=None, weights=None) -> Calibration:
    """``cal`` with ``k`` equal-count Mondrian bins of the prediction ``pred`` (N,); ``z`` (N,) are
    the scores of the same rows, ``folds`` (N,) their CV+ member ids (or None), ``weights`` (N,)
    their importance weights (or None; each bin keeps ``cal.test_weight``). Tied quantiles (a
    discrete prediction) merge bins; one bin: ``cal``."""
    if k <= 1:
        return cal
    edges = np.unique(np.quantile(pred, np.arange(1, k) / k))
    which = np.searchsorted(edges, pred, side="right")
    counts = np.bincount(which, minlength=len(edges) + 1)
    if len(edges) == 0 or counts.min() < MIN_CALIBRATION:
        log.warning("%s: predictions too tied for %d Mondrian bins: one pooled calibration", cal.target, k)
        return cal
    bins = [
        Calibration.from_scores(
            cal.target,
            cal.method,
            z[which == j],
            cal.symmetric,
            cal.offset,
            folds=None if folds is None else folds[which == j],
            members=cal.members,
            weights=None if weights is None else weights[which == j],
            test_weight=cal.test_weight if weights is not None else None,
        )
        for j in range(len(edges) + 1)
    ]
    return cal.with_bins(edges, bins)


def _coverage(y, lo, hi) -> dict[str, float]:
    inside = (y >= lo) & (y <= hi)
    n = len(y)
    cov = float(np.mean(inside))
    return {"coverage": cov, "coverage_se": math.sqrt(max(cov * (1 - cov), 1e-12) / n), "n": n}


def interval_score(y, lo, hi, level: float) -> np.ndarray:
    """Interval score of central ``level`` intervals (Gneiting & Raftery 2007): width plus
    2 / alpha times how far the truth falls outside; lower is better. Target units, (N,)."""
    alpha = 1 - level
    return (hi - lo) + (2 / alpha) * (np.clip(lo - y, 0, None) + np.clip(y - hi, 0, None))


def gaussian_crps(y, mu, sigma) -> np.ndarray:
    """CRPS of the Gaussian N(mu, sigma) at ``y`` (closed form, Gneiting et al. 2005), (N,)."""
    from scipy.stats import norm

    z = (y - mu) / sigma
    return sigma * (z * (2 * norm.cdf(z) - 1) + 2 * norm.pdf(z) - 1 / math.sqrt(math.pi))


def uncertainty_metrics(table: pd.DataFrame, target: str, split: str | None = "test") -> dict[str, Any] | None:
    """Scores of a predictions table's calibrated error bars; None when it has none.

    Returns
    -------
    dict or None
        ``n``; per level (``"68"``, ``"95"``): ``nominal``, ``coverage``, ``coverage_se``,
        ``mean_width``, ``median_width``, ``interval_score``; ``mean_err`` / ``median_err``
        (dex); ``terciles``: per tercile of the truth its range and coverage at each level;
        ``pred_terciles``: per tercile of the prediction (:func:`pred_tercile_coverage`);
        ``pit_hist`` (:data:`PIT_BINS` fractions), ``crps``, ``nll`` and ``z_std`` (std of
        (y - centre) / err) under the Gaussian N(centre of the 68% interval, err).
    """
    df = select_split(table, split)
    ec = err_column(target)
    needed = [ec, *[c for lv in INTERVAL_LEVELS for c in interval_columns(target, lv)]]
    if target not in df.columns or any(c not in df.columns for c in needed):
        return None
    try:
        df, _ = usable_rows(df, [target])
    except DataError:
        return None
    ok = _finite_rows(df, [pred_column(target), ec])
    if not ok.any():
        return None
    d = df[ok]
    y = d[target].to_numpy(dtype=float)
    err = d[ec].to_numpy(dtype=float)
    out: dict[str, Any] = {"n": int(len(y)), "mean_err": float(np.mean(err)), "median_err": float(np.median(err))}
    bounds = {}
    for tag, level in INTERVAL_LEVELS.items():
        lo_c, hi_c = interval_columns(target, tag)
        lo, hi = d[lo_c].to_numpy(dtype=float), d[hi_c].to_numpy(dtype=float)
        bounds[tag] = (lo, hi)
        width = hi - lo
        out[str(tag)] = {
            "nominal": level,
            **_coverage(y, lo, hi),
            "mean_width": float(np.mean(width)),
            "median_width": float(np.median(width)),
            "interval_score": float(np.mean(interval_score(y, lo, hi, level))),
        }
    edges = np.quantile(y, [0, 1 / 3, 2 / 3, 1])
    which = np.clip(np.searchsorted(edges[1:-1], y, side="right"), 0, 2)
    out["terciles"] = []
    for k in range(3):
        m = which == k
        row: dict[str, Any] = {"lo": float(edges[k]), "hi": float(edges[k + 1]), "n": int(m.sum())}
        for tag, (lo, hi) in bounds.items():
            if m.any():
                row[str(tag)] = _coverage(y[m], lo[m], hi[m])["coverage"]
                row[f"width{tag}"] = float(np.mean(hi[m] - lo[m]))
        out["terciles"].append(row)
    out["pred_terciles"] = pred_tercile_coverage(y, d[pred_column(target)].to_numpy(dtype=float), bounds)
    lo68, hi68 = bounds[68]
    mu = (lo68 + hi68) / 2
    good = np.isfinite(mu) & (err > 0)
    if good.any():
        from scipy.stats import norm

        z = (y[good] - mu[good]) / err[good]
        pit = norm.cdf(z)
        out["pit_hist"] = (np.histogram(pit, bins=PIT_BINS, range=(0, 1))[0] / len(pit)).tolist()
        out["crps"] = float(np.mean(gaussian_crps(y[good], mu[good], err[good])))
        out["nll"] = float(np.mean(0.5 * np.log(2 * math.pi * err[good] ** 2) + 0.5 * z**2))
        out["z_std"] = float(np.std(z))
    return out


def pred_tercile_coverage(y, pred, bounds: dict) -> list[dict[str, Any]]:
    """Coverage per tercile of the *predicted* value (what a user selects on: the truth is unknown).

    Parameters
    ----------
    y, pred : numpy.ndarray
        Truth and prediction, (N,).
    bounds : dict
        Level tag (68, 95) -> (lower, upper) of the intervals, each (N,).

    Returns
    -------
    list of dict
        Per tercile: ``lo``, ``hi`` (prediction range), ``n``, and per level ``coverage68`` /
        ``se68`` (binomial standard error), ``coverage95`` / ``se95``.
    """
    edges = np.quantile(pred, [0, 1 / 3, 2 / 3, 1])
    which = np.clip(np.searchsorted(edges[1:-1], pred, side="right"), 0, 2)
    rows = []
    for k in range(3):
        m = which == k
        row: dict[str, Any] = {"lo": float(edges[k]), "hi": float(edges[k + 1]), "n": int(m.sum())}
        for tag, (lo, hi) in bounds.items():
            if m.any():
                c = _coverage(y[m], lo[m], hi[m])
                row[f"coverage{tag}"], row[f"se{tag}"] = c["coverage"], c["coverage_se"]
        rows.append(row)
    return rows


def format_pred_terciles(rows: list[dict[str, Any]], target: str) -> str:
    """One line: coverage 68% / 95% (+- binomial s.e.) per tercile of the predicted ``target``."""
    parts = []
    for r in rows:
        cov = " / ".join(
            f"{100 * r[f'coverage{t}']:.0f}+-{100 * r[f'se{t}']:.0f}%" for t in INTERVAL_LEVELS if f"coverage{t}" in r
        )
        parts.append(f"[{r['lo']:.2f}, {r['hi']:.2f}] (n={r['n']}): {cov}")
    return f"coverage 68% / 95% per tercile of predicted {target}: " + "; ".join(parts)


def label_noise_budget(table: pd.DataFrame, target: str) -> dict[str, float] | None:
    """How much of the squared prediction error the label's own measurement error explains.

    With the label's 1-sigma ``s = (p84 - p16) / 2`` per galaxy (MPA-JHU ``oh_p16`` / ``oh_p84``)
    and residuals ``dZ``: ``fraction`` = mean(s**2) / mean(dZ**2), and ``rmse_without`` =
    sqrt(mean(dZ**2) - mean(s**2)), the RMSE a perfect measurement of the label would leave (if
    label noise and model error are independent). None when the table lacks the percentiles.
    """
    cols = LABEL_PERCENTILES.get(target)
    if cols is None or not all(c in table.columns for c in cols) or target not in table.columns:
        return None
    lo, hi, y = (pd.to_numeric(table[c], errors="coerce").to_numpy(dtype=float) for c in (*cols, target))
    p = table[pred_column(target)].to_numpy(dtype=float)
    s = (hi - lo) / 2
    usable = ~(invalid_label_mask(cols[0], lo) | invalid_label_mask(cols[1], hi) | invalid_label_mask(target, y))
    ok = np.isfinite(s) & np.isfinite(y) & np.isfinite(p) & (s >= 0) & usable
    if not ok.any():
        return None
    mse, var = float(np.mean((p[ok] - y[ok]) ** 2)), float(np.mean(s[ok] ** 2))
    return {
        "n": int(ok.sum()),
        "median_label_sigma": float(np.median(s[ok])),
        "rms_label_sigma": math.sqrt(var),
        "rmse": math.sqrt(mse),
        "fraction": var / mse if mse > 0 else float("nan"),
        "rmse_without": math.sqrt(max(mse - var, 0.0)),
    }


def format_uncertainty(metrics: dict[str, Any], target: str) -> str:
    """Plain-text lines of :func:`uncertainty_metrics` for ``galmet evaluate``."""
    lines = [f"calibrated uncertainties of {target} (N = {metrics['n']})"]
    lines.append(f"{'level':<10}{'coverage':>16}{'mean width':>12}{'interval score':>16}")
    for tag in INTERVAL_LEVELS:
        m = metrics[str(tag)]
        lines.append(
            f"{tag:>3}%{'':<6}{100 * m['coverage']:>9.1f} +- {100 * m['coverage_se']:.1f}"
            f"{m['mean_width']:>12.4f}{m['interval_score']:>16.4f}"
        )
    lines.append(f"err (1 sigma, dex): mean {metrics['mean_err']:.4f}, median {metrics['median_err']:.4f}")
    parts = []
    for row in metrics["terciles"]:
        cov = " / ".join(f"{100 * row[str(t)]:.0f}%" for t in INTERVAL_LEVELS if str(t) in row)
        parts.append(f"[{row['lo']:.2f}, {row['hi']:.2f}] (n={row['n']}): {cov}")
    lines.append(f"coverage 68% / 95% per tercile of {target}: " + "; ".join(parts))
    if metrics.get("pred_terciles"):
        lines.append(format_pred_terciles(metrics["pred_terciles"], target))
    if "crps" in metrics:
        lines.append(
            f"as Gaussians N(centre, err): CRPS {metrics['crps']:.4f} dex, NLL {metrics['nll']:.3f}, "
            f"std of (Z_true - centre) / err {metrics['z_std']:.3f} (1 if err is right)"
        )
        lines.append(
            "PIT histogram (10 bins, 0.10 each if calibrated): " + " ".join(f"{v:.2f}" for v in metrics["pit_hist"])
        )
    return "\n".join(lines)


def format_label_noise(noise: dict[str, float], target: str) -> str:
    """One line of :func:`label_noise_budget` for ``galmet evaluate``."""
    return (
        f"label uncertainty ({'/'.join(LABEL_PERCENTILES[target])}, N = {noise['n']}): median 1-sigma "
        f"{noise['median_label_sigma']:.4f} dex explains {100 * noise['fraction']:.0f}% of the squared error; "
        f"RMSE without it {noise['rmse_without']:.4f} dex (with it {noise['rmse']:.4f})"
    )


def reliability(y, mu, err, levels=None) -> pd.DataFrame:
    """Observed coverage of the central Gaussian intervals ``mu +- z_level err`` at each nominal level.

    Parameters
    ----------
    y, mu, err : array-like, shape (N,)
        Truth, interval centre and calibrated 1-sigma (dex).
    levels : array-like, optional
        Nominal levels (default 0.05, 0.10, ..., 0.95 and 0.99).

    Returns
    -------
    pandas.DataFrame
        ``nominal``, ``observed``, ``se`` (binomial standard error of ``observed``).
    """
    from scipy.stats import norm

    levels = np.asarray(levels if levels is not None else [*np.arange(0.05, 0.951, 0.05), 0.99], dtype=float)
    z = np.abs(np.asarray(y, float) - np.asarray(mu, float)) / np.asarray(err, float)
    ok = np.isfinite(z)
    z = z[ok]
    half = norm.ppf(0.5 + levels / 2)
    observed = np.array([np.mean(z <= h) for h in half])
    return pd.DataFrame(
        {"nominal": levels, "observed": observed, "se": np.sqrt(observed * (1 - observed) / max(len(z), 1))}
    )


def error_vs_err(y, mu, err, n_bins: int = 8, min_count: int = 10) -> pd.DataFrame:
    """RMS of the residuals (y - mu) in equal-count bins of the predicted err: the two agree
    (points on the one-to-one line) when the error bars are right galaxy by galaxy.

    Returns
    -------
    pandas.DataFrame
        ``err`` (median err of the bin), ``rms`` (of y - mu), ``n``, ``lo``, ``hi`` (bin edges).
    """
    y, mu, err = (np.asarray(a, dtype=float) for a in (y, mu, err))
    ok = np.isfinite(y) & np.isfinite(mu) & np.isfinite(err)
    y, mu, err = y[ok], mu[ok], err[ok]
    k = max(1, min(n_bins, len(err) // max(min_count, 1)))
    edges = np.unique(np.quantile(err, np.linspace(0, 1, k + 1))) if len(err) else np.array([0.0, 1.0])
    rows = []
    if len(edges) < 2:  # every err the same (plain split-conformal): one bin
        edges = np.array([edges[0], edges[0]])
    which = np.clip(np.searchsorted(edges[1:-1], err, side="right"), 0, max(len(edges) - 2, 0))
    for b in range(max(len(edges) - 1, 1)):
        m = which == b
        if m.any():
            rows.append(
                {
                    "err": float(np.median(err[m])),
                    "rms": float(np.sqrt(np.mean((y[m] - mu[m]) ** 2))),
                    "n": int(m.sum()),
                    "lo": float(edges[b]),
                    "hi": float(edges[b + 1]),
                }
            )
    return pd.DataFrame(rows, columns=["err", "rms", "n", "lo", "hi"])
