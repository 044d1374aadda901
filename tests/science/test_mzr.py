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


# --- null tests of the predicted MZR (issue 10, item 5) ----------------------------------------


def _population(n=6000, seed=3):
    """Z_true = MZR(M) - 0.15 dsSFR + hidden + noise; a catalogue with gri magnitudes and splits."""
    rng = np.random.default_rng(seed)
    m = rng.normal(10.0, 0.5, n)
    dssfr = rng.normal(0, 0.3, n)
    hidden = rng.normal(0, 0.06, n)
    zt = tremonti_mzr(m) - 0.15 * dssfr + hidden + rng.normal(0, 0.05, n)
    ids = np.arange(n, dtype=np.int64) + 1
    split = np.where(np.arange(n) % 3 == 0, "test", "train")
    r = 17.0 - 1.2 * (m - 10) + rng.normal(0, 0.3, n)
    cat = pd.DataFrame(
        {
            "objID": ids,
            "split": split,
            "oh_p50": zt,
            "lgm_tot_p50": m,
            "log_ssfr": -9.7 - 0.3 * (m - 10) + dssfr,
            "modelMag_g": r + 0.6 + 0.3 * (m - 10) + rng.normal(0, 0.05, n),
            "modelMag_r": r,
            "modelMag_i": r - 0.3 + rng.normal(0, 0.05, n),
        }
    )
    return cat, m, dssfr, hidden, zt


def _files(tmp_path, cat, zp, name="z"):
    test = cat["split"] == "test"
    z = pd.DataFrame({"objID": cat.objID[test], "split": "test", "oh_p50_pred": zp[test], "oh_p50": cat.oh_p50[test]})
    ms = pd.DataFrame(
        {
            "objID": cat.objID[test],
            "lgm_tot_p50_pred": cat.lgm_tot_p50[test] + 0.01,
            "lgm_tot_p50": cat.lgm_tot_p50[test],
        }
    )
    z.to_parquet(tmp_path / f"{name}.parquet")
    ms.to_parquet(tmp_path / "m.parquet")
    return tmp_path / f"{name}.parquet", tmp_path / "m.parquet"


def test_calibrated_regressor_has_the_expected_tighter_mzr(tmp_path):
    from galmet.science.mzr import mzr_analysis

    cat, m, dssfr, hidden, zt = _population()
    zp = tremonti_mzr(m) - 0.15 * dssfr  # calibrated: E[Z_true | Z_pred] = Z_pred, no hidden variable
    res = mzr_analysis(*_files(tmp_path, cat, zp), dataset=cat, use_rf=False)
    n = res["metrics"]["null_tests"]
    test = (cat.split == "test").to_numpy()
    assert n["rmse"] == pytest.approx(np.hypot(0.06, 0.05), rel=0.06)
    assert n["sigma_true_given_mass"] == pytest.approx(np.sqrt(0.045**2 + 0.06**2 + 0.05**2), rel=0.06)
    # the predicted MZR is tighter than the true one, exactly as sqrt(sigma_true^2 - RMSE^2) says
    assert n["sigma_pred_given_mass"] < 0.7 * n["sigma_true_given_mass"]
    assert n["expected_calibrated"] == pytest.approx(n["sigma_pred_given_mass"], rel=0.12)
    assert n["ratio"] == pytest.approx(1.0, abs=0.12)
    assert np.std((0.15 * dssfr)[test]) == pytest.approx(n["sigma_pred_given_mass"], rel=0.1)
    nb = res["null_bins"]
    assert {"std_true", "std_pred", "rmse_dz", "expected_pred"} <= set(nb.columns)
    ok = nb.dropna()
    assert np.allclose(ok["expected_pred"], np.sqrt(np.clip(ok["std_true"] ** 2 - ok["rmse_dz"] ** 2, 0, None)))


