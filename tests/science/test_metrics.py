"""Metrics against hand-computed values, binned statistics, and the evaluate command."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from galmet.cli.main import main
from galmet.errors import DataError
from galmet.science import metrics as M
from galmet.science import stats as S


def test_hand_computed_values():
    t = np.array([8.0, 8.5, 9.0, 9.5, 10.0])
    p = np.array([8.1, 8.4, 9.0, 9.8, 10.0])
    d = p - t  # 0.1, -0.1, 0, 0.3, 0
    assert M.rmse(d) == pytest.approx(np.sqrt((0.01 + 0.01 + 0.09) / 5))
    # median 0; |d| = .1 .1 0 .3 0 -> median 0.1
    assert M.nmad(d) == pytest.approx(1.4826 * 0.1)
    assert M.median_bias(d) == pytest.approx(0.0)
    m = M.regression_metrics(t, p)
    assert m["n"] == 5 and m["mean_bias"] == pytest.approx(0.06)
    assert m["rmse"] == pytest.approx(np.sqrt(0.022))


def test_outliers_need_both_conditions():
    d = np.array([0.0] * 6 + [0.01, -0.01, 0.02, -0.02, 0.5, 0.25])
    # NMAD = 1.4826 * median(|d|) = 1.4826 * 0.01; 0.5 and 0.25 exceed 3 NMAD, but only 0.5 exceeds 0.3 dex
    mask = M.outlier_mask(d)
    assert mask.tolist() == [False] * 10 + [True, False]
    assert M.outlier_fraction(d) == pytest.approx(1 / 12)


def test_nmad_of_a_million_normal_draws_is_sigma():
    sigma = 0.07
    d = np.random.default_rng(1).normal(0.3, sigma, 1_000_000)
    assert abs(M.nmad(d) / sigma - 1) < 0.01
    assert abs(M.rmse(d - 0.3) / sigma - 1) < 0.01


@pytest.mark.parametrize("bad, msg", [([], "empty input"), ([0.1, np.nan, 0.2], "1 of 3 values are NaN")])
def test_empty_and_nan_raise_one_line(bad, msg):
    for f in (M.rmse, M.nmad, M.median_bias, M.outlier_fraction):
        with pytest.raises(DataError, match=msg) as exc:
            f(bad)
        assert "\n" not in str(exc.value)


def test_residual_shape_mismatch():
    with pytest.raises(DataError, match="3 values but prediction has 2"):
        M.residuals([1, 2, 3], [1, 2])


def test_binned_statistics_hand_values():
    x = np.array([0.1, 0.2, 0.6, 0.7, 0.9, 1.0, np.nan])
    y = np.array([1.0, 3.0, 2.0, 4.0, 6.0, -1.0, 5.0])
    tab = S.binned_statistics(x, y, [0.0, 0.5, 1.0], ["median", "rmse", "nmad", "mean"])
    assert tab["count"].tolist() == [2, 4]  # x = 1.0 goes into the last bin, NaN is ignored
    assert tab["median"].tolist() == [2.0, 3.0]
    assert tab["rmse"][0] == pytest.approx(np.sqrt(5.0))
    assert tab["nmad"][1] == pytest.approx(1.4826 * 2.0)  # y = 2 4 6 -1: |y - 3| = 1 1 3 4, median 2
    assert tab["mean"][1] == pytest.approx(11 / 4)


def test_binned_statistics_min_count_and_errors():
    tab = S.binned_statistics([0.1, 0.2, 0.8], [1, 2, 3], [0, 0.5, 1], ["median"], min_count=2)
    assert tab["median"][0] == 1.5 and np.isnan(tab["median"][1]) and tab["count"][1] == 1
    with pytest.raises(DataError, match="unknown statistic 'mode'"):
        S.binned_statistics([1], [1], [0, 2], ["mode"])
    with pytest.raises(DataError, match="increasing"):
        S.binned_statistics([1], [1], [2, 0])


def test_fd_bins():
    x = np.random.default_rng(0).normal(0, 1, 8000)
    iqr = np.subtract(*np.percentile(x, [75, 25]))
    assert S.fd_bin_width(x) == pytest.approx(2 * iqr / 20.0)
    edges = S.fd_bins(x, x * 2)
    assert edges[0] == pytest.approx(min(x.min(), 2 * x.min()))
    assert edges[-1] == pytest.approx(max(x.max(), 2 * x.max()))
    assert np.diff(edges)[0] <= S.fd_bin_width(x) + 1e-12
    assert S.fd_bin_width([3.0] * 10) == 1.0
    with pytest.raises(DataError, match="no finite values"):
        S.fd_bins([np.nan])


def test_fixed_width_bins_aligned():
    edges = S.fixed_width_bins([9.05, 10.93], 0.2)
    assert edges[0] == pytest.approx(9.0) and edges[-1] == pytest.approx(11.0)
    assert np.allclose(np.diff(edges), 0.2)


def _pred_table(n=400, seed=0):
    rng = np.random.default_rng(seed)
    t = rng.normal(8.9, 0.15, n)
    return pd.DataFrame(
        {
            "objID": np.arange(n, dtype=np.int64) + 10,
            "split": np.where(np.arange(n) % 4 == 0, "test", "train"),
            "oh_p50_pred": t + rng.normal(0, 0.08, n),
            "oh_p50": t,
        }
    )


def test_summarize_selects_split_and_quotes_paper():
    df = _pred_table()
    s = M.summarize(df, "oh_p50", "test")
    test = df[df.split == "test"]
    assert s["n"] == len(test)
    assert s["rmse"] == pytest.approx(np.sqrt(np.mean((test.oh_p50_pred - test.oh_p50) ** 2)))
    assert s["paper"]["rmse"] == 0.085
    assert s["frac_true_above_9.1"] == pytest.approx(np.mean(test.oh_p50 > 9.1))
    assert M.summarize(df, "oh_p50", "all")["n"] == len(df)
    text = M.format_metrics_table(s)
    assert "0.085" in text and "RMSE (dex)" in text


def test_summarize_nan_prediction_and_missing_truth_are_left_out():
    df = _pred_table()
    df.loc[4, "oh_p50_pred"] = np.nan
    s = M.summarize(df, "oh_p50", "all")
    assert s["n"] == len(df) - 1 and s["excluded"]["oh_p50_pred"]["missing"] == 1
    df = _pred_table()
    df.loc[4, "oh_p50"] = np.nan
    s = M.summarize(df, "oh_p50", "test")
    assert s["n"] == (df.split == "test").sum() - 1 and s["excluded"]["oh_p50"]["missing"] == 1


def test_evaluate_cli(tmp_path, capsys):
    df = _pred_table()
    f = tmp_path / "p.parquet"
    df.to_parquet(f)
    out = tmp_path / "m" / "metrics.json"
    assert main(["evaluate", str(f), "--json", str(out)]) == 0
    got = json.loads(out.read_text())
    assert got["n"] == 100 and got["predictions"]["sha256"]
    assert "paper" in capsys.readouterr().out


def test_evaluate_joins_truth_from_dataset(tmp_path, tiny_dataset):
    from galmet.data.dataset import load_dataset

    ds = load_dataset(tiny_dataset, load_images=False)
    cat = ds.catalog
    pred = pd.DataFrame({"objID": cat.objID, "split": cat.split, "oh_p50_pred": cat.oh_p50 + 0.05})
    f = tmp_path / "p.csv"
    pred.to_csv(f, index=False)
    assert main(["evaluate", str(f), "--split", "all", "--json", str(tmp_path / "m.json")]) == 2
    assert (
        main(["evaluate", str(f), "--split", "all", "--dataset", str(tiny_dataset), "--json", str(tmp_path / "m.json")])
        == 0
    )
    got = json.loads((tmp_path / "m.json").read_text())
    assert got["rmse"] == pytest.approx(0.05, abs=1e-6) and got["bias"] == pytest.approx(0.05, abs=1e-6)


@pytest.mark.parametrize(
    "content, msg",
    [
        ("objID,oh_p50\n1,8.9\n", "no <target>_pred column"),
        ("objID,oh_p50_pred\n1,8.9\n", "no truth column 'oh_p50'; pass --dataset"),
        (
            "objID,oh_p50_pred,oh_p50,split\n1,8.9,8.8,train\n",
            "predictions table has no 'test' rows (splits present: train); use --split all",
        ),
        ("objID,oh_p50_pred,oh_p50\n", "empty"),
    ],
)
def test_evaluate_bad_inputs_exit_2(tmp_path, capsys, content, msg):
    f = tmp_path / "p.csv"
    f.write_text(content)
    assert main(["evaluate", str(f)]) == 2
    err = capsys.readouterr().err.strip()
    assert msg in err and len(err.splitlines()) == 1


def test_evaluate_missing_file_exit_2(tmp_path, capsys):
    assert main(["evaluate", str(tmp_path / "nope.parquet")]) == 2
    assert "not found" in capsys.readouterr().err


def test_outliers_measured_from_zero_not_the_median():
    # median 0.2, NMAD 1.4826 * 0.01: 0.35 is 0.15 from the median (< 0.3) but |dZ| = 0.35 > 0.3 dex
    d = np.array([0.2] * 5 + [0.21, 0.19, 0.21, 0.19, 0.35])
    assert M.outlier_mask(d).tolist() == [False] * 9 + [True]
    tab = S.binned_statistics(np.zeros(10), d, [-1, 1], ["outlier_fraction"])
    assert tab["outlier_fraction"][0] == pytest.approx(0.1)
