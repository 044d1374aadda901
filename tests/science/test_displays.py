"""The figures' Display classes: compute with from_*, draw with plot(), kwargs over defaults, layering."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from galmet.errors import DataError

mpl = pytest.importorskip("matplotlib")

SRC = Path(__file__).resolve().parents[2] / "src" / "galmet"


def _pairs(n=2000, seed=0):
    rng = np.random.default_rng(seed)
    t = rng.normal(8.9, 0.15, n)
    return t, t + rng.normal(0, 0.07, n)


def _mass(n=2000, seed=0):
    from galmet.paper import tremonti_mzr

    rng = np.random.default_rng(seed)
    m = rng.normal(10.2, 0.5, n)
    return m, m + rng.normal(0, 0.2, n), tremonti_mzr(m) + rng.normal(0, 0.1, n)


def _resolution_table():
    return pd.DataFrame({"size": [1, 4, 16, 64], "rmse": [0.2, 0.15, 0.1, 0.09], "nmad": [0.18, 0.12, 0.08, 0.07]})


def _lr_table():
    lr = np.logspace(-6, 0, 40)
    loss = 1 + np.cos(np.linspace(0, 3, 40))
    return pd.DataFrame({"lr": lr, "loss": loss, "smoothed_loss": loss})


def _history():
    return pd.DataFrame(
        {"epoch": [1, 2, 3], "train_rmse_oh_p50": [0.3, 0.2, 0.15], "valid_rmse_oh_p50": [0.31, 0.22, 0.2]}
    )


def _displays():
    """One built (not yet drawn) Display of every figure."""
    from galmet.science.plots.histograms import HistogramsDisplay
    from galmet.science.plots.history import HistoryDisplay
    from galmet.science.plots.image_grid import ImageGridDisplay
    from galmet.science.plots.lr_find import LRFindDisplay
    from galmet.science.plots.mass import MassDisplay
    from galmet.science.plots.mosaic import MosaicDisplay
    from galmet.science.plots.mzr import MZRDisplay
    from galmet.science.plots.pred_vs_true import PredVsTrueDisplay
    from galmet.science.plots.resolution import ResolutionDisplay

    t, p = _pairs()
    m, mp, z = _mass()
    imgs = np.random.default_rng(0).integers(0, 255, (20, 8, 8, 3), dtype=np.uint8)
    table = pd.DataFrame({"oh_p50": t[:20], "oh_p50_pred": p[:20]})
    return {
        "image_grid": ImageGridDisplay.from_table(imgs, table, n=3),
        "histograms": HistogramsDisplay.from_predictions(t, p),
        "pred_vs_true": PredVsTrueDisplay.from_predictions(t, p),
        "resolution": ResolutionDisplay.from_table(_resolution_table(), rf_rmse=0.13),
        "mass": MassDisplay.from_predictions(m, mp, z, z + 0.05),
        "mzr": MZRDisplay.from_predictions(m, z, z_true=z),
        "lr_find": LRFindDisplay.from_table(_lr_table(), 1e-3, 3e-4),
        "mosaic": MosaicDisplay.from_images(imgs[:5], list("abcde"), ncols=3),
        "history": HistoryDisplay.from_history(_history()),
    }


MULTI_PANEL = {"image_grid", "mass", "mosaic"}  # axes_ only; the others have ax_


@pytest.mark.parametrize(
    "name", ["image_grid", "histograms", "pred_vs_true", "resolution", "mass", "mzr", "lr_find", "mosaic", "history"]
)
def test_plot_returns_self_with_figure_and_axes(name):
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    disp = _displays()[name]
    assert not hasattr(disp, "figure_")
    assert disp.plot() is disp
    assert isinstance(disp.figure_, Figure)
    if name in MULTI_PANEL:
        axes = np.ravel(np.asarray(disp.axes_, dtype=object))
        assert len(axes) > 1 or name == "mass"
        assert all(isinstance(a, Axes) and a.figure is disp.figure_ for a in axes)
    else:
        assert isinstance(disp.ax_, Axes) and disp.ax_.figure is disp.figure_


@pytest.mark.parametrize("name", ["histograms", "resolution", "mzr", "lr_find", "history"])
def test_plot_into_callers_axes(name):
    from matplotlib.figure import Figure

    fig = Figure()
    ax1, ax2 = fig.subplots(1, 2)
    disp = _displays()[name].plot(ax=ax2)
    assert disp.ax_ is ax2 and disp.figure_ is fig
    assert ax2.has_data() and not ax1.has_data()
    assert len(fig.axes) == 2


@pytest.mark.parametrize("name", ["image_grid", "pred_vs_true", "mass", "mosaic", "mzr"])
def test_plot_into_callers_figure(name):
    from matplotlib.figure import Figure

    fig = Figure()
    fig.add_subplot(1, 1, 1).plot([0, 1], [0, 1], label="caller's line")
    disp = _displays()[name].plot(fig=fig)
    assert disp.figure_ is fig
    assert not any(line.get_label() == "caller's line" for a in fig.axes for line in a.get_lines()), "fig not cleared"


def _line(ax, label):
    return next(line for line in ax.get_lines() if line.get_label() == label)


def test_pred_vs_true_kwargs_override_defaults():
    from matplotlib.colors import to_hex, to_rgba

    disp = _displays()["pred_vs_true"]
    disp.plot(
        median_kwargs={"color": "magenta", "linewidth": 5},
        rmse_kwargs={"color": "#00ff00"},
        diagonal_kwargs={"ls": ":"},
    )
    med = _line(disp.ax_, "running median")
    assert to_hex(med.get_color()) == "#ff00ff" and med.get_linewidth() == 5
    assert med.get_zorder() == 4  # the defaults not overridden stay
    assert _line(disp.ax_, "one-to-one").get_linestyle() == ":"
    band = next(c for c in disp.ax_.collections if c.get_label() == "median $\\pm$ RMSE")
    assert tuple(band.get_facecolor()[0][:3]) == to_rgba("#00ff00")[:3]
    rmse_markers = next(c for c in disp.axes_["scatter"].collections if c.get_label() == "RMSE")
    assert tuple(rmse_markers.get_facecolor()[0][:3]) == to_rgba("#00ff00")[:3]
    # and without kwargs the defaults
    default = _displays()["pred_vs_true"].plot()
    assert to_hex(_line(default.ax_, "running median").get_color()) == "#ff7f0e"


def test_other_displays_kwargs_override_defaults():
    from matplotlib.colors import to_hex

    d = _displays()
    from galmet.science.plots.mzr import MZRDisplay

    m, _, z = _mass()
    galmet_style = MZRDisplay.from_predictions(m, z, z_true=z, style="galmet")
    mzr = galmet_style.plot(median_kwargs={"color": "purple", "ms": 9}, true_kwargs={"lw": 4})
    med = next(line for line in mzr.ax_.get_lines() if line.get_label().startswith("median $Z_\\mathrm{pred}$"))
    assert to_hex(med.get_color()) == to_hex("purple") and med.get_markersize() == 9 and med.get_marker() == "o"
    assert _line(mzr.ax_, "median $Z_\\mathrm{true}$").get_linewidth() == 4
    paper = d["mzr"].plot(median_kwargs={"color": "purple"}, rmse_kwargs={"color": "#00ff00"})
    med = next(line for line in paper.ax_.get_lines() if line.get_label().startswith("median $Z_\\mathrm{pred}$"))
    assert to_hex(med.get_color()) == to_hex("purple")
    rmse_lines = [line for line in paper.ax_.get_lines() if to_hex(line.get_color()) == "#00ff00"]
    assert len(rmse_lines) == 2 and all(line.get_linestyle() == "--" for line in rmse_lines)  # median +- RMSE
    rmse_marks = next(c for c in paper.axes_["scatter"].collections if c.get_label() == "RMSE")
    assert to_hex(rmse_marks.get_facecolor()[0]) == "#00ff00"
    res = d["resolution"].plot(rmse_kwargs={"marker": "x", "label": "mine"})
    assert _line(res.ax_, "mine").get_marker() == "x"
    hist = d["histograms"].plot(pred_kwargs={"color": "red"})
    assert any(to_hex(p.get_edgecolor()) == "#ff0000" for p in hist.ax_.patches)
    mass = d["mass"].plot(median_kwargs={"color": "cyan"})
    assert all(to_hex(_line(a, "running median").get_color()) == "#00ffff" for a in mass.axes_)
    grid = d["image_grid"].plot(imshow_kwargs={"interpolation": "bilinear"}, text_kwargs={"color": "yellow"})
    shown = [a for row in grid.axes_ for a in row if a.images]
    assert shown and all(a.images[0].get_interpolation() == "bilinear" for a in shown)
    assert all(to_hex(a.texts[0].get_color()) == "#ffff00" for a in shown)
    lr = d["lr_find"].plot(smoothed_kwargs={"color": "k"})
    assert to_hex(_line(lr.ax_, "smoothed loss").get_color()) == "#000000"
    hist = d["history"].plot(line_kwargs={"ms": 10})
    assert all(line.get_markersize() == 10 for line in hist.ax_.get_lines())


def test_merge_kwargs_spells_out_aliases():
    from galmet.science.plots.style import merge_kwargs

    assert merge_kwargs({"lw": 2, "color": "k"}, {"linewidth": 3}) == {"linewidth": 3, "color": "k"}
    assert merge_kwargs({"ls": "-"}, None) == {"linestyle": "-"}
    assert merge_kwargs({"c": "0.3"}, {"color": "r"}) == {"c": "0.3", "color": "r"}  # c is not color for scatter


def _describe(fig):
    return [
        (
            a.get_xlabel(),
            a.get_ylabel(),
            a.get_title(),
            a.get_xlim(),
            a.get_ylim(),
            len(a.get_lines()),
            len(a.collections),
            len(a.patches),
            [t.get_text() for t in a.texts],
        )
        for a in fig.axes
    ]


def test_wrappers_return_the_displays_figure():
    from galmet.science.plots.histograms import plot_histograms
    from galmet.science.plots.history import plot_history
    from galmet.science.plots.mass import plot_mass
    from galmet.science.plots.mzr import plot_mzr
    from galmet.science.plots.pred_vs_true import plot_pred_vs_true
    from galmet.science.plots.resolution import plot_resolution

    d = _displays()
    t, p = _pairs()
    m, mp, z = _mass()
    for name, fig in (
        ("histograms", plot_histograms(t, p)),
        ("pred_vs_true", plot_pred_vs_true(t, p)),
        ("resolution", plot_resolution(_resolution_table(), rf_rmse=0.13)),
        ("mass", plot_mass(m, mp, z, z + 0.05)),
        ("mzr", plot_mzr(m, z, z_true=z)),
        ("history", plot_history(_history())),
    ):
        assert type(fig).__name__ == "Figure"
        assert _describe(fig) == _describe(d[name].plot().figure_), name


def test_displays_store_what_they_draw():
    from galmet.science.metrics import nmad, rmse
    from galmet.science.mzr import mzr_bins
    from galmet.science.stats import histogram_edges, paper_fig3_edges, pred_vs_true_stats

    t, p = _pairs()
    d = _displays()
    pvt = d["pred_vs_true"]
    pd.testing.assert_frame_equal(pvt.stats, pred_vs_true_stats(t, p, 10, paper_fig3_edges()))
    assert pvt.rmse == rmse(p - t) and pvt.nmad == nmad(p - t)
    hist = d["histograms"]
    np.testing.assert_array_equal(hist.bins, histogram_edges(t))
    np.testing.assert_array_equal(hist.pred_bins, histogram_edges(p))
    assert hist.frac_above == (np.mean(t > 9.1), np.mean(p > 9.1))
    m, _, z = _mass()
    mzr = d["mzr"]
    pd.testing.assert_frame_equal(mzr.bins, mzr_bins(m, z))
    assert mzr.true_bins is not None
    assert len(d["mass"].plot().axes_) == 2
    assert d["resolution"].table["size"].tolist() == [1, 4, 16, 64]


def test_nan_pairs_dropped_and_bad_input_raises():
    from galmet.science.plots.mass import MassDisplay
    from galmet.science.plots.pred_vs_true import PredVsTrueDisplay

    t, p = _pairs(600)
    p[:7] = np.nan
    assert PredVsTrueDisplay.from_predictions(t, p).z_true.size == 593
    with pytest.raises(DataError, match="pred vs true: 600 x values but 5 y values"):
        PredVsTrueDisplay.from_predictions(t, p[:5])
    assert MassDisplay.from_predictions(t, t + 0.1).z_mzr is None


def test_history_png_and_empty_history():
    from galmet.science.plots.history import HistoryDisplay, history_png

    assert history_png(_history())[:8] == b"\x89PNG\r\n\x1a\n"
    assert history_png(pd.DataFrame({"epoch": [1, 2], "lr": [0.1, 0.1]})) is None
    assert history_png(_history().iloc[:0]) is None
    with pytest.raises(DataError, match="no train_rmse"):
        HistoryDisplay.from_history(pd.DataFrame({"epoch": [1]}))
    no_epoch = HistoryDisplay.from_history(_history().drop(columns="epoch"))
    assert no_epoch.epochs.tolist() == [1, 2, 3]


def test_running_bins_widen_for_sparse_data():
    from galmet.science.stats import fd_bins, running_bins

    x = np.random.default_rng(0).normal(0, 1, 300)
    edges = running_bins(x, 10)
    assert np.all(np.diff(edges) > 0) and edges[0] == x.min() and np.isclose(edges[-1], x.max())
    assert edges.size < fd_bins(x, max_bins=40).size
    assert np.median(np.histogram(x, edges)[0]) >= 30 or edges.size <= 4
    assert running_bins(x, 1).size == fd_bins(x, max_bins=40).size  # dense enough: unchanged


def _imports(path: Path) -> set[str]:
    """Every module a source file imports, at any level (module, function, class)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_layering_compute_never_imports_plots_and_plots_never_import_runs():
    science = SRC / "science"
    compute = [*science.glob("*.py"), *SRC.glob("paper.py")]
    for path in compute:
        bad = [m for m in _imports(path) if m.startswith(("matplotlib", "galmet.science.plots"))]
        assert not bad, f"{path.name} imports {bad}"
    plots = list((science / "plots").glob("*.py"))
    assert len(plots) >= 10
    for path in plots:
        bad = [
            m
            for m in _imports(path)
            if m.startswith(("galmet.runs", "galmet.cli", "galmet.training", "galmet.nn", "torch"))
        ]
        assert not bad, f"plots/{path.name} imports {bad}"
    assert not (science / "plots" / "figures.py").exists()


def test_importing_figures_imports_no_matplotlib():
    code = (
        "import sys\n"
        "import galmet.science.stats, galmet.science.plots.style, galmet.science.plots.image_grid\n"
        "import galmet.science.plots.histograms, galmet.science.plots.pred_vs_true, galmet.science.plots.resolution\n"
        "import galmet.science.plots.mass, galmet.science.plots.mzr, galmet.science.plots.lr_find\n"
        "import galmet.science.plots.mosaic, galmet.science.plots.history\n"
        "assert 'matplotlib' not in sys.modules, 'matplotlib imported'\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
