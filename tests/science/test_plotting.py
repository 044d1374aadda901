"""The paper's figures: each function returns a Figure with labelled axes; files are written."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from galmet.cli.main import main
from galmet.errors import DataError

mpl = pytest.importorskip("matplotlib")


def _table(n=600, seed=0):
    rng = np.random.default_rng(seed)
    t = rng.normal(8.9, 0.15, n)
    return pd.DataFrame(
        {
            "objID": np.arange(n, dtype=np.int64) + 1,
            "split": "test",
            "oh_p50_pred": t + rng.normal(0, 0.07, n),
            "oh_p50": t,
        }
    )


def _labels(fig):
    return [(a.get_xlabel(), a.get_ylabel()) for a in fig.axes]


def test_select_grid_rows_extremes():
    from galmet.science.stats import select_grid_rows

    df = pd.DataFrame({"oh_p50": [8.0, 9.0, 8.5, 8.7], "oh_p50_pred": [8.6, 8.7, 8.1, 9.2]})
    rows = select_grid_rows(df, n=2, seed=0)
    assert rows["lowest predicted"].tolist() == [2, 0]
    assert rows["highest true"].tolist() == [1, 3]
    assert rows["most under-predicted"].tolist() == [2, 1]  # dZ = .6 -.3 -.4 .5
    assert rows["most over-predicted"].tolist() == [0, 3]
    assert len(set(rows["random"])) == 2
    assert len(rows) == 7


def test_image_grid_labels_every_thumbnail():
    from galmet.science.plots.image_grid import plot_image_grid

    df = _table(20)
    imgs = np.random.default_rng(0).integers(0, 255, (20, 16, 16, 3), dtype=np.uint8)
    fig = plot_image_grid(imgs, df, n=4)
    shown = [a for a in fig.axes if a.images]
    assert len(shown) == 7 * 4
    texts = [t.get_text() for a in shown for t in a.texts]
    assert all(t.startswith("pred ") and "\ntrue " in t for t in texts) and len(texts) == 28
    with pytest.raises(DataError, match="5 images for 20 table rows"):
        plot_image_grid(imgs[:5], df)


def test_histograms_use_fd_bins_and_units():
    from galmet.science.plots.histograms import plot_histograms
    from galmet.science.stats import fd_bins

    df = _table()
    fig = plot_histograms(df.oh_p50, df.oh_p50_pred)
    ax = fig.axes[0]
    assert "12 + log(O/H) (dex)" in ax.get_xlabel()
    n_patches_expected = len(fd_bins(df.oh_p50, df.oh_p50_pred)) - 1
    counts = [p for p in ax.patches]
    assert len(counts) >= 2 and n_patches_expected > 5


def test_pred_vs_true_panels():
    from galmet.science.plots.pred_vs_true import plot_pred_vs_true
    from galmet.science.stats import pred_vs_true_stats

    df = _table(2000)
    fig = plot_pred_vs_true(df.oh_p50, df.oh_p50_pred)
    labels = _labels(fig)
    assert any("true" in x and "(dex)" in x and "pred" in y for x, y in labels)
    assert any(y == "scatter (dex)" for _, y in labels)
    main_ax = next(a for a in fig.axes if "pred" in a.get_ylabel())
    assert main_ax.child_axes, "residual inset missing"
    stats = pred_vs_true_stats(df.oh_p50, df.oh_p50_pred)
    good = stats.dropna()
    assert good["count"].sum() > 0.9 * len(df)
    big = good[good["count"] >= 100]
    assert len(big) >= 3 and np.all(np.abs(big["nmad"] - 0.07) < 0.02)


def test_resolution_and_mzr_figures():
    from galmet.paper import tremonti_mzr
    from galmet.science.plots.mass import plot_mass
    from galmet.science.plots.mzr import plot_mzr
    from galmet.science.plots.resolution import plot_resolution

    tab = pd.DataFrame({"size": [1, 4, 16, 64], "rmse": [0.2, 0.15, 0.1, 0.09], "nmad": [0.18, 0.12, 0.08, 0.07]})
    fig = plot_resolution(tab, rf_rmse=0.13, constant_rmse=0.22)
    ax = fig.axes[0]
    assert ax.get_xscale() == "log" and "pixels" in ax.get_xlabel() and "dex" in ax.get_ylabel()
    assert {line.get_label() for line in ax.get_lines()} >= {"random forest (gri) RMSE", "constant mean RMSE"}
    rng = np.random.default_rng(0)
    m = rng.normal(10.2, 0.5, 3000)
    z = tremonti_mzr(m) + rng.normal(0, 0.1, 3000)
    fig5 = plot_mass(m, m + rng.normal(0, 0.2, 3000), z, tremonti_mzr(m))
    assert len([a for a in fig5.axes if a.get_xlabel()]) == 2
    fig6 = plot_mzr(m, z, z_true=z)
    assert "M$_*$" in fig6.axes[0].get_xlabel() and "(dex)" in fig6.axes[0].get_ylabel()


def test_ax_argument_draws_into_callers_axes():
    from matplotlib.figure import Figure

    from galmet.science.plots.histograms import plot_histograms

    fig = Figure()
    ax1, ax2 = fig.subplots(1, 2)
    df = _table()
    assert plot_histograms(df.oh_p50, df.oh_p50_pred, ax=ax2) is fig
    assert ax2.patches and not ax1.patches


def test_save_figure_png_and_pdf(tmp_path):
    from galmet.science.plots.histograms import plot_histograms
    from galmet.science.plots.style import save_figure

    df = _table()
    paths = save_figure(plot_histograms(df.oh_p50, df.oh_p50_pred), tmp_path / "f" / "fig2")
    assert [p.name for p in paths] == ["fig2.png", "fig2.pdf"]
    assert paths[0].read_bytes()[:4] == b"\x89PNG" and paths[1].read_bytes()[:4] == b"%PDF"
    assert not list((tmp_path / "f").glob(".*tmp"))


def test_figures_cli_with_dataset(tmp_path, tiny_dataset):
    from galmet.data.dataset import load_dataset

    cat = load_dataset(tiny_dataset, load_images=False).catalog
    pred = pd.DataFrame(
        {"objID": cat.objID, "split": cat.split, "oh_p50_pred": cat.oh_p50 + 0.01 * np.arange(len(cat))}
    )
    f = tmp_path / "p.csv"
    pred.to_csv(f, index=False)
    out = tmp_path / "figs"
    assert (
        main(
            [
                "figures",
                str(f),
                "--dataset",
                str(tiny_dataset),
                "--out",
                str(out),
                "--split",
                "all",
                "--thumbnails",
                "3",
            ]
        )
        == 0
    )
    names = sorted(p.name for p in out.iterdir() if not p.name.startswith("."))  # (not galmet's ledger)
    assert names == sorted(
        f"fig{k}_{n}.{e}"
        for k, n in ((1, "image_grid"), (2, "histograms"), (3, "pred_vs_true"))
        for e in ("png", "pdf")
    )


def test_figures_cli_bad_thumbnails(tmp_path, capsys):
    f = tmp_path / "p.csv"
    _table(10).to_csv(f, index=False)
    assert main(["figures", str(f), "--out", str(tmp_path / "o"), "--thumbnails", "0"]) == 2
    assert "--thumbnails: must be an integer from 1 to 20" in capsys.readouterr().err


def test_figures_cli_unknown_objid(tmp_path, tiny_dataset, capsys):
    f = tmp_path / "p.csv"
    _table(10).to_csv(f, index=False)
    assert main(["figures", str(f), "--dataset", str(tiny_dataset), "--out", str(tmp_path / "o")]) == 2
    assert "objID 1 of the predictions is not in the dataset" in capsys.readouterr().err


def test_figures_cli_bad_resolution_writes_nothing(tmp_path, capsys):
    f = tmp_path / "p.csv"
    _table(50).to_csv(f, index=False)
    out = tmp_path / "o"
    assert main(["figures", str(f), "--out", str(out), "--resolution", str(tmp_path / "none")]) == 2
    assert "no resolution table" in capsys.readouterr().err
    assert not out.exists()


def test_image_grid_with_precomputed_rows_matches():
    from galmet.science.plots.image_grid import plot_image_grid
    from galmet.science.stats import select_grid_rows

    df = _table(30)
    imgs = np.random.default_rng(1).integers(0, 255, (30, 8, 8, 3), dtype=np.uint8)
    full = plot_image_grid(imgs, df, n=3)
    rows = select_grid_rows(df, n=3)
    needed = np.unique(np.concatenate(list(rows.values())))
    where = {int(o): k for k, o in enumerate(needed)}
    sub = plot_image_grid(
        imgs[needed],
        df.iloc[needed].reset_index(drop=True),
        n=3,
        rows={k: np.array([where[int(i)] for i in v]) for k, v in rows.items()},
    )
    texts = lambda f: [t.get_text() for a in f.axes for t in a.texts]  # noqa: E731
    assert texts(full) == texts(sub)
