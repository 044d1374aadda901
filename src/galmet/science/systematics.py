"""Systematics: how the residuals dZ = Z_pred - Z_true depend on galaxy properties.

:func:`systematics` bins dZ against every property a predictions table (joined to its catalogue)
has -- the truth, the prediction, redshift, stellar mass, inclination (``expAB_r``), size
(``petroR50_r``, ``petroR90_r``), fibre magnitude, BPT class, the label's own uncertainty and, for
synthetic data, the latent truths (inclination, disk size, sSFR) -- and returns per bin the median
property value, the bias (median dZ) and scatter (NMAD, and the RMSE) with seeded bootstrap
confidence intervals, plus a Spearman rank correlation of dZ with each numeric property.

Bins are equal-count (quantiles) for numeric properties, one per value for categorical ones
(``bptclass``). Note that dZ against Z_true always slopes down for a regressor that shrinks
towards the mean (regression dilution); against Z_pred it is flat when the predictions are
calibrated in the mean. The MPA-JHU star-formation rates (``sfr_tot_p50``, ``specsfr_tot_p50``)
are binned too, with a caveat (``trends[...]["caveat"]``, :data:`galmet.science.stats.SSFR_CAVEAT`):
they come from the same spectra as the label, so dZ correlates with them even for a perfect
model. Numpy, scipy and pandas only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from galmet.columns import LABEL_PERCENTILES, pred_column
from galmet.data.labels import usable_rows
from galmet.errors import DataError
from galmet.science.metrics import NMAD_SCALE
from galmet.science.stats import ssfr_caveat

#: (column, axis label) of the properties looked for, in figure order; ``{target}`` and ``{pred}``
#: stand for the truth and the prediction, ``label_sigma`` for (p84 - p16) / 2 of the label.
PROPERTIES: tuple[tuple[str, str], ...] = (
    ("{target}", "Z_true (dex)"),
    ("{pred}", "Z_pred (dex)"),
    ("z", "redshift"),
    ("lgm_tot_p50", "log M*/Msun"),
    ("expAB_r", "axis ratio b/a (exp. fit, r)"),
    ("petroR50_r", "Petrosian R50, r (arcsec)"),
    ("petroR90_r", "Petrosian R90, r (arcsec)"),
    ("fiberMag_r", "fibre magnitude, r (mag)"),
    ("bptclass", "BPT class"),
    ("label_sigma", "label 1-sigma (dex)"),
    ("inclination_deg", "inclination (deg, synthetic truth)"),
    ("r_disk_arcsec", "disk scale length (arcsec, synthetic truth)"),
    ("log_ssfr", "log sSFR (synthetic truth)"),
    ("specsfr_tot_p50", "log sSFR (MPA-JHU, same spectra as Z)"),
    ("sfr_tot_p50", "log SFR (MPA-JHU, same spectra as Z)"),
)
#: Properties binned by value rather than by quantile.
CATEGORICAL = ("bptclass",)
#: MPA-JHU's "no measurement" marker: values at or below it are missing.
MISSING_BELOW = -9000.0


@dataclass
class Systematics:
    """What :func:`systematics` returns.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per (property, bin): ``property``, ``label``, ``bin``, ``lo``, ``hi``, ``x``
        (median property value; the value itself for categorical bins), ``n``, ``bias``,
        ``bias_lo``, ``bias_hi``, ``scatter``, ``scatter_lo``, ``scatter_hi``, ``rmse``,
        ``rmse_lo``, ``rmse_hi`` (dex; ``_lo``/``_hi`` the bootstrap ``level`` interval).
    trends : dict
        Per property: ``label``, ``n``, ``spearman_rho``, ``spearman_p`` (numeric properties),
        the largest |bias| of a bin with its confidence interval, and ``caveat`` for a property
        whose correlation with dZ is expected even for a perfect model (MPA-JHU's SFR and sSFR).
    settings : dict
        ``target``, ``n``, ``bins``, ``n_boot``, ``level``, ``seed``, ``min_count``, and
        ``excluded`` (rows left out because their truth is not a label: missing, -9999, infinite,
        out of range; see :func:`galmet.data.labels.usable_rows`).
    """

    table: pd.DataFrame
    trends: dict[str, dict[str, Any]]
    settings: dict[str, Any]


def _nmad(v: np.ndarray, axis: int = -1) -> np.ndarray:
    med = np.median(v, axis=axis, keepdims=True)
    return NMAD_SCALE * np.median(np.abs(v - med), axis=axis)


def bootstrap_ci(values: np.ndarray, n_boot: int, level: float, rng: np.random.Generator) -> dict[str, tuple]:
    """Point value and percentile bootstrap interval of the median, NMAD and RMSE of ``values``.

    Returns
    -------
    dict
        ``bias`` / ``scatter`` / ``rmse`` -> (value, low, high).
    """
    v = np.asarray(values, dtype=float)
    idx = rng.integers(0, len(v), size=(n_boot, len(v)))
    samples = v[idx]
    q = [(1 - level) / 2 * 100, (1 + level) / 2 * 100]
    out = {}
    for name, point, boot in (
        ("bias", np.median(v), np.median(samples, axis=1)),
        ("scatter", _nmad(v), _nmad(samples, axis=1)),
        ("rmse", np.sqrt(np.mean(v**2)), np.sqrt(np.mean(samples**2, axis=1))),
    ):
        lo, hi = np.percentile(boot, q)
        out[name] = (float(point), float(lo), float(hi))
    return out


def property_columns(df: pd.DataFrame, target: str) -> list[tuple[str, str, np.ndarray]]:
    """(name, label, values) of every property in :data:`PROPERTIES` that ``df`` has with finite values."""
    out = []
    for col, label in PROPERTIES:
        name = col.format(target=target, pred=pred_column(target))
        if name == "label_sigma":
            pair = LABEL_PERCENTILES.get(target)
            if pair is None or not all(c in df.columns for c in pair):
                continue
            lo, hi = (pd.to_numeric(df[c], errors="coerce").to_numpy(dtype=float) for c in pair)
            values = np.where((lo > MISSING_BELOW) & (hi > MISSING_BELOW), (hi - lo) / 2, np.nan)
        elif name in df.columns:
            values = pd.to_numeric(df[name], errors="coerce").to_numpy(dtype=float)
            values = np.where(values > MISSING_BELOW, values, np.nan)
        else:
            continue
        if np.isfinite(values).sum() >= 2:
            out.append((name, label, values))
    return out


def _bins(x: np.ndarray, categorical: bool, n_bins: int, min_count: int) -> list[tuple[float, float, np.ndarray]]:
    """(lo, hi, mask) of each bin of the finite ``x``."""
    ok = np.isfinite(x)
    if categorical:
        vals, counts = np.unique(x[ok], return_counts=True)
        return [(float(v), float(v), ok & (x == v)) for v, c in zip(vals, counts, strict=True) if c >= min_count]
    n = int(ok.sum())
    k = max(1, min(n_bins, n // max(min_count, 1)))
    edges = np.unique(np.quantile(x[ok], np.linspace(0, 1, k + 1)))
    if len(edges) < 2:
        return [(float(edges[0]), float(edges[0]), ok)]
    which = np.clip(np.searchsorted(edges[1:-1], x, side="right"), 0, len(edges) - 2)
    return [(float(edges[b]), float(edges[b + 1]), ok & (which == b)) for b in range(len(edges) - 1)]


def systematics(
    table: pd.DataFrame,
    target: str = "oh_p50",
    n_bins: int = 5,
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
    min_count: int = 10,
) -> Systematics:
    """Binned bias and scatter of dZ against every available property (see the module docstring).

    Parameters
    ----------
    table : pandas.DataFrame
        Predictions (``<target>_pred``) with the truth and the catalogue columns joined.
    n_bins : int
        Equal-count bins per numeric property (fewer when a bin would hold under ``min_count``).
    n_boot : int
        Bootstrap resamples per bin.
    level : float
        Confidence level of the bootstrap intervals.
    seed : int
        Seeds the bootstrap.
    min_count : int
        Fewest galaxies in a bin (categories with fewer are left out).

    Raises
    ------
    DataError
        No finite residuals, or bad settings.
    """
    if n_bins < 1 or n_boot < 10 or not 0 < level < 1 or min_count < 2:
        raise DataError(
            f"systematics: need bins >= 1, bootstrap >= 10, 0 < level < 1 and min_count >= 2 "
            f"(got {n_bins}, {n_boot}, {level}, {min_count})"
        )
    pc = pred_column(target)
    for c in (pc, target):
        if c not in table.columns:
            raise DataError(f"systematics: predictions table has no column {c!r}")
    table, excluded = usable_rows(table, [target], "systematics")  # never a -9999 truth as a number
    dz_all = table[pc].to_numpy(dtype=float) - table[target].to_numpy(dtype=float)
    keep = np.isfinite(dz_all)
    if keep.sum() < min_count:
        raise DataError(f"systematics: {int(keep.sum())} rows with a finite residual; need at least {min_count}")
    df = table[keep].reset_index(drop=True)
    dz = dz_all[keep]
    rng = np.random.default_rng(seed)
    rows: list[dict[str, Any]] = []
    trends: dict[str, dict[str, Any]] = {}
    from scipy.stats import spearmanr

    for name, label, x in property_columns(df, target):
        categorical = name in CATEGORICAL
        bins = _bins(x, categorical, n_bins, min_count)
        for b, (lo, hi, mask) in enumerate(bins):
            ci = bootstrap_ci(dz[mask], n_boot, level, rng)
            row = {"property": name, "label": label, "bin": b, "lo": lo, "hi": hi}
            row.update({"x": float(np.median(x[mask])), "n": int(mask.sum())})
            for stat, (v, v_lo, v_hi) in ci.items():
                row.update({stat: v, f"{stat}_lo": v_lo, f"{stat}_hi": v_hi})
            rows.append(row)
        ok = np.isfinite(x)
        trend: dict[str, Any] = {"label": label, "n": int(ok.sum()), "categorical": categorical}
        if ssfr_caveat(name):
            trend["caveat"] = ssfr_caveat(name)
        if not categorical and ok.sum() >= 3 and np.ptp(x[ok]) > 0:
            rho, p = spearmanr(x[ok], dz[ok])
            trend.update({"spearman_rho": float(rho), "spearman_p": float(p)})
        mine = [r for r in rows if r["property"] == name]
        if mine:
            worst = max(mine, key=lambda r: abs(float(r["bias"])))
            trend["max_abs_bias"] = {k: worst[k] for k in ("bias", "bias_lo", "bias_hi", "lo", "hi", "n")}
        trends[name] = trend
    settings = {
        "target": target,
        "n": int(len(dz)),
        "bins": n_bins,
        "n_boot": n_boot,
        "level": level,
        "seed": seed,
        "min_count": min_count,
        "excluded": excluded,
    }
    return Systematics(pd.DataFrame(rows), trends, settings)
