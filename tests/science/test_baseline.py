"""Random-forest and constant baselines: output format, skill, and bad inputs."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from conftest import make_tiny_dataset
from galmet.cli.main import main


@pytest.fixture
def split_dataset(tmp_path):
    return make_tiny_dataset(tmp_path / "ds", n=120, size=16, split=True)


def test_baseline_cli_writes_predict_format(split_dataset, tmp_path):
    out = tmp_path / "bl"
    assert main(["baseline", str(split_dataset), "--out", str(out), "--n-estimators", "30", "--jobs", "1"]) == 0
    rf = pd.read_parquet(out / "rf_gri_predictions.parquet")
    const = pd.read_parquet(out / "constant_predictions.parquet")
    for df in (rf, const):
        assert {"objID", "split", "oh_p50_pred", "oh_p50_spread", "oh_p50", "lgm_tot_p50", "z", "ra", "dec"} <= set(
            df.columns
        )
        assert len(df) == 120 and df["objID"].dtype == np.int64
    cat = pd.read_parquet(split_dataset / "catalog.parquet")
    train = cat[cat.split != "test"]
    assert np.allclose(const["oh_p50_pred"], train["oh_p50"].mean(), atol=1e-6)
    m = json.loads((out / "baseline_metrics.json").read_text())
    # labels are a smooth function of the magnitudes: the forest must beat the mean by far
    assert m["rf"]["rmse"] < 0.3 * m["constant"]["rmse"]
    assert m["rf"]["n"] == m["constant"]["n"] == 30
    assert m["rf"]["paper"]["rmse"] == 0.130
    test = rf[rf.split == "test"]
    assert m["rf"]["rmse"] == pytest.approx(np.sqrt(np.mean((test.oh_p50_pred - test.oh_p50) ** 2)), rel=1e-5)
    assert (rf["oh_p50_spread"] >= 0).all()


def test_baseline_ugriz_is_deterministic(split_dataset, tmp_path):
    from galmet.runs.baseline import run_baselines
    from galmet.science.baseline import ForestConfig

    cfg = ForestConfig(n_estimators=20, n_jobs=1, seed=3)
    a = run_baselines(split_dataset, tmp_path / "a", "ugriz", config=cfg)
    b = run_baselines(split_dataset, tmp_path / "b", "ugriz", config=cfg)
    assert a["rf"]["rmse"] == b["rf"]["rmse"]
    assert (tmp_path / "a" / "rf_ugriz_predictions.parquet").is_file()
    assert "paper" not in a["rf"]


@pytest.mark.parametrize(
    "argv_extra, msg",
    [
        (["--bands", "grx"], "--bands must be letters"),
        (["--n-estimators", "0"], "--n-estimators: must be an integer from 1"),
        (["--jobs", "0"], "--jobs: must be an integer from 1 to 1024 (or -1)"),
        (["--seed", str(2**40)], "--seed: must be an integer from 0 to 4294967295"),
    ],
)
def test_bad_options_exit_2(split_dataset, tmp_path, capsys, argv_extra, msg):
    assert main(["baseline", str(split_dataset), "--out", str(tmp_path / "o"), *argv_extra]) == 2
    assert msg in capsys.readouterr().err


def test_missing_magnitudes_skip_the_forest_in_one_line(sdss_sample, tmp_path, caplog):
    # (more in tests/runs/test_baseline_without_magnitudes.py)
    assert main(["baseline", str(sdss_sample), "--out", str(tmp_path / "o")]) == 0
    lines = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(lines) == 1 and "no magnitude column(s) modelMag_g, modelMag_r, modelMag_i" in lines[0]


def test_nan_magnitude_names_object(tmp_path, capsys):
    root = make_tiny_dataset(tmp_path / "ds", n=20, split=True)
    cat = pd.read_parquet(root / "catalog.parquet")
    cat.loc[3, "modelMag_r"] = np.nan
    cat.to_parquet(root / "catalog.parquet")
    assert main(["baseline", str(root), "--out", str(tmp_path / "o")]) == 2
    assert f"objID {cat.objID[3]}: modelMag_r is not a finite number" in capsys.readouterr().err
