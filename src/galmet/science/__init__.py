"""galmet.science: the analyses, torch-free (numpy, pandas, scikit-learn) and drawn by plots/.

The public API (each name imported on first use)::

    regression_metrics(y_true, y_pred)   # RMSE, NMAD, bias, outliers (dex)
    summarize(predictions, target)       # the same for a predictions table
    bootstrap_rmse                       # RMSE with its bootstrap interval
    fit_calibration, uncertainty_metrics # fit and score error bars (coverage, width, PIT, CRPS)
    constant_baseline, random_forest_baseline  # the paper's baselines
    fit_mzr, mzr_analysis                # the mass-metallicity relation and the paper's MZR tests

Modules: :mod:`.metrics`, :mod:`.stats`, :mod:`.predictions`, :mod:`.baseline`, :mod:`.mzr`,
:mod:`.resolution`, :mod:`.calibration`, :mod:`.systematics`, :mod:`.attribution`; figures are
Display classes in :mod:`.plots`.
"""

from galmet._lazy import lazy_exports

_NAMES = {
    "regression_metrics": "galmet.science.metrics",
    "summarize": "galmet.science.metrics",
    "bootstrap_rmse": "galmet.science.metrics",
    "fit_calibration": "galmet.science.calibration",
    "uncertainty_metrics": "galmet.science.calibration",
    "constant_baseline": "galmet.science.baseline",
    "random_forest_baseline": "galmet.science.baseline",
    "fit_mzr": "galmet.science.mzr",
    "mzr_analysis": "galmet.science.mzr",
}
__all__ = list(_NAMES)
__getattr__, __dir__ = lazy_exports(__name__, _NAMES)
