"""Figures as the paper drew them (Figs 2, 3, 6 by default), galmet's variants as options, and the
defects a new user saw in Fig 3 (inset label, hidden markers, no size key, legend of undrawn artists)
and Figs 5-6 (no colour bars)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from galmet.paper import TREMONTI_SIGMA, tremonti_mzr

mpl = pytest.importorskip("matplotlib")


def _pairs(n=2000, seed=0, spread=0.07):
    rng = np.random.default_rng(seed)
    t = rng.normal(8.9, 0.15, n)
    return t, t + rng.normal(0, spread, n)


def _overlap(a, b) -> bool:
    return a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1


def test_fig3_defaults_to_the_papers_bins_with_global_lines():
    from galmet.science.metrics import nmad, rmse
    from galmet.science.plots.pred_vs_true import PredVsTrueDisplay

    t, p = _pairs()
    disp = PredVsTrueDisplay.from_predictions(t, p).plot()
    assert disp.binning == "paper"
    np.testing.assert_allclose(disp.stats["lo"], np.arange(8.2, 9.15, 0.1), atol=1e-9)
    np.testing.assert_allclose(disp.stats["hi"].iloc[-1], 9.2)
    top = disp.axes_["scatter"]
    levels = sorted(line.get_ydata()[0] for line in top.get_lines() if line.get_label().startswith("all:"))
    assert levels == pytest.approx(sorted([rmse(p - t), nmad(p - t)]))
    # galmet's adaptive bins stay available, and other targets get them by default
    assert PredVsTrueDisplay.from_predictions(t, p, binning="adaptive").binning == "adaptive"
    assert PredVsTrueDisplay.from_predictions(t, p, target="lgm_tot_p50").binning == "adaptive"


def test_fig3_markers_side_by_side_with_a_size_key():
    from galmet.science.plots.pred_vs_true import PredVsTrueDisplay

    t, p = _pairs()
    disp = PredVsTrueDisplay.from_predictions(t, p).plot()
    top = disp.axes_["scatter"]
    marks = {c.get_label(): c.get_offsets()[:, 0] for c in top.collections if c.get_label() in ("RMSE", "NMAD")}
    assert np.all(marks["NMAD"] - marks["RMSE"] > 0.02)  # not drawn over each other
    titles = [leg.get_title().get_text() for leg in top.findobj(mpl.legend.Legend)]
    assert "galaxies per bin" in titles  # the key of marker areas


def test_fig3_inset_label_clear_of_its_ticks():
    from galmet.science.plots.pred_vs_true import PredVsTrueDisplay

    t, p = _pairs()
    disp = PredVsTrueDisplay.from_predictions(t, p).plot()
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fig = disp.figure_
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    inset = disp.axes_["inset"]
    label = inset.xaxis.label.get_window_extent(renderer)
    ticks = [tl.get_window_extent(renderer) for tl in inset.get_xticklabels() if tl.get_text()]
    assert ticks and not any(_overlap(label, tick) for tick in ticks)
    assert min(tick.y0 for tick in ticks) - label.y1 >= 2  # a visible gap (pixels at 100 dpi)
    # and well inside the main panel, clear of its inward ticks (the old label sat on its frame)
    assert label.y0 - disp.ax_.get_window_extent(renderer).y0 >= 8


def test_fig3_legend_lists_only_what_is_drawn_for_small_sets():
    from galmet.science.plots.pred_vs_true import PredVsTrueDisplay

    rng = np.random.default_rng(3)
    t = rng.normal(8.95, 0.02, 12)
    disp = PredVsTrueDisplay.from_predictions(t, t + rng.normal(0, 0.03, 12)).plot()
    assert disp.stats.dropna(subset=["median"]).shape[0] == 1
    labels = [text.get_text() for text in disp.ax_.get_legend().get_texts()]
    assert "median $\\pm$ NMAD" not in labels and "running median" not in labels  # bands need 2 bins
    assert "median $\\pm$ RMSE" in labels  # the one bin is a point with error bars


def test_fig2_each_histogram_its_own_fd_bins_and_no_collapse():
    from galmet.science.plots.histograms import HistogramsDisplay
    from galmet.science.stats import MIN_HIST_WIDTH, fd_bin_width, fd_bins

    t, _ = _pairs(20000)
    narrow = 8.9 + 0.05 * (t - 8.9)  # predictions squeezed: the old common rule took their width
    assert np.diff(fd_bins(t, narrow))[0] < 0.5 * fd_bin_width(t)
    paper = HistogramsDisplay.from_predictions(t, narrow)
    assert np.diff(paper.bins)[0] == pytest.approx(fd_bin_width(t), rel=0.02)
    assert np.diff(paper.pred_bins)[0] == pytest.approx(fd_bin_width(narrow), rel=0.02)
    assert paper.density and paper.plot().ax_.get_ylabel() == "galaxies per dex"
    common = HistogramsDisplay.from_predictions(t, narrow, binning="common")
    assert np.array_equal(common.bins, common.pred_bins)
    assert np.diff(common.bins)[0] >= MIN_HIST_WIDTH - 1e-12
    assert common.plot().ax_.get_ylabel() == "galaxies per bin"
    # heights per dex: the Z_pred histogram integrates to its number of galaxies
    ax = paper.plot().ax_
    step = ax.patches[-1]  # the Z_pred step outline
    xy = step.get_path().vertices
    assert xy[:, 1].max() * np.diff(paper.pred_bins)[0] <= len(narrow)


def _mass(n=3000, seed=0):
    rng = np.random.default_rng(seed)
    m = rng.normal(10.0, 0.5, n)
    zt = tremonti_mzr(m) + rng.normal(0, 0.1, n)
    return m, m + rng.normal(0, 0.2, n), zt, 8.9 + 0.6 * (zt - 8.9) + rng.normal(0, 0.04, n)


def _colorbars(fig) -> int:
    return sum(1 for a in fig.axes if a.get_ylabel() == "galaxies per bin")


def test_figs5_and_6_have_colour_bars():
    from galmet.science.plots.mass import plot_mass
    from galmet.science.plots.mzr import plot_mzr

    m, mp, zt, zp = _mass()
    assert _colorbars(plot_mass(m, mp, zt, tremonti_mzr(mp))) == 2
    assert _colorbars(plot_mzr(m, zp, z_true=zt)) == 1
    assert _colorbars(plot_mass(m[:100], mp[:100])) == 0  # points, not a histogram


def test_fig6_paper_style_scatter_about_the_mzr_per_mass_bin():
    from galmet.science.mzr import mzr_bins
    from galmet.science.plots.mzr import MZRDisplay

    m, _, zt, zp = _mass()
    disp = MZRDisplay.from_predictions(m, zp, z_true=zt).plot()
    bins = mzr_bins(m, zp)
    good = bins.dropna(subset=["median"])
    d = zp - tremonti_mzr(m)
    sel = (m >= good["lo"].iloc[3]) & (m < good["hi"].iloc[3])
    assert good["rmse_mzr"].iloc[3] == pytest.approx(np.sqrt(np.mean(d[sel] ** 2)))
    top = disp.axes_["scatter"]
    rmse_marks = next(c for c in top.collections if c.get_label() == "RMSE")
    np.testing.assert_allclose(rmse_marks.get_offsets()[:, 1], good["rmse_mzr"])
    sizes = rmse_marks.get_sizes()
    assert np.argmax(sizes) == np.argmax(good["count"].to_numpy())  # area ~ count
    sigma = [line for line in top.get_lines() if "Tremonti" in line.get_label()]
    assert sigma and sigma[0].get_ydata()[0] == TREMONTI_SIGMA and "DR2" in sigma[0].get_label()
    labels = [t.get_text() for t in disp.ax_.get_legend().get_texts()]
    assert any("RMSE of $Z_\\mathrm{pred} -$ MZR" in lab for lab in labels)
    assert any("DR2" in lab for lab in labels)  # the 0.10 dex is Tremonti's sigma, labelled as his


def test_fig6_refit_relation_drawn_and_galmet_style_kept():
    from galmet.science.mzr import fit_mzr
    from galmet.science.plots.mzr import MZRDisplay

    m, _, zt, zp = _mass()
    refit = fit_mzr(m, zt + 0.05)
    assert refit(10.0) == pytest.approx(tremonti_mzr(10.0) + 0.05, abs=0.02)
    disp = MZRDisplay.from_predictions(m, zp, z_true=zt, relation=refit).plot()
    assert any(line.get_label() == refit.label for line in disp.ax_.get_lines())
    galmet = MZRDisplay.from_predictions(m, zp, z_true=zt, style="galmet").plot()
    assert set(galmet.axes_) == {"main"} and len(galmet.figure_.axes) == 1
    with pytest.raises(Exception, match="style must be one of"):
        MZRDisplay.from_predictions(m, zp, style="nature")


def test_fig4_draws_oracle_and_floor_and_says_when_inputs_were_replicated():
    from galmet.science.plots.resolution import plot_resolution

    tab = pd.DataFrame(
        {"size": [1, 4, 16], "input_size": [1, 4, 16], "rmse": [0.2, 0.15, 0.1], "nmad": [0.18, 0.12, 0.08]}
    )
    fig = plot_resolution(tab, 0.13, 0.2, oracle_rmse=0.11, noise_floor=0.078)
    ax = fig.axes[0]
    labels = {line.get_label(): line.get_ydata()[0] for line in ax.get_lines()}
    assert labels["observable oracle RMSE (no redshift)"] == 0.11
    assert labels["noise floor (perfect image model)"] == 0.078
    assert "network input: s x s" in ax.get_xlabel()
    rep = plot_resolution(tab.assign(input_size=[16, 16, 16]))
    assert "pixel-replicated" in rep.axes[0].get_xlabel()


def test_figures_refit_relation_needs_mass_and_dataset(tmp_path, capsys):
    from galmet.cli.main import main

    t, p = _pairs(200)
    pd.DataFrame({"objID": np.arange(200), "oh_p50": t, "oh_p50_pred": p}).to_csv(tmp_path / "p.csv", index=False)
    out = tmp_path / "figs"
    assert main(["figures", str(tmp_path / "p.csv"), "--out", str(out), "--relation", "refit"]) == 2
    err = capsys.readouterr().err.strip()
    assert "--relation refit needs --mass" in err and len(err.splitlines()) == 1 and not out.exists()
    assert main(["figures", str(tmp_path / "p.csv"), "--out", str(out), "--split", "all", "--format", "png"]) == 0
    assert sorted(f.name for f in out.iterdir() if not f.name.startswith(".")) == [
        "fig2_histograms.png",
        "fig3_pred_vs_true.png",
    ]