def test_random_forest_null_and_ssfr_partial_correlations(tmp_path):
    from galmet.science.mzr import format_mzr, mzr_analysis

    cat, m, dssfr, hidden, zt = _population()
    learned = tremonti_mzr(m) - 0.15 * dssfr + np.random.default_rng(9).normal(0, 0.02, len(m))
    res = mzr_analysis(*_files(tmp_path, cat, learned), dataset=cat)
    met = res["metrics"]
    rf = met["null_tests"]["rf"]
    assert rf["n"] == met["null_tests"]["n"] > 0.95 * (cat.split == "test").sum() and "random forest" in rf["source"]
    # photometry that knows only the mass: its predicted MZR is tight too, without any sSFR in it
    assert rf["sigma_pred_given_mass"] < met["null_tests"]["sigma_true_given_mass"]
    s = met["ssfr"]
    assert s["column"] == "log_ssfr" and s["z_true"]["r"] < -0.3
    assert s["z_pred"]["r"] < -0.8  # this "CNN" learned the sSFR term
    assert s["dz"]["lo"] < 0.05 and abs(s["dz"]["r"]) < 0.08  # ... so its residuals do not track sSFR
    assert s["rf_dz"]["r"] > 0.3  # the forest's residuals do: it learned the mass only
    text = format_mzr(met)
    assert "expected at sqrt(sigma^2 - RMSE^2)" in text and "random forest" in text and "log_ssfr" in text
    assert "Tremonti+04 sigma, DR2" in text and "paper, Fig 5" in text
    # the mass, Z_MZR and Z_pred scores are printed with their 95% bootstrap intervals
    b = met["z_pred"]["intervals"]["rmse"]
    assert b["lo95"] < met["z_pred"]["rmse"] < b["hi95"] and "95% interval" in text
    line = next(x for x in text.splitlines() if x.startswith("Z_pred vs Z_true: RMSE"))
    assert f"{met['z_pred']['rmse']:.4f}" in line and f"[{b['lo95']:.4f}, {b['hi95']:.4f}]" in line
    assert met["z_pred"]["intervals"]["nmad"]["se"] > 0 and "intervals" in met["mass"] and "intervals" in met["z_mzr"]
    # a network that learned only the mass: residuals anti-correlated with Z_true's sSFR dependence
    mass_only = tremonti_mzr(m)
    res2 = mzr_analysis(*_files(tmp_path, cat, mass_only, name="z2"), dataset=cat, use_rf=False)
    assert res2["metrics"]["ssfr"]["dz"]["lo"] > 0.3 and "rf" not in res2["metrics"]["null_tests"]


def test_partial_correlation_against_a_known_value():
    from galmet.science.stats import fixed_width_bins, partial_correlation

    rng = np.random.default_rng(0)
    n = 20000
    c = rng.uniform(9, 11, n)
    e = rng.normal(0, 1, (n, 2)) @ np.linalg.cholesky([[1, 0.5], [0.5, 1]]).T
    x, y = 3 * c + e[:, 0], -2 * c + e[:, 1]  # strongly anti-correlated through c, +0.5 at fixed c
    assert np.corrcoef(x, y)[0, 1] < -0.4
    pc = partial_correlation(x, y, c, fixed_width_bins(c, 0.05))
    assert pc["r"] == pytest.approx(0.5, abs=0.03) and pc["lo"] < pc["r"] < pc["hi"] and pc["n"] == n
    assert pc["hi"] - pc["lo"] == pytest.approx(2 * 1.96 * (1 - 0.25) / np.sqrt(n), rel=0.1)


