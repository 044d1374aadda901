"""Weighted split-conformal error bars under covariate shift (Tibshirani et al. 2019)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from conftest import TINY_TRAIN, run_cli
from galmet.errors import ConfigError
from galmet.nn.uncertainty import Calibration
from galmet.science.calibration import fit_calibration


def _draw(rng, n: int, mean: float):
    """x ~ N(mean, 1); residual y - pred ~ N(0, 0.05 + 0.1 |x|): wider far from 0."""
    x = rng.normal(mean, 1.0, n)
    return x, rng.normal(0.0, 1.0, n) * (0.05 + 0.1 * np.abs(x))


def _ratio(x):
    """True density ratio N(1, 1) / N(0, 1) at x."""
    return np.exp(x - 0.5)


def _table(x, r):
    pred = np.full(len(x), 9.0)
    return pd.DataFrame({"oh_p50_pred": pred, "oh_p50": pred + r, "split": "valid"})


def _coverage(cal: Calibration, r) -> float:
    out = cal.apply(np.zeros(len(r)))
    return float(np.mean((r >= out["oh_p50_lo68"]) & (r <= out["oh_p50_hi68"])))


def test_weighted_restores_coverage_under_shift():
    rng = np.random.default_rng(0)
    x_cal, r_cal = _draw(rng, 4000, 0.0)
    x_t, r_t = _draw(rng, 20000, 1.0)
    w = _ratio(x_cal)
    plain = fit_calibration(_table(x_cal, r_cal), "oh_p50", "absolute", symmetric=True, split="valid")
    weighted = fit_calibration(
        _table(x_cal, r_cal),
        "oh_p50",
        "absolute",
        symmetric=True,
        split="valid",
        weights=w,
        test_weight=float(np.mean(_ratio(x_t))),
    )
    cov_plain, cov_w = _coverage(plain, r_t), _coverage(weighted, r_t)
    assert cov_plain < 0.63  # the shift to wide residuals: the plain intervals under-cover
    assert abs(cov_w - 0.68) < 0.03, (cov_plain, cov_w)
    assert "weighted (test weight" in weighted.describe()


@pytest.mark.parametrize("symmetric", [True, False])
def test_equal_weights_are_the_unweighted_quantiles(symmetric):
    rng = np.random.default_rng(1)
    z = rng.normal(size=57)
    plain = Calibration.from_scores("oh_p50", "absolute", np.abs(z) if symmetric else z, symmetric)
    same = Calibration.from_scores(
        "oh_p50", "absolute", np.abs(z) if symmetric else z, symmetric, weights=np.full(57, 2.5), test_weight=2.5
    )
    for level in (0.5, 0.68, 0.9, 0.95, 0.99):
        assert same.quantiles(level) == plain.quantiles(level)


def test_unreachable_level_is_infinite():
    cal = Calibration.from_scores("oh_p50", "absolute", [0.1, 0.2, 0.3], True, weights=[1, 1, 1], test_weight=5.0)
    assert cal.quantiles(0.68) == (-math.inf, math.inf)


def test_round_trip_and_mondrian_bins():
    rng = np.random.default_rng(2)
    x, r = _draw(rng, 300, 0.0)
    t = _table(x, r)
    t["oh_p50_pred"] = 9.0 + rng.normal(size=300) * 0.1
    cal = fit_calibration(t, "oh_p50", "absolute", split="valid", bins=3, weights=_ratio(x), test_weight=1.3)
    assert len(cal.bins) == 3 and all(b.weights is not None for b in cal.bins)
    back = Calibration.from_dict(cal.to_dict())
    assert back.test_weight == pytest.approx(1.3)
    np.testing.assert_array_equal(back.weights, cal.weights)
    p = np.linspace(8.8, 9.2, 11)
    for col, values in cal.apply(p).items():
        np.testing.assert_array_equal(back.apply(p)[col], values)
    old = Calibration.from_scores("oh_p50", "absolute", r).to_dict()
    assert Calibration.from_dict(old).weights is None


@pytest.mark.parametrize(
    "change",
    [
        {"weights": [1.0, -1.0, 1.0]},
        {"weights": [1.0, float("nan"), 1.0]},
        {"weights": [1.0, 1.0]},
        {"weights": "abc"},
        {"test_weight": 0.0},
        {"test_weight": None},
    ],
)
def test_malformed_weights_refused(change):
    d = Calibration.from_scores("oh_p50", "absolute", [0.1, 0.2, 0.3], weights=[1, 1, 1], test_weight=1.0).to_dict()
    d.update(change)
    with pytest.raises(ConfigError) as exc:
        Calibration.from_dict(d, "m.pt")
    assert "\n" not in str(exc.value) and "m.pt" in str(exc.value)


def test_fit_refuses_bad_row_weights():
    rng = np.random.default_rng(3)
    x, r = _draw(rng, 50, 0.0)
    w = _ratio(x)
    w[3] = 0.0
    with pytest.raises(ConfigError, match="1 weights are not finite"):
        fit_calibration(_table(x, r), "oh_p50", "absolute", weights=w, test_weight=1.0)
    with pytest.raises(ConfigError, match="weights for"):
        fit_calibration(_table(x, r), "oh_p50", "absolute", weights=w[:10], test_weight=1.0)


# --- galmet calibrate --weights -------------------------------------------------------------


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """An ordinary run on 64 tiny galaxies, its predictions of every row, and a weights table
    (domain-check format) covering every galaxy plus three target rows of mean weight 2."""
    from conftest import make_tiny_dataset
    from galmet.cli.main import main

    root = tmp_path_factory.mktemp("weighted")
    ds = make_tiny_dataset(root / "ds", n=64, size=16)
    assert main(["train", str(ds), "--out", str(root / "run"), "--epochs", "1", *TINY_TRAIN]) == 0
    pred = root / "pred.parquet"
    assert main(["predict", str(root / "run"), str(ds), "--out", str(pred), "--device", "cpu", "--no-tta"]) == 0
    ids = pd.read_parquet(pred)["objID"].to_numpy()
    w = pd.DataFrame(
        {
            "objID": np.concatenate([ids, [-1, -2, -3]]),
            "set": ["train"] * len(ids) + ["target"] * 3,
            "p_target": 0.5,
            "importance_weight": np.concatenate([np.linspace(0.5, 2.0, len(ids)), [1.0, 2.0, 3.0]]),
        }
    )
    wpath = root / "w.parquet"
    w.to_parquet(wpath)
    return root, pred, wpath, w


def test_cli_weighted_calibration_writes_a_weighted_bundle(env, capsys, tmp_path):
    from galmet.nn.bundle import load_model

    root, pred, wpath, _ = env
    code, out, err = run_cli(capsys, "calibrate", root / "run", pred, "--out", tmp_path / "w.pt", "--weights", wpath)
    assert code == 0, err
    assert "weighted (test weight 2)" in out
    cal = load_model(tmp_path / "w.pt").calibrations["oh_p50"]
    assert cal.test_weight == pytest.approx(2.0) and cal.weights is not None
    code, out, err = run_cli(
        capsys, "calibrate", root / "run", pred, "--out", tmp_path / "x.pt", "--weights", wpath, "--test-weight", "0.7"
    )
    assert code == 0 and "weighted (test weight 0.7)" in out, err


def test_cli_missing_weights_is_one_line(env, capsys, tmp_path):
    root, pred, _, w = env
    part = tmp_path / "part.parquet"
    valid = pd.read_parquet(pred).query("split == 'valid'")["objID"].to_numpy()[:3]
    w[~w["objID"].isin(valid)].to_parquet(part)
    code, _, err = run_cli(capsys, "calibrate", root / "run", pred, "--out", tmp_path / "c.pt", "--weights", part)
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "part.parquet" in err and "no importance weight for 3 of" in err, err
    assert not (tmp_path / "c.pt").exists()


def test_cli_refuses_cv_plus_on_and_bad_options_before_reading(env, capsys, tmp_path):
    root, pred, wpath, w = env
    base = ("calibrate", root / "run", pred, "--out", tmp_path / "c.pt")
    for extra in (
        ("--weights", wpath, "--cv-plus", "on"),
        ("--weights", tmp_path / "none.parquet"),
        ("--weights", tmp_path / "w.txt"),
        ("--test-weight", "1.0"),
        ("--weights", wpath, "--test-weight", "0"),
    ):
        code, _, err = run_cli(capsys, *base, *extra)
        assert code == 2 and len(err.strip().splitlines()) == 1, (extra, err)
    no_set = tmp_path / "noset.parquet"
    w.drop(columns=["set"]).to_parquet(no_set)
    code, _, err = run_cli(capsys, *base, "--weights", no_set)
    assert code == 2 and "test" in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "c.pt").exists()
