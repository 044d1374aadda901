"""Split-conformal calibration: the finite-sample guarantee on exchangeable residuals, the stored
form, fitting from predictions tables, and the scores of error bars."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from galmet.errors import ConfigError, DataError
from galmet.nn.uncertainty import MAX_STORED_SCORES, Calibration, read_calibrations
from galmet.science.calibration import (
    fit_calibration,
    gaussian_crps,
    label_noise_budget,
    reliability,
    uncertainty_metrics,
)


def _coverage_trials(n_cal: int, level: float, symmetric: bool, trials: int, seed: int, hetero: bool = False):
    """Coverage of one new point over many independent calibrate-then-test trials.

    Residuals are exchangeable draws from a skewed, heavy-tailed law (a shifted Student t); with
    ``hetero`` each point also has its own scale u, which the ``spread`` method divides out.
    """
    rng = np.random.default_rng(seed)
    hits = 0
    for _ in range(trials):
        u = rng.uniform(0.02, 0.2, n_cal + 1) if hetero else np.ones(n_cal + 1)
        eps = (rng.standard_t(3, n_cal + 1) + 0.3 * rng.exponential(1.0, n_cal + 1)) * u
        pred = rng.normal(9.0, 0.2, n_cal + 1)
        y = pred + eps
        if hetero:
            cal = Calibration.from_scores("oh_p50", "spread", (y[:-1] - pred[:-1]) / u[:-1], symmetric)
            lo, hi = cal.quantiles(level)
            lo_b, hi_b = pred[-1] + u[-1] * lo, pred[-1] + u[-1] * hi
        else:
            z = y[:-1] - pred[:-1]
            cal = Calibration.from_scores("oh_p50", "absolute", np.abs(z) if symmetric else z, symmetric)
            lo, hi = cal.quantiles(level)
            lo_b, hi_b = pred[-1] + lo, pred[-1] + hi
        hits += lo_b <= y[-1] <= hi_b
    return hits / trials


@pytest.mark.parametrize(
    ("n_cal", "level", "symmetric", "hetero"),
    [(19, 0.9, True, False), (39, 0.9, False, False), (50, 0.68, False, True), (99, 0.95, False, False)],
)
def test_conformal_guarantee_holds_in_finite_samples(n_cal, level, symmetric, hetero):
    # Marginal coverage of split-conformal intervals is >= level and (continuous scores) at most
    # level + 1/(n+1) (symmetric) or level + 2/(n+1) (two tails), whatever the residual law.
    trials = 6000
    cov = _coverage_trials(n_cal, level, symmetric, trials, seed=n_cal, hetero=hetero)
    se = np.sqrt(level * (1 - level) / trials)
    upper = level + (1 if symmetric else 2) / (n_cal + 1)
    assert cov >= level - 3 * se, cov
    assert cov <= upper + 3 * se, cov


def test_naive_quantile_without_the_correction_undercovers():
    # the (n+1) correction matters: the plain empirical 90% quantile of 9 residuals covers less
    rng = np.random.default_rng(1)
    hits, trials = 0, 6000
    for _ in range(trials):
        e = np.abs(rng.normal(size=10))
        hits += e[-1] <= np.quantile(e[:-1], 0.9)
    assert hits / trials < 0.9 - 3 * np.sqrt(0.09 / trials)
    cal = Calibration.from_scores("oh_p50", "absolute", np.arange(1, 10.0), symmetric=True)
    assert cal.quantiles(0.9) == (-9.0, 9.0)  # ceil(10 * 0.9) = 9th of 9
    assert cal.quantiles(0.95)[1] == np.inf  # ceil(10 * 0.95) = 10 > 9: unbounded


def test_two_tailed_order_statistics():
    cal = Calibration.from_scores("oh_p50", "absolute", np.arange(1, 100.0))  # scores 1..99, n = 99
    # 95%: floor(100 * 0.025) = 2nd and ceil(100 * 0.975) = 98th smallest
    assert cal.quantiles(0.95) == (2.0, 98.0)
    out = cal.apply(np.array([9.0, 8.0]))
    np.testing.assert_allclose(out["oh_p50_lo95"], [11.0, 10.0])
    np.testing.assert_allclose(out["oh_p50_err"], (cal.quantiles(0.68)[1] - cal.quantiles(0.68)[0]) / 2)


def test_round_trip_thinning_and_malformed_calibrations():
    rng = np.random.default_rng(0)
    big = Calibration.from_scores("oh_p50", "spread", rng.normal(size=MAX_STORED_SCORES * 3), offset=0.01)
    assert len(big.scores) <= MAX_STORED_SCORES and big.n == MAX_STORED_SCORES * 3
    again = Calibration.from_dict(big.to_dict())
    assert again.quantiles(0.68) == pytest.approx(big.quantiles(0.68))
    assert abs(again.quantiles(0.95)[1] - 1.96) < 0.05
    good = big.to_dict()
    for change in (
        {"method": "magic"},
        {"scores": [2.0, 1.0]},
        {"scores": [float("nan")]},
        {"n": 1},
        {"offset": -1.0},
        {"version": 99},
    ):
        with pytest.raises(ConfigError):
            Calibration.from_dict({**good, **change})
    with pytest.raises(ConfigError, match="another model"):
        read_calibrations({"calibration": {"lgm_tot_p50": {**good, "target": "lgm_tot_p50"}}}, ["oh_p50"], "m.pt")
    with pytest.raises(ConfigError, match="needs the model's own sigma"):
        Calibration.from_scores("oh_p50", "sigma", [1.0, 2.0]).apply([9.0, 9.1], spread=[0.01, 0.01])


def _table(n=400, seed=0, bias=0.0):
    rng = np.random.default_rng(seed)
    truth = rng.normal(8.9, 0.2, n)
    sigma = rng.uniform(0.03, 0.15, n)
    pred = truth + bias + sigma * rng.normal(size=n)
    return pd.DataFrame(
        {
            "objID": np.arange(n),
            "split": np.where(np.arange(n) % 2 == 0, "valid", "test"),
            "oh_p50_pred": pred,
            "oh_p50_spread": rng.uniform(0.001, 0.01, n),
            "oh_p50_sigma": sigma,
            "oh_p50": truth,
        }
    )


@pytest.mark.parametrize(("method", "symmetric"), [("absolute", False), ("absolute", True), ("sigma", False)])
def test_fit_then_score_on_fresh_rows_covers(method, symmetric):
    df = _table(4000, bias=0.03)
    cal = fit_calibration(df, "oh_p50", method, symmetric, split="valid")
    test = df[df["split"] == "test"].copy()
    cols = cal.apply(test["oh_p50_pred"], test["oh_p50_spread"], test["oh_p50_sigma"])
    for k, v in cols.items():
        test[k] = v
    m = uncertainty_metrics(test, "oh_p50", "test")
    assert m is not None and m["n"] == 2000
    for tag, nominal in (("68", 0.68), ("95", 0.95)):
        assert abs(m[tag]["coverage"] - nominal) < 0.03, (tag, m[tag])
    if method == "sigma":
        # the locally adaptive intervals are right per tercile of the true scale as well, and sharper
        assert m["95"]["mean_width"] < 0.95 * fit_and_width(df, "absolute")
        assert abs(m["z_std"] - 1) < 0.1
    assert len(m["terciles"]) == 3 and sum(r["n"] for r in m["terciles"]) == 2000
    assert sum(m["pit_hist"]) == pytest.approx(1.0)


def fit_and_width(df, method):
    cal = fit_calibration(df, "oh_p50", method, split="valid")
    lo, hi = cal.quantiles(0.95)
    return hi - lo


def test_fit_calibration_refuses_bad_tables():
    df = _table(50)
    with pytest.raises(DataError, match="no truth column 'oh_p50'"):
        fit_calibration(df.drop(columns=["oh_p50"]), "oh_p50", split="valid")
    with pytest.raises(DataError, match="not predictions of lgm_tot_p50"):
        fit_calibration(df, "lgm_tot_p50", split="valid")
    with pytest.raises(DataError, match="too few"):
        fit_calibration(df.head(12), "oh_p50", split="valid")
    with pytest.raises(DataError, match="needs the column 'oh_p50_sigma'"):
        fit_calibration(df.drop(columns=["oh_p50_sigma"]), "oh_p50", "sigma", split="valid")
    assert fit_calibration(df, "oh_p50", "auto", split="valid").method == "sigma"
    assert fit_calibration(df.drop(columns=["oh_p50_sigma"]), "oh_p50", "auto", split="valid").method == "absolute"


def test_label_noise_budget_and_gaussian_scores():
    rng = np.random.default_rng(3)
    n = 20000
    truth = rng.normal(8.9, 0.2, n)
    label_sigma = 0.05
    pred = truth + rng.normal(0, 0.1, n)
    df = pd.DataFrame(
        {"oh_p50": truth, "oh_p50_pred": pred, "oh_p16": truth - label_sigma, "oh_p84": truth + label_sigma}
    )
    b = label_noise_budget(df, "oh_p50")
    assert b["median_label_sigma"] == pytest.approx(0.05)
    assert b["fraction"] == pytest.approx(0.05**2 / 0.1**2, rel=0.05)
    assert b["rmse_without"] == pytest.approx(np.sqrt(0.1**2 - 0.05**2), rel=0.03)
    assert label_noise_budget(df.drop(columns=["oh_p84"]), "oh_p50") is None
    # CRPS of a standard normal forecast at its mean is (sqrt 2 - 1) / sqrt(pi)
    assert gaussian_crps(np.zeros(1), np.zeros(1), np.ones(1))[0] == pytest.approx((np.sqrt(2) - 1) / np.sqrt(np.pi))
    rel = reliability(pred, truth, np.full(n, 0.1))
    assert np.all(np.abs(rel["observed"] - rel["nominal"]) < 0.02)
