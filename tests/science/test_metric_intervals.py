"""Headline numbers with their uncertainty: bootstrap intervals of RMSE, NMAD and bias (issue 19)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from galmet.cli.main import main
from galmet.errors import DataError
from galmet.science.metrics import bootstrap_metrics, rmse_standard_error, summarize


def _table(n: int = 300, sigma: float = 0.1, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    truth = rng.uniform(8.4, 9.2, n)
    return pd.DataFrame({"objID": np.arange(1, n + 1), "oh_p50": truth, "oh_p50_pred": truth + rng.normal(0, sigma, n)})


def test_intervals_are_ordered_and_hold_the_point_value():
    t = _table()
    b = bootstrap_metrics(t["oh_p50"], t["oh_p50_pred"], n_boot=500, seed=1)
    assert b["n_boot"] == 500 and b["seed"] == 1
    for key in ("rmse", "nmad", "bias"):
        e = b[key]
        assert e["lo95"] < e["lo68"] < e["value"] < e["hi68"] < e["hi95"], (key, e)
        assert 0 < e["se"] < 0.05
    # the bootstrap standard error of the RMSE agrees with the delta method
    se = rmse_standard_error(t["oh_p50_pred"] - t["oh_p50"])
    assert b["rmse"]["se"] == pytest.approx(se, rel=0.2)
    again = bootstrap_metrics(t["oh_p50"], t["oh_p50_pred"], n_boot=500, seed=1)
    assert again == b


def test_rmse_interval_covers_the_true_rmse_at_about_the_nominal_rate():
    """200 samples of 200 galaxies with Gaussian residuals of sigma 0.1 dex: the true RMSE is 0.1."""
    hits68 = hits95 = 0
    trials = 200
    for k in range(trials):
        t = _table(200, 0.1, seed=100 + k)
        r = bootstrap_metrics(t["oh_p50"], t["oh_p50_pred"], n_boot=300, seed=k)["rmse"]
        hits68 += r["lo68"] <= 0.1 <= r["hi68"]
        hits95 += r["lo95"] <= 0.1 <= r["hi95"]
    # binomial standard errors: 3.3% at 68%, 1.5% at 95%; allow about 3 of them
    assert 0.58 <= hits68 / trials <= 0.78, hits68
    assert 0.90 <= hits95 / trials <= 0.995, hits95


def test_summarize_returns_intervals_unless_turned_off():
    t = _table().assign(split="test")
    s = summarize(t, "oh_p50", "test", n_boot=200)
    assert s["intervals"]["rmse"]["value"] == pytest.approx(s["rmse"])
    assert "intervals" not in summarize(t, "oh_p50", "test", n_boot=0)
    with pytest.raises(DataError, match="n_boot"):
        summarize(t, "oh_p50", "test", n_boot=3)


def test_evaluate_prints_each_headline_number_with_its_interval(tmp_path, capsys):
    path = tmp_path / "pred.parquet"
    _table().assign(split="test").to_parquet(path)
    out_json = tmp_path / "m.json"
    assert main(["evaluate", str(path), "--bootstrap", "200", "--json", str(out_json)]) == 0
    out = capsys.readouterr().out
    lines = {line.split("  ")[0]: line for line in out.splitlines()}
    for row in ("RMSE (dex)", "NMAD (dex)", "median bias (dex)"):
        assert row in lines and lines[row].count("[") == 2, out
    assert "68% interval" in out and "95% interval" in out and "200 resamples" in out
    saved = json.loads(out_json.read_text())
    assert saved["intervals"]["n_boot"] == 200 and saved["intervals"]["rmse"]["lo95"] < saved["rmse"]
    assert main(["evaluate", str(path), "--bootstrap", "0"]) == 0
    assert "[" not in capsys.readouterr().out


@pytest.mark.parametrize("value", ["-1", "5", "abc"])
def test_bad_bootstrap_is_one_line_exit_2(tmp_path, capsys, value):
    path = tmp_path / "pred.parquet"
    _table(50).to_parquet(path)
    out_json = tmp_path / "m.json"
    code = main(["evaluate", str(path), "--bootstrap", value, "--json", str(out_json)])
    err = capsys.readouterr().err
    assert code == 2 and "--bootstrap" in err and err.count("\n") == 1, err
    assert not out_json.exists()
