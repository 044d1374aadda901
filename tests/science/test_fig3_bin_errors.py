"""Figure 3's per-bin statistics carry their standard errors, and the figure draws them (issue 19)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
from matplotlib.container import ErrorbarContainer

from galmet.science.plots.pred_vs_true import PredVsTrueDisplay
from galmet.science.stats import paper_fig3_edges, pred_vs_true_stats

EDGES = paper_fig3_edges()


def _pairs(n, seed, spread=0.08):
    rng = np.random.default_rng(seed)
    t = rng.uniform(8.2, 9.2, n)
    return t, t + rng.normal(0, spread, n)


def test_bin_standard_errors_match_the_scatter_of_repeated_samples():
    """400 samples of 1,000 galaxies: each bin's quoted standard error (mean over samples) agrees
    with the standard deviation of its statistic over the samples, within 15%."""
    runs = [pred_vs_true_stats(*_pairs(1000, seed), min_count=10, edges=EDGES) for seed in range(400)]
    for stat in ("median", "rmse", "nmad"):
        values = np.stack([r[stat].to_numpy() for r in runs])
        quoted = np.stack([r[f"{stat}_se"].to_numpy() for r in runs]).mean(axis=0)
        spread = values.std(axis=0, ddof=1)
        ratio = quoted / spread
        assert np.all((ratio > 0.85) & (ratio < 1.15)), (stat, ratio.round(2))


def test_standard_errors_are_nan_only_where_the_statistic_is():
    t, p = _pairs(300, 1)
    stats = pred_vs_true_stats(t[t < 8.9], p[t < 8.9], min_count=10, edges=EDGES)
    for stat in ("median", "rmse", "nmad"):
        np.testing.assert_array_equal(np.isnan(stats[stat]), np.isnan(stats[f"{stat}_se"]))
    assert stats["rmse_se"].notna().sum() >= 5


def _error_bars(ax):
    return [c for c in ax.containers if isinstance(c, ErrorbarContainer)]


def test_figure_draws_error_bars_on_the_bins():
    t, p = _pairs(2000, 2)
    disp = PredVsTrueDisplay.from_predictions(t, p).plot()
    top, main = disp.axes_["scatter"], disp.axes_["main"]
    bars = _error_bars(top)
    assert len(bars) == 2  # RMSE and NMAD
    good = disp.stats.dropna(subset=["median"])
    for bar, stat in zip(bars, ("rmse", "nmad"), strict=True):
        segments = bar.lines[2][0].get_segments()
        half = np.array([abs(s[1][1] - s[0][1]) / 2 for s in segments])
        np.testing.assert_allclose(half, good[f"{stat}_se"].to_numpy(), rtol=1e-6)
    assert len(_error_bars(main)) == 1  # the running median's
    assert good["median_se"].max() < good["rmse"].min()  # error bars are small beside the scatter


@pytest.mark.parametrize("column", ["median_se", "rmse_se", "nmad_se"])
def test_statistics_without_standard_errors_still_draw(column):
    """A stats table from before the standard errors (or a user's own) draws without bars."""
    t, p = _pairs(600, 3)
    disp = PredVsTrueDisplay.from_predictions(t, p)
    disp.stats = disp.stats.drop(columns=[column])
    disp.plot()
    assert disp.figure_ is not None
