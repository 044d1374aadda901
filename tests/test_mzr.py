"""Stellar mass and the MZR: Tremonti conversion, mass bins, the mzr command."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from galmet.cli.main import main
from galmet.paper import tremonti_mzr


def _pair(tmp_path, n=1500, seed=0, truth_in_files=True):
    rng = np.random.default_rng(seed)
    m = rng.normal(10.2, 0.5, n)
    zt = tremonti_mzr(m) + rng.normal(0, 0.1, n)
    ids = np.arange(n, dtype=np.int64) + 100
    split = np.where(np.arange(n) % 3 == 0, "test", "train")
    z = pd.DataFrame({"objID": ids, "split": split, "oh_p50_pred": zt + rng.normal(0, 0.05, n)})
    ms = pd.DataFrame({"objID": ids[::-1], "lgm_tot_p50_pred": (m + rng.normal(0, 0.2, n))[::-1]})
    if truth_in_files:
        z["oh_p50"] = zt
        ms["lgm_tot_p50"] = m[::-1]
    z.to_parquet(tmp_path / "z.parquet")
    ms.to_csv(tmp_path / "m.csv", index=False)
    return m, zt, z, ms


def test_tremonti_values():
    assert tremonti_mzr(10.0) == pytest.approx(-1.492 + 18.47 - 8.026)
    # the parabola peaks at x = 1.847 / (2 * 0.08026)
    x = np.linspace(11.4, 11.6, 2001)
    assert x[np.argmax(tremonti_mzr(x))] == pytest.approx(1.847 / (2 * 0.08026), abs=1e-3)


def test_mzr_bins_hand_values():
    from galmet.science.mzr import mzr_bins

    m = np.array([9.01, 9.05, 9.15, 9.21, 9.3, 9.35])
    z = np.array([8.5, 8.7, 8.6, 8.8, 9.0, 9.1])
    tab = mzr_bins(m, z, 0.2, min_count=1)
    assert tab["lo"].tolist() == pytest.approx([9.0, 9.2]) and tab["count"].tolist() == [3, 3]
    assert tab["median"].tolist() == pytest.approx([8.6, 9.0])
    assert tab["rmse"][0] == pytest.approx(np.sqrt((0.01 + 0.01 + 0) / 3))
    assert tab["tremonti"][0] == pytest.approx(tremonti_mzr(9.1))


def test_mzr_analysis_recovers_known_scatter(tmp_path):
    from galmet.science.mzr import mzr_analysis

    m, zt, *_ = _pair(tmp_path, n=6000)
    res = mzr_analysis(tmp_path / "z.parquet", tmp_path / "m.csv", split="all")
    met = res["metrics"]
    assert met["n"] == 6000
    assert met["mass"]["rmse"] == pytest.approx(0.2, rel=0.05)
    assert met["mzr_true_scatter"] == pytest.approx(0.1, rel=0.1)
    j = res["joined"]
    assert np.allclose(j["z_mzr"], tremonti_mzr(j["lgm_tot_p50_pred"]))
    assert np.allclose(j["lgm_tot_p50"], m)  # rows joined on objID despite the reversed order


def test_mzr_cli_writes_outputs(tmp_path):
    _pair(tmp_path)
    out = tmp_path / "mzr"
    assert (
        main(
            ["mzr", "--metallicity", str(tmp_path / "z.parquet"), "--mass", str(tmp_path / "m.csv"), "--out", str(out)]
        )
        == 0
    )
    got = json.loads((out / "mzr_metrics.json").read_text())
    assert got["n"] == 500 and got["split"] == "test"
    assert got["z_mzr"]["paper"]["rmse"] == 0.12
    bins = pd.read_csv(out / "mzr_bins.csv")
    assert {"median_pred", "median_true", "tremonti", "count_pred"} <= set(bins.columns)
    for stem in ("fig5_mass", "fig6_mzr"):
        assert (out / f"{stem}.png").is_file() and (out / f"{stem}.pdf").is_file()


def test_mzr_joins_truth_from_dataset(tmp_path, tiny_dataset):
    from galmet.data.dataset import load_dataset

    cat = load_dataset(tiny_dataset, load_images=False).catalog
    pd.DataFrame({"objID": cat.objID, "oh_p50_pred": cat.oh_p50}).to_csv(tmp_path / "z.csv", index=False)
    pd.DataFrame({"objID": cat.objID, "lgm_tot_p50_pred": cat.lgm_tot_p50 + 0.1}).to_csv(
        tmp_path / "m.csv", index=False
    )
    assert (
        main(
            [
                "mzr",
                "--metallicity",
                str(tmp_path / "z.csv"),
                "--mass",
                str(tmp_path / "m.csv"),
                "--out",
                str(tmp_path / "o"),
                "--split",
                "all",
            ]
        )
        == 2
    )
    assert (
        main(
            [
                "mzr",
                "--metallicity",
                str(tmp_path / "z.csv"),
                "--mass",
                str(tmp_path / "m.csv"),
                "--out",
                str(tmp_path / "o"),
                "--split",
                "all",
                "--dataset",
                str(tiny_dataset),
            ]
        )
        == 0
    )
    got = json.loads((tmp_path / "o" / "mzr_metrics.json").read_text())
    assert got["mass"]["bias"] == pytest.approx(0.1, abs=1e-6) and got["n"] == len(cat)


def test_mzr_no_common_objects_exit_2(tmp_path, capsys):
    _pair(tmp_path)
    pd.DataFrame({"objID": [1, 2], "lgm_tot_p50_pred": [10.0, 10.1], "lgm_tot_p50": [10.0, 10.0]}).to_csv(
        tmp_path / "m2.csv", index=False
    )
    assert (
        main(
            [
                "mzr",
                "--metallicity",
                str(tmp_path / "z.parquet"),
                "--mass",
                str(tmp_path / "m2.csv"),
                "--out",
                str(tmp_path / "o"),
            ]
        )
        == 2
    )
    err = capsys.readouterr().err.strip()
    assert "no objID in common" in err and len(err.splitlines()) == 1


def test_mzr_bad_bin_width_exit_2(tmp_path, capsys):
    _pair(tmp_path)
    assert (
        main(
            [
                "mzr",
                "--metallicity",
                str(tmp_path / "z.parquet"),
                "--mass",
                str(tmp_path / "m.csv"),
                "--out",
                str(tmp_path / "o"),
                "--bin-width",
                "0",
            ]
        )
        == 2
    )
    assert "--bin-width" in capsys.readouterr().err
