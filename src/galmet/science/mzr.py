"""Stellar mass and the mass-metallicity relation (paper, Figures 5 and 6).

Two uses of a CNN trained on stellar mass (target ``lgm_tot_p50``) and one trained on
metallicity (``oh_p50``), joined by objID:

- Z_MZR: metallicity implied by the *predicted* mass through the Tremonti et al. (2004)
  relation Z = -1.492 + 1.847 x - 0.08026 x^2 (x = log M*/Msun), compared with Z_true
  (the paper: 0.12 dex scatter, worse than the CNN's direct 0.085 dex).
- The predicted MZR: Z_pred against the *true* mass, its median and scatter in 0.2 dex
  mass bins, against Tremonti's median and +- 1 sigma (about 0.10 dex).

The Tremonti fit holds for about 8.5 < x < 11.5 (the parabola peaks at x = 11.5); it is
applied as is outside that range, as in the paper.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from galmet.errors import DataError
from galmet.paper import PAPER_MASS_METRICS, PAPER_METRICS, PAPER_MZR_SCATTER, TREMONTI_SIGMA, tremonti_mzr
from galmet.science.metrics import describe_exclusions, regression_metrics, select_split, usable_rows
from galmet.science.predictions import join_dataset, load_predictions
from galmet.science.stats import STATISTICS, binned_statistics, fixed_width_bins

MASS = "lgm_tot_p50"
Z = "oh_p50"


def _rms_about_median(v: np.ndarray) -> float:
    return float(np.sqrt(np.mean((v - np.median(v)) ** 2)))


def mzr_bins(log_mass, z, bin_width: float = 0.2, min_count: int = 10) -> pd.DataFrame:
    """Median metallicity and its scatter in bins of stellar mass.

    Parameters
    ----------
    log_mass : array-like (N,)
        log10 stellar mass (dex, solar masses); bins of ``bin_width`` dex aligned to
        multiples of it (9.0, 9.2, ...).
    z : array-like (N,)
        12 + log(O/H) (dex).
    min_count : int
        Bins with fewer galaxies get NaN statistics.

    Returns
    -------
    pandas.DataFrame
        ``lo``, ``hi``, ``center``, ``count``, ``median``, ``rmse`` (RMS about the bin
        median), ``nmad``, ``p16``, ``p84``, ``tremonti`` (Tremonti median at the centre),
        ``offset`` (median - tremonti), all in dex.
    """
    m = np.asarray(log_mass, dtype=float)
    edges = fixed_width_bins(m, bin_width)
    # rmse here is the scatter about the bin median, not about zero; the rest are the shared ones
    stats = {
        "median": STATISTICS["median"],
        "rmse": _rms_about_median,
        "nmad": STATISTICS["nmad"],
        "p16": STATISTICS["p16"],
        "p84": STATISTICS["p84"],
    }
    tab = binned_statistics(m, z, edges, stats, min_count)
    tab["tremonti"] = tremonti_mzr(tab["center"].to_numpy())
    tab["offset"] = tab["median"] - tab["tremonti"]
    return tab


def join_mass_metallicity(metallicity, mass, dataset=None, split: str | None = "test") -> pd.DataFrame:
    """Join metallicity and mass predictions on objID.

    Parameters
    ----------
    metallicity, mass : path-like or pandas.DataFrame
        Predictions tables for ``oh_p50`` and ``lgm_tot_p50`` (``galmet predict`` format).
    dataset : path-like or Dataset, optional
        Supplies truths (``oh_p50``, ``lgm_tot_p50``) and ``split`` the files lack.
    split : str or None
        Keep rows of this split (from either file's ``split`` column); None/"all": all rows.

    Returns
    -------
    pandas.DataFrame
        ``objID``, ``split`` (when known), ``oh_p50``, ``oh_p50_pred``, ``lgm_tot_p50``,
        ``lgm_tot_p50_pred`` and ``z_mzr`` (Tremonti Z of the predicted mass), rows with
        any NaN dropped.
    """
    met, _ = load_predictions(metallicity, Z, dataset)
    ms, _ = load_predictions(mass, MASS, dataset)
    for name, df in (("metallicity", met), ("mass", ms)):
        if "objID" not in df.columns:
            raise DataError(f"{name} predictions have no objID column to join on")
    left = met[[c for c in ("objID", "split", Z, f"{Z}_pred") if c in met.columns]]
    right = ms[[c for c in ("objID", "split", MASS, f"{MASS}_pred") if c in ms.columns]]
    if "split" in left.columns:
        right = right.drop(columns=["split"], errors="ignore")
    joined = left.merge(right, on="objID", how="inner")
    if len(joined) == 0:
        raise DataError("metallicity and mass predictions have no objID in common")
    if MASS not in joined.columns or joined[MASS].isna().all():
        if dataset is None:
            raise DataError("no true stellar mass (lgm_tot_p50) in the mass predictions; pass --dataset DATASET")
        joined = join_dataset(joined, dataset, [MASS])
    joined = select_split(joined, split)
    # truths outside LABEL_RANGES (MPA-JHU's -9999) and missing ones leave the analysis, counted
    joined, excluded = usable_rows(joined, [Z, MASS], "MZR")
    for col in (f"{Z}_pred", f"{MASS}_pred"):
        nan = ~np.isfinite(joined[col].to_numpy(dtype=float))
        if nan.any():
            excluded[col] = {"missing": int(nan.sum()), "invalid": 0}
            joined = joined[~nan].reset_index(drop=True)
    if len(joined) == 0:
        raise DataError("no galaxy has all of oh_p50, oh_p50_pred, lgm_tot_p50, lgm_tot_p50_pred")
    joined["z_mzr"] = tremonti_mzr(joined[f"{MASS}_pred"].to_numpy(dtype=float))
    joined.attrs["excluded"] = excluded
    return joined


def mzr_analysis(
    metallicity, mass, dataset=None, split: str | None = "test", bin_width: float = 0.2, min_count: int = 10
) -> dict:
    """All numbers of Figures 5 and 6.

    Returns
    -------
    dict
        ``joined`` (table of :func:`join_mass_metallicity`), ``bins`` (:func:`mzr_bins` of
        Z_pred vs true mass), ``bins_true`` (the same for Z_true) and ``metrics``: ``mass``
        (predicted vs true mass), ``z_mzr`` (Z_MZR vs Z_true), ``z_pred`` (Z_pred vs Z_true),
        ``tremonti_true`` (Z_true vs Tremonti of the true mass), ``mzr_pred_scatter`` /
        ``mzr_true_scatter`` (count-weighted mean NMAD over the mass bins), with the paper's
        numbers.
    """
    j = join_mass_metallicity(metallicity, mass, dataset, split)
    zt, zp = j[Z].to_numpy(float), j[f"{Z}_pred"].to_numpy(float)
    mt, mp = j[MASS].to_numpy(float), j[f"{MASS}_pred"].to_numpy(float)
    bins = mzr_bins(mt, zp, bin_width, min_count)
    bins_true = mzr_bins(mt, zt, bin_width, min_count)

    def weighted(tab):
        g = tab.dropna(subset=["nmad"])
        return float(np.average(g["nmad"], weights=g["count"])) if len(g) else float("nan")

    metrics = {
        "n": int(len(j)),
        "excluded": j.attrs.get("excluded", {}),
        "split": split if split not in (None, "all") else "all",
        "mass": {**regression_metrics(mt, mp), "paper": dict(PAPER_MASS_METRICS)},
        "z_mzr": {**regression_metrics(zt, j["z_mzr"].to_numpy(float)), "paper": {"rmse": PAPER_MZR_SCATTER}},
        "z_pred": {**regression_metrics(zt, zp), "paper": dict(PAPER_METRICS)},
        "tremonti_true": regression_metrics(tremonti_mzr(mt), zt),
        "mzr_pred_scatter": weighted(bins),
        "mzr_true_scatter": weighted(bins_true),
        "tremonti_sigma": TREMONTI_SIGMA,
        "bin_width": bin_width,
    }
    return {"joined": j, "bins": bins, "bins_true": bins_true, "metrics": metrics}


def format_mzr(metrics: dict) -> str:
    """Plain-text summary of :func:`mzr_analysis` metrics with the paper's values."""
    m = metrics
    rows = [
        ("mass: RMSE (dex)", m["mass"]["rmse"], m["mass"]["paper"]["rmse"]),
        ("mass: NMAD (dex)", m["mass"]["nmad"], m["mass"]["paper"]["nmad"]),
        ("Z_MZR vs Z_true: RMSE", m["z_mzr"]["rmse"], m["z_mzr"]["paper"]["rmse"]),
        ("Z_MZR vs Z_true: NMAD", m["z_mzr"]["nmad"], None),
        ("Z_pred vs Z_true: RMSE", m["z_pred"]["rmse"], m["z_pred"]["paper"]["rmse"]),
        ("predicted MZR scatter (NMAD)", m["mzr_pred_scatter"], m["tremonti_sigma"]),
        ("true MZR scatter (NMAD)", m["mzr_true_scatter"], m["tremonti_sigma"]),
    ]
    lines = [f"MZR analysis: {m['n']} galaxies (split {m['split']})", f"{'quantity':<30}{'galmet':>10}{'paper':>10}"]
    for name, ours, theirs in rows:
        lines.append(f"{name:<30}{ours:>10.4f}" + (f"{theirs:>10.3f}" if theirs is not None else f"{'-':>10}"))
    lines += [f"note: {line}" for line in describe_exclusions(m.get("excluded", {}))]
    return "\n".join(lines)
