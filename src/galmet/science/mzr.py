"""Stellar mass and the mass-metallicity relation (paper, Figures 5 and 6), with null tests.

Two uses of a CNN trained on stellar mass (target ``lgm_tot_p50``) and one trained on
metallicity (``oh_p50``), joined by objID:

- Z_MZR: metallicity implied by the *predicted* mass through the Tremonti et al. (2004)
  relation Z = -1.492 + 1.847 x - 0.08026 x^2 (x = log M*/Msun, the paper's Eq. 3), compared
  with Z_true (the paper: 0.12 dex scatter, worse than the CNN's direct 0.085 dex); and through
  the same quadratic re-fitted to the dataset's own train split (Eq. 3 was fitted to Tremonti's
  DR2 masses, not to DR7 ``lgm_tot_p50``).
- The predicted MZR: Z_pred against the *true* mass, its median and its scatter about the MZR
  (RMSE and NMAD of Z_pred - MZR(M_true)) in 0.2 dex mass bins, against Tremonti's median and
  his +- 1 sigma (about 0.10 dex, measured on his DR2 sample, not on this one).

What a tight predicted MZR does and does not show (paper, section 5.2). A calibrated regressor
(E[Z_true | Z_pred] = Z_pred) is tighter than the truth at fixed mass by construction:
Var(Z_pred | M) = Var(Z_true | M) - Var(Z_true - Z_pred | M), so with an RMSE of 0.085 dex and a
true scatter of 0.10 dex one expects sqrt(0.10^2 - 0.085^2) = 0.05 dex, however the network
works. :func:`null_tests` therefore reports, beside the measured scatter, that expected scatter,
the predicted-MZR scatter of a photometry-only random forest on the same galaxies (which cannot
have learned anything beyond gri magnitudes), and, when a specific star-formation rate is
available, the partial correlations with it at fixed mass: a network that learned the
fundamental metallicity relation (a "hidden variable") leaves residuals Z_pred - Z_true that do
not correlate with sSFR at fixed mass. A tight predicted MZR alone is not evidence of a hidden
variable; a measured scatter well *below* the calibrated expectation, or residuals free of the
sSFR dependence that Z_true has, would be.

The sSFR test is not a clean null test on MPA-JHU data: the sSFR and the O/H come from the same
fibre spectra (H-alpha, the same dust correction), so their measurement errors correlate and the
residuals Z_pred - Z_true of even a perfect model (minus the label's error) correlate with the
sSFR (:data:`galmet.science.stats.SSFR_CAVEAT`, attached to the result as ``caveat``). The
photometry-only forest's residuals on the same galaxies (``rf_dz``) carry the same term and are
the comparison; an SFR tracer independent of the spectra would remove it.

The Tremonti fit holds for about 8.5 < x < 11.5 (the parabola peaks at x = 11.5); it is
applied as is outside that range, as in the paper.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from galmet.data.labels import describe_exclusions, mask_invalid_labels, usable_rows
from galmet.errors import DataError
from galmet.paper import PAPER_MASS_METRICS, PAPER_METRICS, PAPER_MZR_SCATTER, TREMONTI_SIGMA, tremonti_mzr
from galmet.science.baseline import ForestConfig, out_of_sample_forest
from galmet.science.metrics import bootstrap_metrics, format_interval, regression_metrics, select_split
from galmet.science.predictions import dataset_catalog, join_dataset, load_predictions
from galmet.science.stats import (
    STATISTICS,
    binned_statistics,
    fixed_width_bins,
    partial_correlation,
    pooled_scatter,
    ssfr_caveat,
)

log = logging.getLogger(__name__)

MASS = "lgm_tot_p50"
Z = "oh_p50"
#: Catalogue columns of log specific star-formation rate (yr^-1) looked for, in order: MPA-JHU's,
#: the synthetic catalogue's.
SSFR_COLUMNS = ("specsfr_tot_p50", "log_ssfr")
#: MPA-JHU log SFR (Msun/yr), which ``galmet catalog`` queries: without an sSFR column the sSFR is
#: derived from it as ``sfr_tot_p50 - lgm_tot_p50``, named DERIVED_SSFR.
SFR, DERIVED_SSFR = "sfr_tot_p50", "log_ssfr_from_sfr"
#: The MZR a predicted MZR is compared with: the paper's Eq. 3, or Eq. 3's quadratic re-fitted
#: to the dataset's train split.
RELATIONS = ("tremonti", "refit")
#: Mass bins (dex) and the smallest bin count of the re-fitted MZR (Tremonti fitted medians in
#: 0.1 dex bins).
REFIT_BIN_WIDTH, REFIT_MIN_COUNT = 0.1, 20


@dataclass(frozen=True)
class MZRRelation:
    """A quadratic mass-metallicity relation Z = a + b x + c x^2 (x = log M*/Msun, Z in dex).

    Attributes
    ----------
    name : str
        ``tremonti`` or ``refit``.
    coefficients : tuple of 3 float
        (a, b, c).
    label : str
        For legends and tables.
    n : int
        Galaxies it was fitted to (0 for Tremonti's published fit).
    """

    name: str
    coefficients: tuple[float, float, float]
    label: str
    n: int = 0

    def __call__(self, log_mass):
        a, b, c = self.coefficients
        x = np.asarray(log_mass, dtype=float)
        return a + b * x + c * x**2


#: The paper's Eq. 3 (Tremonti et al. 2004).
TREMONTI = MZRRelation("tremonti", (-1.492, 1.847, -0.08026), "Tremonti+04 (Eq. 3)")


def fit_mzr(log_mass, z, bin_width: float = REFIT_BIN_WIDTH, min_count: int = REFIT_MIN_COUNT) -> MZRRelation:
    """Eq. 3's quadratic fitted (least squares) to the median Z in ``bin_width`` dex mass bins
    with at least ``min_count`` galaxies, as Tremonti fitted his medians.

    Raises
    ------
    DataError
        Fewer than 3 such bins.
    """
    m = np.asarray(log_mass, dtype=float)
    tab = binned_statistics(m, z, fixed_width_bins(m, bin_width), ["median"], min_count).dropna()
    if len(tab) < 3:
        raise DataError(f"too few galaxies to re-fit the MZR ({len(tab)} mass bins with >= {min_count} galaxies)")
    c, b, a = np.polyfit(tab["center"].to_numpy(), tab["median"].to_numpy(), 2)
    return MZRRelation("refit", (float(a), float(b), float(c)), "MZR re-fitted on the train split", int(len(m)))


def _rms_about_median(v: np.ndarray) -> float:
    return float(np.sqrt(np.mean((v - np.median(v)) ** 2)))


def mzr_bins(
    log_mass, z, bin_width: float = 0.2, min_count: int = 10, relation: MZRRelation = TREMONTI
) -> pd.DataFrame:
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
    relation : MZRRelation
        The MZR the offsets ``z - relation(log_mass)`` are measured from (default Eq. 3).

    Returns
    -------
    pandas.DataFrame
        ``lo``, ``hi``, ``center``, ``count``, ``median``, ``rmse`` (RMS about the bin
        median), ``nmad``, ``p16``, ``p84``, ``std`` (about the bin mean), ``rmse_mzr`` and
        ``nmad_mzr`` (RMS and NMAD of ``z - relation(log_mass)``, the paper's Fig 6 scatter),
        ``tremonti`` (Tremonti median at the centre), ``offset`` (median - tremonti), all in dex.
    """
    m = np.asarray(log_mass, dtype=float)
    zv = np.asarray(z, dtype=float)
    edges = fixed_width_bins(m, bin_width)
    # rmse here is the scatter about the bin median, not about zero; the rest are the shared ones
    stats = {
        "median": STATISTICS["median"],
        "rmse": _rms_about_median,
        "nmad": STATISTICS["nmad"],
        "p16": STATISTICS["p16"],
        "p84": STATISTICS["p84"],
        "std": STATISTICS["std"],
    }
    tab = binned_statistics(m, zv, edges, stats, min_count)
    about = binned_statistics(m, zv - relation(m), edges, ["rmse", "nmad"], min_count)
    tab["rmse_mzr"], tab["nmad_mzr"] = about["rmse"], about["nmad"]
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
            raise DataError("no true stellar mass (lgm_tot_p50) in the mass predictions; pass dataset", param="dataset")
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


def null_tests(j: pd.DataFrame, edges, min_count: int = 10, pred: str = f"{Z}_pred") -> tuple[dict, pd.DataFrame]:
    """What a calibrated regressor with this error would give at fixed mass, against what ``pred`` gives.

    Per mass bin: ``std_true`` = std(Z_true), ``std_pred`` = std(Z_pred), ``rmse_dz`` = RMS of
    Z_pred - Z_true, and ``expected_pred`` = sqrt(max(std_true^2 - rmse_dz^2, 0)), the scatter a
    calibrated regressor with that error would show. Pooled over the bins (count-weighted
    variances), the expectation is the issue's sqrt(sigma(Z_true | M)^2 - RMSE^2).

    Parameters
    ----------
    j : pandas.DataFrame
        ``lgm_tot_p50`` (true mass), ``oh_p50`` and the prediction column ``pred`` (dex).
    edges : array-like
        Mass bin edges (dex).
    min_count : int
        Bins with fewer galaxies are left out.

    Returns
    -------
    (dict, pandas.DataFrame)
        ``n``, ``sigma_true_given_mass``, ``sigma_pred_given_mass``, ``rmse`` (all pooled, dex),
        ``expected_calibrated``, ``ratio`` (measured / expected); and the per-bin table
        (``center``, ``count``, ``std_true``, ``std_pred``, ``rmse_dz``, ``expected_pred``).
    """
    m, zt, zp = (j[c].to_numpy(dtype=float) for c in (MASS, Z, pred))
    t = binned_statistics(m, zt, edges, ["std"], min_count).rename(columns={"std": "std_true"})
    t["std_pred"] = binned_statistics(m, zp, edges, ["std"], min_count)["std"]
    t["rmse_dz"] = binned_statistics(m, zp - zt, edges, ["rmse"], min_count)["rmse"]
    t["expected_pred"] = np.sqrt(np.clip(t["std_true"] ** 2 - t["rmse_dz"] ** 2, 0, None))
    used = t[np.isfinite(t["std_true"].to_numpy(dtype=float))]
    sig_t, sig_p, err = (pooled_scatter(t, c) for c in ("std_true", "std_pred", "rmse_dz"))
    expected = float(np.sqrt(max(sig_t**2 - err**2, 0.0))) if np.isfinite(sig_t) else float("nan")
    out = {
        "n": int(used["count"].sum()),
        "sigma_true_given_mass": sig_t,
        "sigma_pred_given_mass": sig_p,
        "rmse": err,
        "expected_calibrated": expected,
        "ratio": sig_p / expected if expected > 0 else float("nan"),
    }
    return out, t[["center", "count", "std_true", "std_pred", "rmse_dz", "expected_pred"]]


#: How the forest of the MZR null test predicts the dataset's galaxies (:func:`out_of_sample_forest`).
FOREST_SOURCE = (
    "gri random forest (40 trees, leaf 8), each galaxy out of sample: test rows from the forest on "
    "the train + valid rows, train and valid rows out of fold (5 folds)"
)


def _forest_predictions(rf, catalog: pd.DataFrame | None, j: pd.DataFrame) -> tuple[np.ndarray | None, str, dict]:
    """Random-forest Z for the rows of ``j`` (NaN where missing), where it came from (a given
    predictions table, or :func:`galmet.science.baseline.out_of_sample_forest` on the catalogue's
    gri magnitudes) and, reason -> count, why rows of ``j`` have none."""
    if rf is not None:
        table, _ = load_predictions(rf, Z)
        source = "given" if isinstance(rf, pd.DataFrame) else str(rf)
        absent = "no row in the random-forest predictions"
    elif catalog is not None and all(f"modelMag_{b}" in catalog.columns for b in "gri") and Z in catalog.columns:
        if "objID" not in catalog.columns:
            return None, "", {}
        try:
            pred = out_of_sample_forest(
                catalog, "gri", Z, ForestConfig(), catalog["objID"].isin(j["objID"]), where="dataset"
            )
        except DataError as exc:
            log.warning("MZR null test: no random forest (%s)", exc)
            return None, "", {}
        table = pd.DataFrame({"objID": catalog["objID"].to_numpy(), f"{Z}_pred": pred})
        source, absent = FOREST_SOURCE, "not in the dataset's catalogue"
    else:
        return None, "", {}
    if "objID" not in table.columns:
        raise DataError("random-forest predictions have no objID column to join on")
    z_rf = j[["objID"]].merge(table[["objID", f"{Z}_pred"]].drop_duplicates("objID"), on="objID", how="left")
    z_rf = z_rf[f"{Z}_pred"].to_numpy(dtype=float)
    listed = j["objID"].isin(table["objID"]).to_numpy()
    why = {absent: int((~listed).sum())}
    why["no finite gri magnitudes" if rf is None else "no finite prediction"] = int((listed & ~np.isfinite(z_rf)).sum())
    return z_rf, source, {k: v for k, v in why.items() if v}


def ssfr_tests(j: pd.DataFrame, column: str, edges, min_count: int = 10) -> dict:
    """Partial correlations (Pearson, at fixed mass, 95% intervals) of the sSFR ``column`` with
    Z_true, Z_pred and dZ = Z_pred - Z_true, and with the forest's when ``z_rf`` is present.

    A network that learned the sSFR dependence of Z at fixed mass (the fundamental metallicity
    relation) has ``z_pred`` correlated like ``z_true`` and ``dz`` uncorrelated; one that learned
    the mass alone has ``dz`` correlated with the opposite sign of ``z_true``.
    """
    m, s = j[MASS].to_numpy(dtype=float), j[column].to_numpy(dtype=float)
    zt, zp = j[Z].to_numpy(dtype=float), j[f"{Z}_pred"].to_numpy(dtype=float)
    out: dict = {"column": column}
    for name, v in (("z_true", zt), ("z_pred", zp), ("dz", zp - zt)):
        out[name] = partial_correlation(v, s, m, edges, min_count)
    if "z_rf" in j.columns and np.isfinite(j["z_rf"]).any():
        zr = j["z_rf"].to_numpy(dtype=float)
        out["rf_pred"] = partial_correlation(zr, s, m, edges, min_count)
        out["rf_dz"] = partial_correlation(zr - zt, s, m, edges, min_count)
    return out


def _forest_null_test(rf, catalog, j: pd.DataFrame, edges, min_count: int, nulls: dict, null_bins) -> pd.DataFrame:
    """Add the random forest's null test to ``nulls`` (``rf``) and ``null_bins`` (``std_rf``,
    ``rmse_rf``) when its predictions cover enough of ``j``; returns ``j`` with ``z_rf``."""
    z_rf, source, why = _forest_predictions(rf, catalog, j)
    if z_rf is None:
        return j
    covered = int(np.isfinite(z_rf).sum())
    said = "; ".join(f"{n} {reason}" for reason, n in why.items())
    if covered < 2 * min_count:
        log.warning(
            "MZR null test: no random forest: %d of %d galaxies have its predictions (%s)", covered, len(j), said
        )
        return j
    if why:
        log.warning("MZR null test: the random forest predicts %d of %d galaxies (%s)", covered, len(j), said)
    j = j.assign(z_rf=z_rf)
    has = j[np.isfinite(z_rf)].rename(columns={f"{Z}_pred": "_cnn", "z_rf": f"{Z}_pred"})
    nulls["rf"], rf_bins = null_tests(has, edges, min_count)
    nulls["rf"].update({"source": source, "galaxies": covered, "of": int(len(j)), "left_out": why})
    null_bins["std_rf"], null_bins["rmse_rf"] = rf_bins["std_pred"], rf_bins["rmse_dz"]
    return j


def _ssfr_null_test(ssfr: str | None, catalog, j: pd.DataFrame, edges, min_count: int):
    """(``j`` with the sSFR column, :func:`ssfr_tests` or None): the column asked for, else the
    first of :data:`SSFR_COLUMNS` found, else sSFR derived from MPA-JHU's log SFR."""
    col = ssfr or next((c for c in SSFR_COLUMNS if c in j.columns or (catalog is not None and c in catalog)), None)
    if col is None and catalog is not None and SFR in catalog.columns:
        # galmet catalog queries MPA-JHU's log SFR, not sSFR: log sSFR = log SFR - log M* (true mass)
        j = join_dataset(j, catalog, [SFR])
        j, _ = mask_invalid_labels(j, [SFR])
        j[DERIVED_SSFR] = j[SFR].to_numpy(dtype=float) - j[MASS].to_numpy(dtype=float)
        col = DERIVED_SSFR
    if col is None:
        return j, None
    if col not in j.columns:
        if catalog is None or col not in catalog.columns:
            raise DataError(f"no sSFR column {col!r} in the predictions or the dataset")
        j = join_dataset(j, catalog, [col])
    j, invalid = mask_invalid_labels(j, [col])  # a -9999 sSFR is left out of the correlations
    result = ssfr_tests(j, col, edges, min_count)
    result["invalid"] = invalid.get(col, {}).get("n", 0)
    caveat = ssfr_caveat(col)
    if caveat:
        result["caveat"] = caveat
    return j, result


def _refit(catalog: pd.DataFrame | None) -> MZRRelation | None:
    """Eq. 3's quadratic re-fitted to the catalogue's train + valid rows (None without them)."""
    if catalog is None or not {Z, MASS, "split"} <= set(catalog.columns):
        return None
    fit = catalog[catalog["split"].astype(str).isin(["train", "valid"])]
    try:
        fit, _ = usable_rows(fit, [Z, MASS], "train split")
        return fit_mzr(fit[MASS], fit[Z])
    except DataError as exc:
        log.warning("MZR: no re-fitted relation (%s)", exc)
        return None


def mzr_analysis(
    metallicity,
    mass,
    dataset=None,
    split: str | None = "test",
    bin_width: float = 0.2,
    min_count: int = 10,
    rf=None,
    ssfr: str | None = None,
    relation: str = "tremonti",
    use_rf: bool = True,
) -> dict:
    """All numbers of Figures 5 and 6, and the null tests of the predicted MZR.

    Parameters
    ----------
    metallicity, mass : path-like or pandas.DataFrame
        Predictions of ``oh_p50`` and ``lgm_tot_p50`` (``galmet predict`` format).
    dataset : path-like, Dataset or catalogue DataFrame, optional
        Supplies missing truths, the sSFR column, the gri magnitudes of the random forest and
        the train split of the re-fitted MZR.
    split : str or None
        Rows analysed (default ``test``).
    bin_width, min_count : float, int
        Mass bins (dex) and the smallest bin with statistics.
    rf : path-like or pandas.DataFrame, optional
        Random-forest Z predictions of the same galaxies; default: fitted from ``dataset``'s gri
        magnitudes when it has them (and ``use_rf``).
    ssfr : str, optional
        Column of log sSFR; default the first of :data:`SSFR_COLUMNS` found, else
        ``sfr_tot_p50 - lgm_tot_p50`` when the dataset has MPA-JHU's log SFR.
    relation : {"tremonti", "refit"}
        The MZR the predicted MZR's scatter (Fig 6) is measured about.

    Returns
    -------
    dict
        ``joined`` (:func:`join_mass_metallicity`, plus ``z_mzr_refit``, ``z_rf`` and the sSFR
        column when available), ``bins`` / ``bins_true`` (:func:`mzr_bins` of Z_pred / Z_true vs
        true mass), ``null_bins`` (per-bin null test), ``relation`` and ``refit``
        (:class:`MZRRelation` or None), and ``metrics`` (the JSON of ``galmet mzr``).
    """
    if relation not in RELATIONS:
        raise DataError(f"relation must be one of {', '.join(RELATIONS)}, got {relation!r}", param="relation")
    catalog = None if dataset is None else dataset_catalog(dataset)[0]
    j = join_mass_metallicity(metallicity, mass, catalog, split)
    excluded = j.attrs.get("excluded", {})
    refit = _refit(catalog)
    if relation == "refit" and refit is None:
        raise DataError("relation refit needs dataset with train rows holding oh_p50 and lgm_tot_p50", param="relation")
    rel = refit if relation == "refit" and refit is not None else TREMONTI
    cols = _MZRColumns.of(j)
    edges = fixed_width_bins(cols.m_true, bin_width)
    bins = mzr_bins(cols.m_true, cols.z_pred, bin_width, min_count, rel)
    bins_true = mzr_bins(cols.m_true, cols.z_true, bin_width, min_count, rel)
    nulls, null_bins = null_tests(j, edges, min_count)

    if rf is not None or use_rf:
        j = _forest_null_test(rf, catalog, j, edges, min_count, nulls, null_bins)
    j, ssfr_result = _ssfr_null_test(ssfr, catalog, j, edges, min_count)

    metrics = {
        "n": int(len(j)),
        "excluded": excluded,
        "split": split if split not in (None, "all") else "all",
        **_figure_metrics(cols, j["z_mzr"].to_numpy(float), bins, bins_true, rel),
        "null_tests": nulls,
        "ssfr": ssfr_result,
        "tremonti_sigma": {"value": TREMONTI_SIGMA, "note": "Tremonti et al. (2004) +-1 sigma on their DR2 sample"},
        "bin_width": bin_width,
    }
    if refit is not None:
        j["z_mzr_refit"] = refit(cols.m_pred)
        metrics["refit"] = _refit_metrics(cols, j["z_mzr_refit"].to_numpy(float), refit)
    return {
        "joined": j,
        "bins": bins,
        "bins_true": bins_true,
        "null_bins": null_bins,
        "relation": rel,
        "refit": refit,
        "metrics": metrics,
    }


@dataclass(frozen=True)
class _MZRColumns:
    """The four columns of a joined MZR table (:func:`join_mass_metallicity`) as float arrays (N,):
    true and predicted 12 + log(O/H) and log stellar mass (dex)."""

    z_true: np.ndarray
    z_pred: np.ndarray
    m_true: np.ndarray
    m_pred: np.ndarray

    @classmethod
    def of(cls, joined: pd.DataFrame) -> _MZRColumns:
        return cls(*(joined[c].to_numpy(float) for c in (Z, f"{Z}_pred", MASS, f"{MASS}_pred")))


def _figure_metrics(
    cols: _MZRColumns, z_mzr: np.ndarray, bins: pd.DataFrame, bins_true: pd.DataFrame, rel: MZRRelation
) -> dict:
    """The numbers of Figures 5 and 6 (dex) with the paper's beside them: the mass, Z_MZR (``z_mzr``,
    Eq. 3 at the predicted mass) and Z_pred against their truths, Eq. 3 at the true mass, and the
    scatters of the predicted and true MZR (``bins``, ``bins_true``) about their bin medians and
    about ``rel``."""
    zt, zp, mt, mp = cols.z_true, cols.z_pred, cols.m_true, cols.m_pred
    return {
        "mass": {**_scored(mt, mp), "paper": dict(PAPER_MASS_METRICS)},
        "z_mzr": {**_scored(zt, z_mzr), "paper": {"rmse": PAPER_MZR_SCATTER}},
        "z_pred": {**_scored(zt, zp), "paper": dict(PAPER_METRICS)},
        "tremonti_true": regression_metrics(tremonti_mzr(mt), zt),
        "mzr_pred_scatter": _weighted_nmad(bins),
        "mzr_true_scatter": _weighted_nmad(bins_true),
        "relation": {"name": rel.name, "label": rel.label, "coefficients": list(rel.coefficients)},
        "mzr_pred_scatter_about_relation": {
            "rmse": pooled_scatter(bins, "rmse_mzr"),
            "nmad": _weighted_nmad(bins, "nmad_mzr"),
        },
        "mzr_true_scatter_about_relation": {
            "rmse": pooled_scatter(bins_true, "rmse_mzr"),
            "nmad": _weighted_nmad(bins_true, "nmad_mzr"),
        },
    }


def _scored(y_true: np.ndarray, y_pred: np.ndarray) -> dict:
    """:func:`regression_metrics` of ``y_pred`` against ``y_true`` (N,), dex, with their percentile
    bootstrap ``intervals`` (:func:`bootstrap_metrics`, 2000 resamples, seed 0)."""
    return {**regression_metrics(y_true, y_pred), "intervals": bootstrap_metrics(y_true, y_pred)}


def _refit_metrics(cols: _MZRColumns, z_mzr_refit: np.ndarray, refit: MZRRelation) -> dict:
    """The re-fitted relation's coefficients and fit size, and its Z_MZR (``z_mzr_refit``, from the
    predicted mass) and its Z at the true mass, each against Z_true (dex)."""
    return {
        "coefficients": list(refit.coefficients),
        "n_fit": refit.n,
        "z_mzr": regression_metrics(cols.z_true, z_mzr_refit),
        "true_mass": regression_metrics(refit(cols.m_true), cols.z_true),
    }


def _weighted_nmad(tab: pd.DataFrame, column: str = "nmad") -> float:
    """Count-weighted mean of a per-bin NMAD column over the bins where it is finite (dex)."""
    g = tab.dropna(subset=[column])
    return float(np.average(g[column], weights=g["count"])) if len(g) else float("nan")


def _fmt(v, fmt: str = "{:.4f}") -> str:
    return "-" if v is None or not np.isfinite(v) else fmt.format(v)


def _span(scores: dict, key: str) -> str:
    """The 95% bootstrap interval of ``scores``' ``key`` (``rmse``/``nmad``) as ``[lo, hi]``; ``""``
    for scores without intervals (a JSON from before them)."""
    return format_interval((scores.get("intervals") or {}).get(key))


def _forest_coverage(r: dict) -> str:
    """``all 500 galaxies``, or ``480 of 500 galaxies: 20 no finite gri magnitudes``; then how many
    lie in mass bins with enough galaxies for the statistics."""
    of = r.get("of", r["n"])
    galaxies = r.get("galaxies", r["n"])
    text = f"all {of} galaxies" if galaxies == of else f"{galaxies} of {of} galaxies"
    if r.get("left_out"):
        text += ": " + "; ".join(f"{n} {why}" for why, n in r["left_out"].items())
    if r["n"] != galaxies:
        text += f"; {r['n']} in mass bins with enough galaxies"
    return text


def _ssfr_lines(s: dict | None) -> list[str]:
    """The lines of :func:`format_mzr` for the sSFR partial correlations (none without them), with
    the caveat of an sSFR from the label's own spectra."""
    if not s:
        return []
    lines = [f"partial correlation with {s['column']} at fixed mass (Pearson r, 95% interval):"]
    labels = {"z_true": "Z_true", "z_pred": "Z_pred", "dz": "Z_pred - Z_true", "rf_dz": "Z_rf - Z_true"}
    for key, label in labels.items():
        if key in s:
            c = s[key]
            r, lo, hi = (_fmt(c[k], "{:+.3f}") for k in ("r", "lo", "hi"))
            lines.append(f"  {label:<16} r = {r} [{lo}, {hi}] (n = {c['n']})")
    if s.get("caveat"):
        lines.append(f"  caveat: {s['caveat']}")
    return lines


def format_mzr(metrics: dict) -> str:
    """Plain-text summary of :func:`mzr_analysis` metrics, each reference value labelled by its source."""
    m = metrics
    rows = [
        ("mass: RMSE (dex)", m["mass"]["rmse"], m["mass"]["paper"]["rmse"], "paper, Fig 5", _span(m["mass"], "rmse")),
        ("mass: NMAD (dex)", m["mass"]["nmad"], m["mass"]["paper"]["nmad"], "paper, Fig 5", _span(m["mass"], "nmad")),
        (
            "Z_MZR(Eq. 3) vs Z_true: RMSE",
            m["z_mzr"]["rmse"],
            m["z_mzr"]["paper"]["rmse"],
            "paper, Fig 5",
            _span(m["z_mzr"], "rmse"),
        ),
        ("Z_MZR(Eq. 3) vs Z_true: NMAD", m["z_mzr"]["nmad"], None, "", _span(m["z_mzr"], "nmad")),
    ]
    if "refit" in m:
        rows.append(("Z_MZR(refit) vs Z_true: RMSE", m["refit"]["z_mzr"]["rmse"], None, "", ""))
    rows += [
        (
            "Z_pred vs Z_true: RMSE",
            m["z_pred"]["rmse"],
            m["z_pred"]["paper"]["rmse"],
            "paper, test set",
            _span(m["z_pred"], "rmse"),
        ),
        ("predicted MZR scatter (NMAD)", m["mzr_pred_scatter"], TREMONTI_SIGMA, "Tremonti+04 sigma, DR2", ""),
        ("true MZR scatter (NMAD)", m["mzr_true_scatter"], TREMONTI_SIGMA, "Tremonti+04 sigma, DR2", ""),
    ]
    lines = [
        f"MZR analysis: {m['n']} galaxies (split {m['split']})",
        f"{'quantity':<32}{'galmet':>10}{'95% interval':>20}{'reference':>11}  source",
    ]
    for name, ours, ref, src, span in rows:
        lines.append(f"{name:<32}{_fmt(ours):>10}{span or '-':>20}{_fmt(ref, '{:.3f}'):>11}  {src}")
    n = m["null_tests"]
    lines += [
        "null test of the predicted MZR (pooled over mass bins, dex):",
        f"  sigma(Z_true | M) {_fmt(n['sigma_true_given_mass'])}, RMSE {_fmt(n['rmse'])}: a calibrated regressor "
        f"is expected at sqrt(sigma^2 - RMSE^2) = {_fmt(n['expected_calibrated'])}",
        f"  measured sigma(Z_pred | M) {_fmt(n['sigma_pred_given_mass'])} "
        + (
            f"({_fmt(n['ratio'], '{:.2f}')} x the calibrated expectation)"
            if n["expected_calibrated"] > 0
            else "(the RMSE exceeds sigma(Z_true | M), so the predictions are not calibrated at fixed mass: "
            "their scatter there need not follow Z_true)"
        ),
    ]
    if "rf" in n:
        r = n["rf"]
        lines.append(
            f"  photometry-only random forest ({_forest_coverage(r)}): sigma(Z_rf | M) "
            f"{_fmt(r['sigma_pred_given_mass'])}, RMSE {_fmt(r['rmse'])}, expected {_fmt(r['expected_calibrated'])}"
        )
    lines += _ssfr_lines(m.get("ssfr"))
    lines += [f"note: {line}" for line in describe_exclusions(m.get("excluded", {}))]
    return "\n".join(lines)
