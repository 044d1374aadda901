"""Conditionally valid intervals: Mondrian calibration by predicted metallicity (issue 19, item 2)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from galmet.errors import ConfigError, DataError
from galmet.nn.uncertainty import Calibration
from galmet.science.calibration import auto_bins, check_bins, fit_calibration, uncertainty_metrics

T = "oh_p50"


def _shrunk(n: int, rng) -> pd.DataFrame:
    """Predictions that shrink towards the mean like a CNN's: the residual's bias depends on the prediction."""
    z = rng.normal(8.9, 0.2, n)
    p = 8.9 + 0.2 * (z - 8.9) + rng.normal(0, 0.03, n)
    return pd.DataFrame({"objID": np.arange(n), T: z, f"{T}_pred": p})


def _tercile_coverage(cal: Calibration, test: pd.DataFrame) -> tuple[np.ndarray, float]:
    p, y = test[f"{T}_pred"].to_numpy(), test[T].to_numpy()
    out = cal.apply(p)
    inside = (y >= out[f"{T}_lo68"]) & (y <= out[f"{T}_hi68"])
    which = np.searchsorted(np.quantile(p, [1 / 3, 2 / 3]), p)
    cov = np.array([inside[which == k].mean() for k in range(3)])
    return cov, 3 * math.sqrt(0.68 * 0.32 / (len(test) / 3))


def test_mondrian_fixes_the_terciles_marginal_misses():
    rng = np.random.default_rng(1)
    cal_rows, test = _shrunk(2000, rng), _shrunk(6000, rng)
    marginal = fit_calibration(cal_rows, T, "absolute", bins=1)
    cov, tol = _tercile_coverage(marginal, test)
    assert cov.min() < 0.68 - tol, cov  # marginal split conformal under-covers a tail tercile
    mondrian = fit_calibration(cal_rows, T, "absolute", bins="auto")
    assert len(mondrian.bins) == 5 and "Mondrian with 5 bins" in mondrian.describe()
    cov, tol = _tercile_coverage(mondrian, test)
    assert np.all(np.abs(cov - 0.68) < tol), cov


def test_tercile_of_prediction_in_metrics():
    rng = np.random.default_rng(2)
    cal_rows, test = _shrunk(1000, rng), _shrunk(3000, rng)
    cal = fit_calibration(cal_rows, T, "absolute", bins=1)
    test = test.assign(split="test", **cal.apply(test[f"{T}_pred"].to_numpy()))
    m = uncertainty_metrics(test, T)
    rows = m["pred_terciles"]
    assert [r["n"] for r in rows] == [1000, 1000, 1000]
    assert rows[1]["coverage68"] > rows[0]["coverage68"] + 0.05  # the middle is over-covered
    assert rows[0]["se68"] == pytest.approx(math.sqrt(rows[0]["coverage68"] * (1 - rows[0]["coverage68"]) / 1000))


def test_v2_round_trip_and_v1_still_reads():
    rng = np.random.default_rng(3)
    cal = fit_calibration(_shrunk(500, rng), T, "absolute", bins=3)
    back = Calibration.from_dict(cal.to_dict())
    p = np.linspace(8.7, 9.1, 50)
    for col, v in cal.apply(p).items():
        np.testing.assert_array_equal(back.apply(p)[col], v)
    assert back.to_dict() == cal.to_dict()
    v1 = {k: v for k, v in cal.to_dict().items() if k not in ("edges", "bins")} | {"version": 1}
    old = Calibration.from_dict(v1)
    assert not old.bins and old.n == 500
    np.testing.assert_allclose(old.quantiles(0.68), cal.quantiles(0.68))


@pytest.mark.parametrize(
    "change, words",
    [
        ({"edges": [9.0, 8.8]}, "increasing"),
        ({"edges": [8.9]}, "need 2 bins"),
        ({"edges": ["x", 9.0]}, "numbers"),
        ({"version": 3}, "version 3"),
        ("bin_n", "galaxies"),
        ("bin_method", "another target"),
    ],
)
def test_malformed_v2_refused(change, words):
    d = fit_calibration(_shrunk(500, np.random.default_rng(4)), T, "absolute", bins=3).to_dict()
    if change == "bin_n":
        d["bins"][0]["n"] += 1
    elif change == "bin_method":
        d["bins"][1]["method"] = "spread"
    else:
        d.update(change)
    with pytest.raises(ConfigError, match=words) as exc:
        Calibration.from_dict(d, "b.pt")
    assert "\n" not in str(exc.value) and "b.pt" in str(exc.value)


def test_bins_values():
    assert [auto_bins(n) for n in (50, 150, 350, 10_000)] == [1, 1, 3, 5]
    assert check_bins("auto", 420) == 4 and check_bins("2", 100) == 2
    for bad in ("0", "x", -1, 2.5, "1.5"):
        with pytest.raises(ConfigError, match="bins"):
            check_bins(bad)
    with pytest.raises(DataError, match="too few per bin"):
        check_bins(5, 40)


@pytest.mark.parametrize("value", ["0", "two", "1.5"])
def test_cli_bins_refused_before_disk(tmp_path, capsys, value):
    from galmet.cli.main import main

    out = tmp_path / "cal.pt"
    argv = ["calibrate", str(tmp_path / "none.pt"), str(tmp_path / "p.parquet"), "--out", str(out)]
    code = main([*argv, "--bins", value])
    err = capsys.readouterr().err.strip()
    assert code == 2 and not out.exists()
    assert len(err.splitlines()) == 1 and "--bins" in err


def test_pred_terciles_printed_and_in_report():
    from galmet.report.sections import uncertainty_section
    from galmet.science.calibration import format_uncertainty

    rng = np.random.default_rng(5)
    cal = fit_calibration(_shrunk(600, rng), T, "absolute", bins="auto")
    test = _shrunk(900, rng)
    test = test.assign(split="test", **cal.apply(test[f"{T}_pred"].to_numpy()))
    m = uncertainty_metrics(test, T)
    text = format_uncertainty(m, T)
    assert f"per tercile of predicted {T}" in text and "(n=300)" in text
    html = uncertainty_section(m, T)
    assert f"predicted {T}" in html and html.count("&plusmn;") >= 8