def test_refit_relation_and_the_mzr_options(tmp_path, capsys):
    from galmet.science.mzr import TREMONTI, fit_mzr

    cat, m, dssfr, hidden, zt = _population()
    rel = fit_mzr(m, zt)
    assert rel(10.0) == pytest.approx(TREMONTI(10.0), abs=0.02) and rel.n == len(m)
    zf, mf = _files(tmp_path, cat, zt + 0.01)
    argv = ["mzr", "--metallicity", str(zf), "--mass", str(mf), "--out", str(tmp_path / "o")]
    assert main([*argv, "--relation", "refit"]) == 2
    assert "--relation refit needs --dataset" in capsys.readouterr().err
    assert main([*argv, "--rf", str(zf), "--no-rf"]) == 2
    assert "contradict" in capsys.readouterr().err
    assert main([*argv, "--ssfr", "no_such_column"]) == 2
    assert "no sSFR column 'no_such_column'" in capsys.readouterr().err
    # the forest from a predictions file (galmet baseline's output format)
    rf = pd.DataFrame({"objID": cat.objID, "oh_p50_pred": tremonti_mzr(m), "oh_p50": zt})
    rf.to_parquet(tmp_path / "rf.parquet")
    assert main([*argv, "--rf", str(tmp_path / "rf.parquet"), "--style", "galmet"]) == 0
    got = json.loads((tmp_path / "o" / "mzr_metrics.json").read_text())
    assert got["null_tests"]["rf"]["source"].endswith("rf.parquet") and got["rf_predictions"]["sha256"]
    bins = pd.read_csv(tmp_path / "o" / "mzr_bins.csv")
    assert {"expected_pred", "std_rf", "rmse_mzr_pred", "rmse_mzr_true"} <= set(bins.columns)


def test_mzr_refit_on_the_train_split(tmp_path):
    from galmet.science.mzr import mzr_analysis

    cat, m, dssfr, hidden, zt = _population()
    cat["oh_p50"] = cat["oh_p50"] + 0.08  # a catalogue whose MZR sits above Eq. 3
    zf, mf = _files(tmp_path, cat, cat["oh_p50"].to_numpy() + 0.0)
    eq3 = mzr_analysis(zf, mf, dataset=cat, use_rf=False)["metrics"]
    res = mzr_analysis(zf, mf, dataset=cat, relation="refit", use_rf=False)
    met = res["metrics"]
    assert met["relation"]["name"] == "refit" and met["refit"]["n_fit"] == (cat.split != "test").sum()
    assert abs(met["refit"]["true_mass"]["bias"]) < 0.02 < abs(eq3["tremonti_true"]["bias"])
    assert met["mzr_true_scatter_about_relation"]["rmse"] < eq3["mzr_true_scatter_about_relation"]["rmse"]
    assert "z_mzr_refit" in res["joined"].columns


def test_ssfr_derived_from_mpajhu_sfr_with_sentinels_left_out(tmp_path):
    from galmet.science.mzr import DERIVED_SSFR, mzr_analysis

    cat, m, dssfr, hidden, zt = _population()
    cat["sfr_tot_p50"] = cat.pop("log_ssfr") + cat["lgm_tot_p50"]  # what galmet catalog queries
    cat.loc[cat.index[:30], "sfr_tot_p50"] = -9999.0
    zf, mf = _files(tmp_path, cat, tremonti_mzr(m))
    s = mzr_analysis(zf, mf, dataset=cat, use_rf=False)["metrics"]["ssfr"]
    assert s["column"] == DERIVED_SSFR and s["z_true"]["r"] < -0.3
    assert s["z_true"]["n"] < (cat.split == "test").sum() - 5  # the 10 test sentinels are not in it


def test_mzr_library_errors_name_parameters_and_the_cli_names_flags(tmp_path, capsys):
    from galmet.errors import DataError
    from galmet.science.mzr import mzr_analysis

    _, _, zdf, mdf = _pair(tmp_path)
    z, m = tmp_path / "z.parquet", tmp_path / "m_no_truth.csv"
    other = pd.DataFrame({"objID": [1], "lgm_tot_p50_pred": [10.0], "lgm_tot_p50": [10.0]})
    pd.concat([mdf.assign(lgm_tot_p50=np.nan), other]).to_csv(m, index=False)
    with pytest.raises(DataError, match="^relation must be one of tremonti, refit") as info:
        mzr_analysis(z, m, relation="bogus")
    assert info.value.param == "relation"
    # no true mass for the galaxies in common (only for another one): the library asks for the
    # dataset parameter, the CLI for --dataset
    with pytest.raises(DataError, match="pass dataset$") as info:
        mzr_analysis(z, m)
    assert info.value.param == "dataset" and "--" not in str(info.value)
    assert main(["mzr", "--metallicity", str(z), "--mass", str(m), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith("pass --dataset") and len(err.splitlines()) == 1
