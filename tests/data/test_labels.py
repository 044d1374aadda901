"""Sentinel and out-of-range truths (MPA-JHU's -9999): missing, counted and reported everywhere
a truth column is carried or joined (predict, evaluate, mzr, figures, baselines)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from conftest import make_tiny_dataset
from galmet.cli.main import main
from galmet.columns import LABEL_RANGES
from galmet.data.dataset import load_dataset, write_catalog
from galmet.data.labels import describe_invalid, invalid_label_mask, mask_invalid_labels
from galmet.paper import tremonti_mzr
from galmet.science import metrics as M


def test_invalid_label_mask_uses_the_training_ranges():
    lo, hi = LABEL_RANGES["lgm_tot_p50"]
    v = np.array([-9999.0, lo, hi, hi + 0.01, np.nan, 10.2, np.inf, 1e30])
    assert invalid_label_mask("lgm_tot_p50", v).tolist() == [True, False, False, True, False, False, True, True]
    # a column without a range: only sentinels, infinities and fill values are not labels
    assert invalid_label_mask("not_a_label", v).tolist() == [True, False, False, False, False, False, True, True]
    df = pd.DataFrame({"oh_p50": [8.9, -9999.0, 8.7], "lgm_tot_p50": [10.0, 9.5, -9999.0], "z": [-9999.0, 0.1, 0.1]})
    out, found = mask_invalid_labels(df)
    assert out["oh_p50"].isna().tolist() == [False, True, False]
    assert out["lgm_tot_p50"].isna().tolist() == [False, False, True]
    assert out["z"].tolist()[0] == -9999.0  # no range known for z: left alone
    assert df["oh_p50"][1] == -9999.0  # the input is not modified
    assert found["lgm_tot_p50"] == {"n": 1, "range": [5.0, 13.0], "examples": [-9999.0]}
    assert describe_invalid("lgm_tot_p50", found["lgm_tot_p50"]) == (
        "1 row with invalid lgm_tot_p50 (outside 5-13, e.g. -9999) left out"
    )
    same, none = mask_invalid_labels(df[["z"]])
    assert none == {} and same is not None


def _mass_predictions(n=2000, n_bad=2, seed=0):
    rng = np.random.default_rng(seed)
    m = rng.normal(10.0, 0.5, n)
    pred = m + rng.normal(0, 0.2, n)
    m[:n_bad] = -9999.0
    return pd.DataFrame(
        {"objID": np.arange(n, dtype=np.int64) + 1, "split": "test", "lgm_tot_p50_pred": pred, "lgm_tot_p50": m}
    )


def test_evaluate_leaves_out_and_reports_a_sentinel_mass(tmp_path, capsys):
    df = _mass_predictions()
    f = tmp_path / "mass.parquet"
    df.to_parquet(f)
    out = tmp_path / "metrics.json"
    assert main(["evaluate", str(f), "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "2 rows with invalid lgm_tot_p50 (outside 5-13, e.g. -9999) left out" in printed
    got = json.loads(out.read_text())
    assert got["n"] == 1998
    assert got["excluded"]["lgm_tot_p50"]["invalid"] == 2
    ok = df.iloc[2:]
    assert got["rmse"] == pytest.approx(np.sqrt(np.mean((ok.lgm_tot_p50_pred - ok.lgm_tot_p50) ** 2)))
    assert got["rmse"] < 0.3  # not 316 dex


def test_summarize_missing_truth_and_nan_prediction_left_out():
    df = _mass_predictions(n=50, n_bad=0)
    df.loc[3, "lgm_tot_p50"] = np.nan
    s = M.summarize(df, "lgm_tot_p50", "test")
    assert s["n"] == 49 and s["excluded"] == {
        "lgm_tot_p50": {"missing": 1, "invalid": 0, "range": [5.0, 13.0], "examples": []}
    }
    assert "1 row without lgm_tot_p50 left out" in M.format_metrics_table(s)
    df.loc[7, "lgm_tot_p50_pred"] = np.nan
    s = M.summarize(df, "lgm_tot_p50", "test")
    assert s["n"] == 48 and s["excluded"]["lgm_tot_p50_pred"]["missing"] == 1
    df["lgm_tot_p50"] = -9999.0
    with pytest.raises(M.DataError, match="no row has a valid lgm_tot_p50, lgm_tot_p50_pred .*50 rows with invalid"):
        M.summarize(df, "lgm_tot_p50", "test")


def test_mzr_leaves_out_and_reports_sentinel_masses(tmp_path, capsys):
    n = 2000
    rng = np.random.default_rng(1)
    m = rng.normal(10.0, 0.5, n)
    zt = tremonti_mzr(m) + rng.normal(0, 0.1, n)
    ids = np.arange(n, dtype=np.int64) + 1
    m_cat = m.copy()
    m_cat[[5, 17]] = -9999.0
    z = pd.DataFrame({"objID": ids, "split": "test", "oh_p50_pred": zt + rng.normal(0, 0.05, n), "oh_p50": zt})
    z["lgm_tot_p50"] = m_cat  # a carried (pass-through) truth
    ms = pd.DataFrame({"objID": ids, "lgm_tot_p50_pred": m + rng.normal(0, 0.2, n), "lgm_tot_p50": m_cat})
    z.to_parquet(tmp_path / "z.parquet")
    ms.to_parquet(tmp_path / "m.parquet")
    out = tmp_path / "mzr"
    argv = ["mzr", "--metallicity", str(tmp_path / "z.parquet"), "--mass", str(tmp_path / "m.parquet")]
    assert main([*argv, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "2 rows with invalid lgm_tot_p50 (outside 5-13, e.g. -9999) left out" in printed
    got = json.loads((out / "mzr_metrics.json").read_text())
    assert got["n"] == n - 2 and got["excluded"]["lgm_tot_p50"]["invalid"] == 2
    assert got["mass"]["rmse"] < 0.3
    bins = pd.read_csv(out / "mzr_bins.csv")
    assert len(bins) < 30 and bins["lo"].min() > 7  # not 50,054 bins reaching down to -9999
    joined = pd.read_parquet(out / "mzr_joined.parquet")
    assert len(joined) == n - 2 and joined["lgm_tot_p50"].min() > 5


@pytest.fixture
def sentinel_dataset(tmp_path):
    root = make_tiny_dataset(tmp_path / "ds", n=40, size=16, split=True)
    cat = pd.read_parquet(root / "catalog.parquet")
    cat.loc[[0, 1, 2], "lgm_tot_p50"] = -9999.0  # rows 0 (test), 1 and 2 (train)
    write_catalog(root, cat)
    return root


def test_predict_writes_a_sentinel_mass_as_missing(sentinel_dataset, tmp_path, caplog):
    import torch

    from galmet.nn.bundle import load_model, save_bundle
    from galmet.nn.net import build_model
    from galmet.predict.dataset import predict_dataset

    torch.manual_seed(0)
    bundle = save_bundle(tmp_path / "m.pt", build_model("resnet18"), {"targets": ["oh_p50"], "image_size": 16})
    ds = load_dataset(sentinel_dataset, targets=[])
    with caplog.at_level("WARNING"):
        table = predict_dataset(load_model(bundle), ds, tta=False, device="cpu")
    assert table["lgm_tot_p50"].isna().tolist()[:4] == [True, True, True, False]
    assert table["lgm_tot_p50"].min() > 5
    assert table.attrs["invalid_labels"]["lgm_tot_p50"]["n"] == 3
    assert "3 rows with invalid lgm_tot_p50 (outside 5-13, e.g. -9999) written as missing" in caplog.text


def test_baseline_and_evaluate_by_join_leave_out_sentinels(sentinel_dataset, tmp_path, capsys):
    out = tmp_path / "base"
    assert main(["baseline", str(sentinel_dataset), "--target", "oh_p50", "--out", str(out), "--jobs", "1"]) == 0
    rf = pd.read_parquet(out / "rf_gri_predictions.parquet")
    assert rf["lgm_tot_p50"].isna().sum() == 3 and rf["lgm_tot_p50"].min() > 5
    capsys.readouterr()
    # a mass-prediction file without truths: the -9999 masses come in through --dataset and are left out
    cat = load_dataset(sentinel_dataset, targets=[], load_images=False).catalog
    pred = pd.DataFrame({"objID": cat.objID, "lgm_tot_p50_pred": 10.0})
    pred.to_csv(tmp_path / "m.csv", index=False)
    code = main(["evaluate", str(tmp_path / "m.csv"), "--dataset", str(sentinel_dataset), "--split", "all"])
    assert code == 0
    assert "3 rows with invalid lgm_tot_p50 (outside 5-13, e.g. -9999) left out" in capsys.readouterr().out


def test_figures_leave_out_sentinel_truths(tmp_path, caplog):
    from galmet.runs.figures import make_figures

    rng = np.random.default_rng(2)
    t = rng.normal(8.9, 0.15, 80)
    df = pd.DataFrame({"objID": np.arange(80), "oh_p50": t, "oh_p50_pred": t + rng.normal(0, 0.05, 80)})
    df.loc[:3, "oh_p50"] = -9999.0
    with caplog.at_level("WARNING"):
        files = make_figures(df, out_dir=tmp_path / "f", split="all", formats=("png",))
    assert len(files) == 2
    assert "4 rows with invalid oh_p50 (outside 7-10, e.g. -9999) left out" in caplog.text
