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


def _fold_ensemble(n: int, k: int, rng):
    """K fold members with their own errors: out-of-fold table (row i predicted by member i % k)
    and, for new galaxies, each member's prediction (k, n) and the truth."""
    x = rng.normal(8.9, 0.2, n)
    y = x + rng.normal(0, 0.05, n)
    mu = x[None, :] + rng.normal(0, 0.08, (k, n))
    return y, mu


def test_cv_plus_covers_the_averaged_ensemble():
    rng = np.random.default_rng(6)
    k = 5
    y_cal, mu_cal = _fold_ensemble(2000, k, rng)
    fold = np.arange(2000) % k
    oof = pd.DataFrame({T: y_cal, f"{T}_pred": mu_cal[fold, np.arange(2000)], "fold": fold})
    y, mu = _fold_ensemble(5000, k, rng)
    pred = mu.mean(0)
    tol = 3 * math.sqrt(0.68 * 0.32 / 5000)
    for bins in (1, "auto"):
        cal = fit_calibration(oof, T, "absolute", bins=bins, members=k)
        assert cal.cv_plus and "CV+ over 5" in cal.describe()
        out = cal.apply(pred, members=mu)
        cov = np.mean((y >= out[f"{T}_lo68"]) & (y <= out[f"{T}_hi68"]))
        assert cov >= 0.68 - tol, cov
        back = Calibration.from_dict(cal.to_dict())
        np.testing.assert_array_equal(back.apply(pred, members=mu)[f"{T}_hi95"], out[f"{T}_hi95"])
    with pytest.raises(ConfigError, match="member"):
        cal.apply(pred)
    with pytest.raises(ConfigError, match="5 members"):
        cal.apply(pred, members=mu[:3])


def test_cv_plus_mondrian_on_a_batch_that_misses_bins_and_on_no_rows():
    """A small batch (one position, a shard of a few) leaves most bins empty: each row still gets
    the interval it gets in a full batch, and no rows give empty columns (a crash before)."""
    rng = np.random.default_rng(8)
    y_cal, mu_cal = _fold_ensemble(800, 5, rng)
    fold = np.arange(800) % 5
    oof = pd.DataFrame({T: y_cal, f"{T}_pred": mu_cal[fold, np.arange(800)], "fold": fold})
    cal = fit_calibration(oof, T, "absolute", bins=4, members=5)
    _, mu = _fold_ensemble(200, 5, rng)
    pred = mu.mean(0)
    full = cal.apply(pred, members=mu)
    one_bin = cal.bin_of(pred) == cal.bin_of(pred)[0]
    part = cal.apply(pred[one_bin], members=mu[:, one_bin])
    for col, values in part.items():
        np.testing.assert_array_equal(values, full[col][one_bin])
    single = cal.apply(pred[:1], members=mu[:, :1])
    assert all(v.shape == (1,) and np.isfinite(v).all() for v in single.values())
    empty = cal.apply(pred[:0], members=mu[:, :0])
    assert all(v.shape == (0,) for v in empty.values())


def test_cv_plus_reduces_to_split_conformal_for_equal_members():
    rng = np.random.default_rng(7)
    y_cal, mu_cal = _fold_ensemble(300, 3, rng)
    fold = np.arange(300) % 3
    oof = pd.DataFrame({T: y_cal, f"{T}_pred": mu_cal[fold, np.arange(300)], "fold": fold})
    p = np.linspace(8.6, 9.2, 40)
    for sym in (False, True):
        cv = fit_calibration(oof, T, "absolute", symmetric=sym, members=3).apply(p, members=np.stack([p, p, p]))
        plain = fit_calibration(oof, T, "absolute", symmetric=sym).apply(p)
        for col, v in plain.items():
            np.testing.assert_allclose(cv[col], v, atol=1e-12)


def test_cv_plus_fold_ids_checked():
    oof = _shrunk(100, np.random.default_rng(8)).assign(fold=np.arange(100) % 4)
    with pytest.raises(DataError, match="not the folds 0 .. 4"):
        fit_calibration(oof, T, "absolute", members=5)
    d = fit_calibration(oof, T, "absolute", members=4).to_dict()
    d["folds"][0] = 7
    with pytest.raises(ConfigError, match="CV\\+ folds"):
        Calibration.from_dict(d, "b.pt")


def test_member_predictions_average_to_the_ensemble_and_feed_cv_plus(tmp_path):
    import torch

    from galmet.nn.bundle import load_model, save_bundle, save_ensemble, update_bundle
    from galmet.nn.net import build_model

    torch.manual_seed(0)
    meta = {"targets": [T], "image_size": 16}
    parts = [save_bundle(tmp_path / f"m{k}.pt", build_model("resnet18"), dict(meta)) for k in range(2)]
    ens = load_model(save_ensemble(tmp_path / "ens.pt", parts))
    images = np.random.default_rng(9).integers(0, 255, (5, 16, 16, 3), dtype=np.uint8)
    pred, std, _, members = ens.predict_members(images, tta=True, device="cpu")
    assert members.shape == (2, 5, 1)
    np.testing.assert_allclose(members.mean(0)[:, 0], pred, rtol=0, atol=1e-9)
    np.testing.assert_allclose(pred, ens.predict(images, tta=True, device="cpu"), rtol=0, atol=1e-9)
    oof = _shrunk(60, np.random.default_rng(10)).assign(fold=np.arange(60) % 2)
    cal = fit_calibration(oof, T, "absolute", members=2)
    model = load_model(update_bundle(tmp_path / "ens.pt", tmp_path / "cal.pt", {"calibration": {T: cal.to_dict()}}))
    res = model.predict_uncertainty(images, tta=True, device="cpu")
    expect = cal.apply(pred, members=members[:, :, 0])
    np.testing.assert_allclose(res.calibrated[T][f"{T}_lo68"], expect[f"{T}_lo68"])
