"""Seeds in the resolution study: --seeds K trains K runs per size, writes each and their spread,
and Figure 4 draws the spread as error bars with the paper's details (issue 19)."""

from __future__ import annotations

import json

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest
from matplotlib.container import ErrorbarContainer

from conftest import make_tiny_dataset
from galmet.cli.main import main
from galmet.paper import PAPER_BEST_CASE_DEX
from galmet.science.plots.resolution import error_bars, plot_study
from galmet.science.resolution import COLUMNS, SEED_COLUMNS, SPREAD_COLUMNS, format_resolution, summarize_seeds


def _runs() -> pd.DataFrame:
    rows = []
    for size, rmses in ((16, [0.10, 0.12, 0.11]), (4, [0.15, 0.16, 0.14])):
        for k, r in enumerate(rmses):
            rows.append(
                {
                    "size": size,
                    "seed": 7 + k,
                    "input_size": size,
                    "rmse": r,
                    "nmad": r - 0.02,
                    "bias": 0.0,
                    "outlier_fraction": 0.0,
                    "n": 100,
                    "rmse_sample_se": 0.008,
                    "nmad_sample_se": 0.009,
                    "train_seconds": 10.0,
                    "valid_rmse": r,
                    "run_dir": f"runs/size_{size:03d}" + (f"_rep{k}" if k else ""),
                }
            )
    return pd.DataFrame(rows, columns=SEED_COLUMNS)


def test_summary_has_mean_std_and_standard_error():
    tab = summarize_seeds(_runs())
    assert list(tab.columns) == COLUMNS + SPREAD_COLUMNS and tab["size"].tolist() == [16, 4]
    row = tab.iloc[0]
    assert row["rmse"] == pytest.approx(0.11) and row["seeds"] == 3
    assert row["rmse_std"] == pytest.approx(0.01) and row["rmse_se"] == pytest.approx(0.01 / np.sqrt(3))
    assert row["train_seconds"] == 30 and row["run_dir"] == "runs/size_016"
    one = summarize_seeds(_runs().groupby("size").head(1))
    assert one["seeds"].tolist() == [1, 1] and one["rmse_std"].isna().all()
    assert "+-std" in format_resolution(tab, {}) and "+-std" not in format_resolution(one, {})


def test_error_bars_are_the_seed_spread_else_the_sample_error():
    tab = summarize_seeds(_runs()).sort_values("size")
    err, why = error_bars(tab, "rmse")
    assert err == pytest.approx(tab["rmse_std"].to_numpy()) and "3 training seeds" in why
    one = summarize_seeds(_runs().groupby("size").head(1))
    err, why = error_bars(one, "rmse")
    assert err == pytest.approx([0.008, 0.008]) and "test galaxies" in why
    assert error_bars(one[["size", "rmse", "nmad"]], "rmse") == (None, "")


def test_figure4_as_the_paper_drew_it():
    tab = summarize_seeds(_runs())
    meta = {"rf_rmse": 0.13, "rf_nmad": 0.11, "constant_rmse": 0.2, "bands": "gri"}
    ax = plot_study(tab, meta).axes[0]
    lines = {line.get_label(): line for line in ax.get_lines()}
    for label, level in (
        ("random forest (gri) RMSE", 0.13),
        ("random forest (gri) NMAD", 0.11),
        ("constant mean RMSE", 0.2),
    ):
        mark = lines[label]
        assert mark.get_linestyle() == "None" and mark.get_markerfacecolor() == "none", label  # open markers
        assert set(mark.get_ydata()) == {level} and len(mark.get_xdata()) == 2
    best = [line for label, line in lines.items() if label.startswith("best case")]
    assert len(best) == 1 and best[0].get_ydata()[0] == PAPER_BEST_CASE_DEX == 0.03
    bars = [c for c in ax.containers if isinstance(c, ErrorbarContainer)]
    assert len(bars) == 2  # RMSE and NMAD
    assert "training seeds" in ax.get_title()


@pytest.mark.slow
def test_seeds_option_trains_each_seed_and_resumes(tmp_path, monkeypatch, capsys):
    pytest.importorskip("torch")
    ds = make_tiny_dataset(tmp_path / "ds", n=40, size=16, split=True)
    out = tmp_path / "study"
    argv = ["resolution-study", str(ds), "--out", str(out), "--sizes", "16,4", "--seed", "3"]
    argv += ["--recipe", "onecycle", "--epochs", "1", "--arch", "resnet18", "--weights", "none"]
    argv += ["--batch-size", "4", "--device", "cpu", "--no-progress", "--no-tta"]
    assert main([*argv, "--seeds", "2"]) == 0
    runs = pd.read_csv(out / "resolution_seeds.csv")
    assert sorted(zip(runs["size"], runs["seed"], strict=True)) == [(4, 3), (4, 4), (16, 3), (16, 4)]
    assert np.isfinite(runs[["rmse", "nmad", "rmse_sample_se"]].to_numpy()).all()
    assert runs.groupby("size")["rmse"].nunique().tolist() == [2, 2]  # the seeds differ
    assert (out / "runs" / "size_004_rep1" / "predictions.parquet").is_file()
    tab = pd.read_csv(out / "resolution.csv")
    assert tab["seeds"].tolist() == [2, 2]
    for size, g in runs.groupby("size"):
        row = tab[tab["size"] == size].iloc[0]
        assert row["rmse"] == pytest.approx(g["rmse"].mean()) and row["rmse_std"] == pytest.approx(g["rmse"].std())
    assert json.loads((out / "resolution.json").read_text())["seeds"] == 2
    assert "+-std" in capsys.readouterr().out
    # a rerun with one more seed trains only the new one per size
    import galmet.runs.resolution as study

    trained = []
    real = study.train

    def counting(ds_, run_dir, config, resume=False):
        trained.append((run_dir.name, config.seed))
        return real(ds_, run_dir, config, resume=resume)

    monkeypatch.setattr(study, "train", counting)
    assert main([*argv, "--seeds", "3"]) == 0
    assert sorted(trained) == [("size_004_rep2", 5), ("size_016_rep2", 5)]
    assert pd.read_csv(out / "resolution.csv")["seeds"].tolist() == [3, 3]


def test_bad_seeds_is_one_line_exit_2(tmp_path, capsys):
    out = tmp_path / "study"
    assert main(["resolution-study", str(tmp_path), "--out", str(out), "--seeds", "0"]) == 2
    err = capsys.readouterr().err
    assert "--seeds" in err and err.count("\n") == 1 and not out.exists()
